"""Desired state is restored, not only created: hand edits and deletions of children are
reverted (also across a watch gap), children are found by ownership, and a resync of converged
Connectors writes nothing."""

from __future__ import annotations

import base64
import os
import re
import signal
from collections.abc import Callable

import pytest
from kubernetes import client

from tests.conftest import BACKEND, Cluster
from tests.integration.conftest import (
    Connectors,
    Operator,
    audit_writes,
    connector,
    s3,
    settle,
)
from tests.support import eventually

pytestmark = pytest.mark.cluster
IMAGE = "ghcr.io/dataspace-dev/connector:0.1.0"


def _metric(operator: Operator, name: str, **labels: str) -> float:
    """One sample of the operator's /metrics, 0 when absent."""
    selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(selector) + r"\}" if labels else "")
    found = re.search(rf"^{pattern} (\S+)$", operator.metrics(), re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _image(connectors: Connectors, name: str) -> str:
    deployment = connectors.deployment(name)
    assert deployment is not None
    return str(deployment.spec.template.spec.containers[0].image)


def _repairs(connectors: Connectors, name: str) -> list[str]:
    return [str(e.message) for e in connectors.events(name) if e.reason == "DriftRepaired"]


def test_hand_edits_of_children_are_reverted(operator: Operator, connectors: Connectors) -> None:
    connectors.apply(s3("demo"))
    connectors.wait_phase("demo", "Running")
    ns = connectors.namespace

    connectors.kubectl("set", "image", "deploy/connector-demo", "connector=evil/image:1")
    eventually(lambda: _image(connectors, "demo") == IMAGE, what="the image to be restored")
    eventually(
        lambda: any("containers[connector].image" in m for m in _repairs(connectors, "demo")),
        what="a DriftRepaired event naming the image",
    )

    connectors.kubectl("set", "env", "deploy/connector-demo", "CONNECTOR_NAME=someone-else")
    connectors.kubectl("scale", "deploy/connector-demo", "--replicas=3")
    connectors.kubectl(
        "patch", "deploy/connector-demo", "--type=json", "-p",
        '[{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/'
        'allowPrivilegeEscalation", "value": true}]',
    )  # fmt: skip

    def deployment_restored() -> bool:
        deployment = connectors.deployment("demo")
        assert deployment is not None
        container = deployment.spec.template.spec.containers[0]
        env = {e.name: e.value for e in container.env}
        return (
            deployment.spec.replicas == 1
            and env["CONNECTOR_NAME"] == "demo"
            and container.security_context.allow_privilege_escalation is False
        )

    eventually(deployment_restored, what="replicas, env and security context restored")

    stolen = base64.b64encode(b"not-the-password").decode()
    connectors.core.patch_namespaced_secret(
        "connector-demo", ns, {"data": {"password_read": stolen}}
    )
    connectors.kubectl(
        "patch", "service/connector-demo", "--type=json",
        "-p", '[{"op": "replace", "path": "/spec/ports/0/port", "value": 9999}]',
    )  # fmt: skip

    def secret_and_service_restored() -> bool:
        secret = connectors.core.read_namespaced_secret("connector-demo", ns)
        service = connectors.core.read_namespaced_service("connector-demo", ns)
        return secret.data["password_read"] != stolen and [p.port for p in service.spec.ports] == [
            8080
        ]

    eventually(secret_and_service_restored, what="the Secret's data and the Service's port")
    eventually(lambda: _metric(operator, "connector_operator_drift_repairs_total",
                               kind="Service") >= 1, what="the repair metric")  # fmt: skip
    assert _metric(operator, "connector_operator_drift_repairs_total", kind="Deployment") >= 2
    assert _metric(operator, "connector_operator_drift_repairs_total", kind="Secret") >= 1
    messages = _repairs(connectors, "demo")
    assert any("data.password_read" in m for m in messages)
    assert all("not-the-password" not in m and stolen not in m for m in messages)
    status = connectors.wait_phase("demo", "Running")
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Ready": "True"}


def test_deleted_children_are_recreated(operator: Operator, connectors: Connectors) -> None:
    connectors.apply(s3("gone"))
    connectors.wait_phase("gone", "Running")
    uid = connectors.get("gone")["metadata"]["uid"]
    for kind in ("deployment", "service", "secret"):
        before = connectors.kubectl("get", kind, "connector-gone", "-o", "jsonpath={.metadata.uid}")
        connectors.kubectl("delete", kind, "connector-gone", "--wait=true")

        def recreated(kind: str = kind, before: str = before) -> bool:
            out = connectors.kubectl(
                "get", kind, "connector-gone", "--ignore-not-found",
                "-o", "jsonpath={.metadata.uid} {.metadata.ownerReferences[0].uid}",
            )  # fmt: skip
            return bool(out) and out.split() != [before, uid] and out.split()[1] == uid

        eventually(recreated, what=f"the {kind} to be recreated, owned by the Connector")
    connectors.wait_event("gone", "Warning", "DriftRepaired")
    assert connectors.wait_phase("gone", "Running")


@pytest.mark.skipif(BACKEND != "local", reason="restarts the local control plane's API server")
def test_a_deletion_while_the_watch_was_down_is_noticed(
    operator: Operator, connectors: Connectors, cluster: Cluster
) -> None:
    """The operator is paused, its Deployment deleted, etcd's history compacted and the API
    server restarted, so the watch cannot resume where it was (410 Gone): the fresh LIST must
    reveal the deletion. (Without the compaction, a watch resumed while the restarted API
    server still fills its cache is served from etcd's history, deletion included.)"""
    connectors.apply(connector("gap"))
    connectors.wait_phase("gap", "Running")
    assert operator.process is not None and cluster.plane is not None
    os.kill(operator.process.pid, signal.SIGSTOP)
    try:
        connectors.kubectl("delete", "deployment", "connector-gap", "--wait=true")
        cluster.plane.compact_etcd()
        cluster.plane.restart_apiserver()
    finally:
        os.kill(operator.process.pid, signal.SIGCONT)
    eventually(lambda: connectors.deployment("gap") is not None, timeout=90,
               what="the Deployment deleted during the gap to be recreated")  # fmt: skip
    connectors.wait_phase("gap", "Running", timeout=90)
    relists = sum(
        float(value)
        for value in re.findall(
            r"^connector_operator_watch_relists_total\{[^}]*deployments[^}]*\} (\S+)$",
            operator.metrics(),
            re.MULTILINE,
        )
    )
    assert relists >= 1, "the scenario must have made the Deployments' watch relist"


def test_a_resync_of_converged_connectors_writes_nothing(
    start_operator: Callable[..., Operator], connectors: Connectors, cluster: Cluster
) -> None:
    operator = start_operator(CONNECTOR_OPERATOR_RESYNC_SECONDS="10")
    for name in ("calm-a", "calm-b"):
        connectors.apply(s3(name))
    for name in ("calm-a", "calm-b"):
        connectors.wait_phase(name, "Running")
    settle(2)
    before = len(audit_writes(cluster, connectors.namespace)) if cluster.plane else 0
    eventually(lambda: operator.logs().count("resync of 2 Connectors") >= 2, timeout=40,
               what="two resyncs")  # fmt: skip
    if cluster.plane is not None:
        assert len(audit_writes(cluster, connectors.namespace)) == before


def test_objects_with_our_labels_but_another_owner_change_nothing(
    operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(connector("owned"))
    connectors.wait_phase("owned", "Running")
    settle(1)
    before = connectors.get("owned")["metadata"]["resourceVersion"]
    labels = {
        "app.kubernetes.io/name": "connector",
        "app.kubernetes.io/instance": "owned",
        "app.kubernetes.io/managed-by": "connector-operator",
    }
    imposter = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="imposter", labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"imposter": "yes", **labels}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"imposter": "yes", **labels}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="x")]),
            ),
        ),
    )
    connectors.apps.create_namespaced_deployment(connectors.namespace, imposter)
    eventually(
        lambda: any(p.metadata.name.startswith("imposter") and p.status.phase == "Running"
                    for p in connectors.pods("owned")),
        what="the imposter's pod to run",
    )  # fmt: skip
    settle(2)
    assert connectors.get("owned")["metadata"]["resourceVersion"] == before, "no status change"
    connectors.annotate("owned", "stop")
    connectors.wait_phase("owned", "Stopped")
    assert any(p.metadata.name.startswith("imposter") for p in connectors.pods("owned"))


