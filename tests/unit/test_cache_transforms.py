"""What the caches keep of ReplicaSets and pods (their ownership, nothing else), and when they
watch them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connector_operator import states
from connector_operator.cache import ownership_only, same_but_status, same_but_version

META = {
    "name": "connector-orders-5d9f", "namespace": "team-a", "uid": "u-rs",
    "resourceVersion": "42", "labels": {"app.kubernetes.io/instance": "orders"},
    "ownerReferences": [{"kind": "Deployment", "uid": "u-dep", "controller": True}],
    "annotations": {"deployment.kubernetes.io/revision": "3"}, "managedFields": [{}],
}  # fmt: skip


def replicaset() -> dict[str, Any]:
    return {
        "metadata": dict(META),
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"env": [{"name": "X"}]}]}}},
        "status": {"replicas": 1, "readyReplicas": 1},
    }


def test_a_replicaset_is_kept_as_its_ownership() -> None:
    kept = ownership_only(replicaset())
    assert kept == {"metadata": {k: META[k] for k in (
        "name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences")}}  # fmt: skip
    assert ownership_only(kept) == kept  # a cache transform must be idempotent


def test_only_the_resource_version_changed_is_same_but_version() -> None:
    meta = {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "1"}
    pod = ownership_only({"metadata": meta, "status": {"phase": "Pending"}})
    status_changed = ownership_only({"metadata": {**meta, "resourceVersion": "2"},
                                     "status": {"phase": "Running"}})  # fmt: skip
    assert same_but_version(pod, status_changed)
    relabelled = {**pod, "metadata": {**pod["metadata"], "labels": {"a": "b"}}}
    assert not same_but_version(pod, relabelled)
    assert not same_but_version(pod, {**pod, "spec": {}})


def deployment(rv: str, available: int, progressing_time: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "d", "namespace": "ns", "resourceVersion": rv, "generation": 1},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "replicas": 1, "availableReplicas": available,
                   "conditions": [{"type": "Progressing", "status": "True",
                                   "lastUpdateTime": progressing_time}]},
    }  # fmt: skip


def test_a_deployments_status_update_counts_only_if_the_reconcile_reads_it() -> None:
    first = deployment("1", 0, "12:00:00")
    touched = deployment("2", 0, "12:00:05")  # a condition's time: nothing read changed
    assert same_but_status(first, touched)
    assert states.summarize_deployment(first) == states.summarize_deployment(touched)
    available = deployment("3", 1, "12:00:05")
    assert states.summarize_deployment(first) != states.summarize_deployment(available)
    scaled = {**first, "spec": {"replicas": 0}}
    assert not same_but_status(first, scaled)  # a spec change: drift, or a scale


def annotated(obj: dict[str, Any], rv: str, **annotations: str) -> dict[str, Any]:
    meta = obj["metadata"]
    merged = {**meta.get("annotations", {}), **annotations}
    return {**obj, "metadata": {**meta, "resourceVersion": rv, "annotations": merged}}


def test_the_deployment_controllers_revision_is_its_bookkeeping_not_a_change() -> None:
    revision = "deployment.kubernetes.io/revision"
    made = deployment("1", 0, "12:00:00")
    counted = annotated(deployment("2", 0, "12:00:01"), "2", **{revision: "1"})
    assert same_but_status(made, counted)  # its first ReplicaSet made: no Connector woken
    labelled = annotated(counted, "3", owner="team-a")
    assert not same_but_status(counted, labelled)  # anyone else's annotation still counts
    assert not same_but_status(labelled, annotated(labelled, "4", owner="team-b"))
    assert not same_but_version(made, annotated(made, "5", **{revision: "1"}))


class NoApi:
    """The cache's client, never called here: the stores are filled by hand."""

    async def list_page(self, *_: Any) -> dict[str, Any]:
        raise AssertionError("not listed in this test")

    def watch(self, *_: Any) -> Any:
        raise AssertionError("not watched in this test")


