"""What the caches keep of ReplicaSets and pods: ownership (and a pod's phase), nothing else."""

from __future__ import annotations

from typing import Any

from connector_operator import states
from connector_operator.cache import ownership_only, same_but_status, same_but_version, slim_pod

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


def test_a_pod_keeps_its_phase_besides() -> None:
    pod = {**replicaset(), "status": {"phase": "Running", "podIP": "10.0.0.9"}}
    kept = slim_pod(pod)
    assert kept["status"] == {"phase": "Running"}
    assert kept["metadata"]["ownerReferences"] == META["ownerReferences"]
    assert slim_pod(kept) == kept


def test_only_the_resource_version_changed_is_same_but_version() -> None:
    meta = {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "1"}
    pod = slim_pod({"metadata": meta, "status": {"phase": "Pending"}})
    conditions_changed = {**pod, "metadata": {**pod["metadata"], "resourceVersion": "2"}}
    assert same_but_version(pod, conditions_changed)
    running = {**conditions_changed, "status": {"phase": "Running"}}
    assert not same_but_version(pod, running)
    relabelled = {**pod, "metadata": {**pod["metadata"], "labels": {"a": "b"}}}
    assert not same_but_version(pod, relabelled)
    assert not same_but_version(pod, {"metadata": pod["metadata"]})


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