def test_pods_that_have_ended_do_not_keep_a_connector_stopping(
    operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(connector("evicted"))
    connectors.wait_phase("evicted", "Running")
    ns = connectors.namespace
    apps = connectors.apps
    (replicaset,) = apps.list_namespaced_replica_set(
        ns, label_selector="app.kubernetes.io/instance=evicted"
    ).items
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(
            name="connector-evicted-old",
            labels=replicaset.spec.template.metadata.labels,
            owner_references=[
                client.V1OwnerReference(
                    api_version="apps/v1",
                    kind="ReplicaSet",
                    name=replicaset.metadata.name,
                    uid=replicaset.metadata.uid,
                    controller=True,
                )
            ],
        ),
        spec=client.V1PodSpec(
            node_name="gone-node", containers=[client.V1Container(name="c", image="x")]
        ),
    )
    connectors.core.create_namespaced_pod(ns, pod)
    connectors.core.patch_namespaced_pod_status(
        "connector-evicted-old",
        ns,
        {"status": {"phase": "Failed", "reason": "Evicted", "message": "The node was low."}},
    )
    connectors.annotate("evicted", "stop")

    def stopped() -> tuple[str, str | None] | None:
        """Once Stopped: whether the ended pod was still there (the pod garbage collector
        deletes pods of a node that does not exist, 40 s or more after it first sees them:
        only a Stopped reached before that proves the ended pod did not hold it back)."""
        if connectors.status("evicted").get("phase") != "Stopped":
            return None
        try:
            left = connectors.core.read_namespaced_pod("connector-evicted-old", ns)
        except client.ApiException as error:
            if error.status != 404:
                raise
            return ("gone", None)
        return ("there", left.status.phase)

    assert eventually(stopped, what="evicted to be Stopped") == ("there", "Failed"), (
        "Stopped only once the ended pod was gone: it held the Connector back"
    )