def test_the_cache_wakes_a_connector_only_for_changes_its_reconcile_reads() -> None:
    """A Deployment's status only when what the reconcile reads of it changed; a pod or a
    ReplicaSet only for a Connector asked to stop (the only pass that counts pods)."""
    from connector_operator.cache import Cache  # noqa: PLC0415 -- beside its transforms' tests

    woken: list[tuple[str, str]] = []
    cache = Cache(NoApi(), ("team-a",), woken.append, lambda _: None)
    connector = {"apiVersion": "dataspace.dev/v1alpha1", "kind": "Connector",
                 "metadata": {"name": "orders", "namespace": "team-a", "uid": "u-conn",
                              "resourceVersion": "1", "generation": 1}}  # fmt: skip
    cache.connectors.upsert(connector)
    cache._on_connector(None, cache.connectors.get(("team-a", "orders")))
    woken.clear()
    owned = {"ownerReferences": [{"uid": "u-conn", "controller": True}]}
    first = deployment("1", 0, "12:00:00")
    first["metadata"].update(owned)
    touched, available = deployment("2", 0, "12:00:05"), deployment("3", 1, "12:00:05")
    for d in (touched, available):
        d["metadata"].update(owned)
    cache._on_child(first, touched)  # a condition's time
    assert woken == []
    cache._on_child(touched, available)  # now available: Running is near
    assert woken == [("team-a", "orders")]
    woken.clear()
    pod = ownership_only({"metadata": {**META, "labels": {"app.kubernetes.io/instance": "orders"}}})
    newer = {**pod, "metadata": {**pod["metadata"], "resourceVersion": "43"}}
    relabelled = {
        **newer,
        "metadata": {**newer["metadata"], "labels": {**newer["metadata"]["labels"], "x": "y"}},
    }
    cache._on_labelled(None, pod)  # starting: its Deployment says when it runs
    cache._on_labelled(pod, None)
    assert woken == []
    stop = {"annotations": {"dataspace.dev/action": "stop"}, "resourceVersion": "2"}
    cache.connectors.upsert({**connector, "metadata": {**connector["metadata"], **stop}})
    cache._on_labelled(pod, newer)  # its status only: nothing kept changed
    assert woken == []
    cache._on_labelled(newer, relabelled)  # asked to stop: its pods are counted
    cache._on_labelled(relabelled, None)
    assert woken == [("team-a", "orders")] * 2


class Listed:
    """The cache's client with fixed collections: a LIST returns them, a watch never ends."""

    def __init__(self, collections: dict[str, list[dict[str, Any]]]) -> None:
        self.collections = collections
        self.listed: list[str] = []

    async def list_page(self, path: str, *_: Any) -> dict[str, Any]:
        self.listed.append(path)
        return {"metadata": {"resourceVersion": "5"}, "items": self.collections[path]}

    async def watch(self, *_: Any) -> Any:
        await asyncio.Event().wait()
        yield {}