def test_metrics_count_connectors_by_phase(operator: Operator, connectors: Connectors) -> None:
    connectors.apply(connector("m-run"))
    connectors.apply(connector("m-stop"))
    connectors.annotate("m-stop", "stop")
    connectors.wait_phase("m-run", "Running")
    connectors.wait_phase("m-stop", "Stopped")

    def gauge(phase: str) -> float:
        labels = {"namespace": connectors.namespace, "phase": phase}
        return _metric(operator, "connector_operator_connectors", **labels)

    eventually(lambda: gauge("Running") == 1 and gauge("Stopped") == 1, what="the phase gauge")
    assert _metric(operator, "connector_operator_leader") == 1


def test_a_restarted_operator_finds_nothing_to_repair(
    start_operator: Callable[..., Operator], connectors: Connectors, cluster: Cluster
) -> None:
    """A new process (a restart, a new leader) reads every child from a fresh LIST: what it
    wrote itself must not look like a hand edit."""
    first = start_operator()
    for name in ("same-a", "same-b"):
        connectors.apply(s3(name) if name.endswith("a") else connector(name))
    for name in ("same-a", "same-b"):
        connectors.wait_phase(name, "Running")
    settle(2)
    first.stop()
    before = len(audit_writes(cluster, connectors.namespace)) if cluster.plane else 0
    second = start_operator()
    eventually(lambda: "reconciling 2 Connectors" in second.logs(), what="the new process")
    settle(4)
    assert not _repairs(connectors, "same-a") and not _repairs(connectors, "same-b")
    if cluster.plane is not None:
        assert len(audit_writes(cluster, connectors.namespace)) == before