def test_pods_are_watched_only_once_a_deployment_does_not_count_them() -> None:
    """Pods are counted from the Deployment's status; where it does not count terminating
    pods, the first count asked for starts a watch of ReplicaSets and of the pods not ended
    (metadata only; a field selector: a pod that ends leaves the watch as a deletion), and
    nothing is counted until it has listed them. Its list, and then a pod that ends, wake a
    Connector asked to stop."""
    from connector_operator.cache import LIVE_PODS, Cache  # noqa: PLC0415

    labels = {"app.kubernetes.io/instance": "orders"}

    def meta(name: str, uid: str, owner: str, rv: str) -> dict[str, Any]:
        owners = [{"uid": owner, "controller": True}]
        return {"name": name, "namespace": "team-a", "uid": uid, "resourceVersion": rv,
                "labels": labels, "ownerReferences": owners}  # fmt: skip

    replicaset_ = {"metadata": meta("rs", "u-rs", "u-dep", "2")}
    client = Listed({
        "/apis/apps/v1/namespaces/team-a/replicasets": [replicaset_],
        "/api/v1/namespaces/team-a/pods": [
            {"metadata": meta(n, f"u-{n}", "u-rs", "3")} for n in ("p1", "p2")
        ],
    })  # fmt: skip
    woken: list[tuple[str, str]] = []
    cache = Cache(client, ("team-a",), woken.append, lambda _: None)
    assert not [i.path for i in cache.informers if i.path.endswith(("/pods", "/replicasets"))]
    stop = {"annotations": {"dataspace.dev/action": "stop"}}
    named = {"name": "orders", "namespace": "team-a", "uid": "u-conn", "resourceVersion": "1"}
    cache.connectors.upsert({"metadata": {**named, **stop}})
    deployment_ = {"metadata": {"name": "connector-orders", "namespace": "team-a", "uid": "u-dep"}}

    async def scenario() -> None:
        assert cache.live_pods(deployment_) is None, "not counted before the pods are listed"
        pods = next(i for i in cache.informers if i.path.endswith("/pods"))
        replicasets = next(i for i in cache.informers if i.path.endswith("/replicasets"))
        assert pods.field_selector == LIVE_PODS == "status.phase!=Succeeded,status.phase!=Failed"
        assert pods.metadata_only and replicasets.metadata_only
        await asyncio.wait_for(asyncio.gather(pods.synced.wait(), replicasets.synced.wait()), 5)
        assert cache.live_pods(deployment_) == 2
        assert set(woken) == {("team-a", "orders")}, "what is listed wakes the stopping one"
        woken.clear()
        pods._take({"type": "DELETED", "object": {"metadata": meta("p1", "u-p1", "u-rs", "4")}})
        assert cache.live_pods(deployment_) == 1
        assert woken == [("team-a", "orders")]
        assert cache.live_pods(deployment_) == 1
        assert len(client.listed) == 2, "the watch is started once"
        await cache.stop()

    asyncio.run(scenario())


def listed_cluster(deployment_status: dict[str, Any]) -> Listed:
    """One namespace holding one Deployment of the operator's, with this status, and nothing
    else."""
    made = {"apiVersion": "apps/v1", "kind": "Deployment", "status": deployment_status,
            "metadata": {"name": "connector-orders", "namespace": "team-a", "uid": "u-dep",
                         "resourceVersion": "4", "generation": 1}}  # fmt: skip
    empty: dict[str, list[dict[str, Any]]] = {
        f"{base}/namespaces/team-a/{plural}": []
        for base, plural in (
            ("/apis/dataspace.dev/v1alpha1", "connectors"), ("/api/v1", "services"),
            ("/api/v1", "secrets"), ("/apis/apps/v1", "replicasets"), ("/api/v1", "pods"),
        )
    }  # fmt: skip
    return Listed({**empty, "/apis/apps/v1/namespaces/team-a/deployments": [made]})


@pytest.mark.parametrize(
    ("status", "pods_watched"),
    [
        ({"observedGeneration": 1, "replicas": 1, "terminatingReplicas": 0}, False),
        ({"observedGeneration": 1, "replicas": 1}, True),
        ({}, False),  # not reported on yet: it has made no pod
    ],
)
def test_the_start_lists_the_pods_first_where_a_deployment_does_not_count_them(
    status: dict[str, Any], pods_watched: bool
) -> None:
    """Primed so, no pass after a restart finds the pods of a Stopped Connector not counted."""
    from connector_operator.cache import Cache  # noqa: PLC0415

    client = listed_cluster(status)
    cache = Cache(client, ("team-a",), lambda _: None, lambda _: None)

    async def scenario() -> None:
        await asyncio.wait_for(cache.start(), 5)
        pods = [i for i in cache.informers if i.path.endswith(("/pods", "/replicasets"))]
        assert len(pods) == (2 if pods_watched else 0)
        assert all(i.synced.is_set() for i in pods), "listed before the start returns"
        await cache.stop()

    asyncio.run(scenario())