def test_a_childs_name_taken_by_another_object_is_left_alone(
    operator: Operator, connectors: Connectors
) -> None:
    """An object of a child's name that the Connector does not own is not taken over: the
    Connector says so and proceeds once the name is free."""
    theirs = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "connector-taken", "labels": {"team": "a"}},
        "spec": {"ports": [{"name": "web", "port": 80}]},
    }
    connectors.apply(theirs)
    connectors.apply(connector("taken"))

    def stalled() -> str | None:
        found = connectors.condition("taken", "Stalled")
        return str(found["message"]) if found and found["reason"] == "NameTaken" else None

    assert "connector-taken" in eventually(stalled, what="Stalled NameTaken")
    connectors.wait_event("taken", "Warning", "NameTaken")
    service = connectors.core.read_namespaced_service("connector-taken", connectors.namespace)
    assert [p.port for p in service.spec.ports] == [80] and not service.metadata.owner_references
    connectors.kubectl("delete", "service", "connector-taken")
    connectors.wait_phase("taken", "Running")


@pytest.mark.skipif(BACKEND != "local", reason="pauses the local control plane's garbage collector")
def test_children_left_by_a_deleted_connector_of_the_same_name_are_taken_over(
    operator: Operator, connectors: Connectors, cluster: Cluster
) -> None:
    """A Connector deleted and applied again while the garbage collector does not act (paused
    here; after API server restarts it may never act): the new Connector takes over the
    children the old one left, instead of waiting for them forever, and the garbage collector,
    once it acts, leaves them to it."""
    connectors.apply(connector("again"))
    connectors.wait_phase("again", "Running")
    left = connectors.deployment("again")
    assert left is not None and cluster.plane is not None
    manager = cluster.plane.components["kube-controller-manager"].process
    assert manager is not None
    os.kill(manager.pid, signal.SIGSTOP)
    try:
        connectors.kubectl("delete", "connector", "again", "--wait=true")
        connectors.apply(connector("again"))
        uid = connectors.get("again")["metadata"]["uid"]

        def owners() -> set[str]:
            return {
                connectors.kubectl(
                    "get", kind, "connector-again", "-o",
                    "jsonpath={.metadata.ownerReferences[*].uid}",
                ).strip()
                for kind in ("deployment", "service")
            }  # fmt: skip

        eventually(lambda: owners() == {uid}, what="the left children to belong to the new one")
    finally:
        os.kill(manager.pid, signal.SIGCONT)
    connectors.wait_phase("again", "Running", timeout=120)
    settle(5)  # the garbage collector catches up with the deletion
    kept = connectors.deployment("again")
    assert kept is not None and kept.metadata.uid == left.metadata.uid, "taken over, not remade"
    assert owners() == {uid}


@pytest.mark.skipif(BACKEND != "local", reason="pauses the local control plane's controllers")
def test_stopped_waits_for_the_deployments_controller_to_see_the_scale_down(
    operator: Operator, connectors: Connectors, cluster: Cluster
) -> None:
    """A Connector made and stopped while the Deployment controller does not act (paused
    here; it may lag so after an API server restart): its Deployment counts no pod only
    because nothing has looked at it yet, so it stays Stopping until the controller has seen
    the scale-down, and is Stopped then."""
    assert cluster.plane is not None
    manager = cluster.plane.components["kube-controller-manager"].process
    assert manager is not None
    os.kill(manager.pid, signal.SIGSTOP)
    try:
        connectors.apply(connector("unseen"))
        eventually(lambda: connectors.deployment("unseen"), what="the Deployment to be made")
        connectors.annotate("unseen", "stop")
        eventually(
            lambda: connectors.status("unseen").get("phase") == "Stopping",
            what="the stop to be acknowledged",
        )

        def scaled_down() -> bool:
            made = connectors.deployment("unseen")
            return made is not None and made.spec.replicas == 0

        eventually(scaled_down, what="the stop to be written to the Deployment")
        # Another pass meanwhile (a change of the Connector's metadata causes one).
        connectors.kubectl("annotate", "connector/unseen", "example.com/note=again")
        settle(3)
        assert connectors.status("unseen")["phase"] == "Stopping", (
            "Stopped before the Deployment's controller saw the scale-down"
        )
    finally:
        os.kill(manager.pid, signal.SIGCONT)
    connectors.wait_phase("unseen", "Stopped", timeout=120)
    seen = connectors.deployment("unseen")
    assert seen is not None and seen.status.observed_generation == seen.metadata.generation
