"""A Connector's whole life against the real API server: every row of the README's table."""

from __future__ import annotations

import pytest

from tests.integration.conftest import (
    S3_CREDENTIALS,
    Connectors,
    Operator,
    connector,
    s3,
    settle,
)
from tests.support import eventually

pytestmark = pytest.mark.cluster
LABELS = {
    "app.kubernetes.io/name": "connector",
    "app.kubernetes.io/managed-by": "connector-operator",
}


def _conditions(status: dict[str, object]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status.get("conditions", [])}  # type: ignore[attr-defined]


def test_new_connector_starts_and_runs(operator: Operator, connectors: Connectors) -> None:
    connectors.apply(s3("alpha"))
    status = connectors.wait_phase("alpha", "Running")
    assert _conditions(status) == {"Ready": "True"}
    assert status["action"] == {
        "requested": "start",
        "accepted": True,
        "message": "start: the Connector runs.",
    }
    body = connectors.get("alpha")
    uid = body["metadata"]["uid"]
    deployment = connectors.deployment("alpha")
    assert deployment is not None
    assert deployment.spec.replicas == 1
    assert deployment.spec.strategy.type == "Recreate"
    assert deployment.status.available_replicas == 1
    pod_spec = deployment.spec.template.spec
    assert pod_spec.security_context.run_as_non_root is True
    assert pod_spec.security_context.seccomp_profile.type == "RuntimeDefault"
    (container,) = pod_spec.containers
    assert container.security_context.allow_privilege_escalation is False
    assert container.security_context.capabilities.drop == ["ALL"]
    assert container.security_context.read_only_root_filesystem is True
    assert container.image == "ghcr.io/dataspace-dev/connector:0.1.0"  # the documented default
    secret = connectors.core.read_namespaced_secret("connector-alpha", connectors.namespace)
    service = connectors.core.read_namespaced_service("connector-alpha", connectors.namespace)
    for child in (deployment, secret, service):
        assert child.metadata.labels == {**LABELS, "app.kubernetes.io/instance": "alpha"}
        (owner,) = child.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid, owner.controller) == (
            "Connector",
            "alpha",
            uid,
            True,
        )
    assert sorted(secret.data) == sorted(S3_CREDENTIALS)
    assert [p.port for p in service.spec.ports] == [8080]
    connectors.wait_event("alpha", "Normal", "Running")
    assert connectors.event_reasons("alpha") == [("Normal", "Starting"), ("Normal", "Running")]
    printed = connectors.kubectl("get", "conn", "alpha")
    assert "Running" in printed and "AmazonS3" in printed and "True" in printed


def test_stop_then_start(operator: Operator, connectors: Connectors) -> None:
    connectors.apply(connector("beta"))
    connectors.wait_phase("beta", "Running")
    connectors.annotate("beta", "stop")
    status = connectors.wait_phase("beta", "Stopped")
    assert _conditions(status) == {"Ready": "True"}
    assert status["action"]["requested"] == "stop"
    deployment = connectors.deployment("beta")
    assert deployment is not None and deployment.spec.replicas == 0
    assert connectors.pods("beta") == []
    # The Service stays, ready for the start.
    connectors.core.read_namespaced_service("connector-beta", connectors.namespace)
    connectors.wait_event("beta", "Normal", "Stopping")
    connectors.wait_event("beta", "Normal", "Stopped")

    connectors.annotate("beta", "start")
    status = connectors.wait_phase("beta", "Running")
    deployment = connectors.deployment("beta")
    assert deployment is not None and deployment.spec.replicas == 1
    assert len(connectors.pods("beta")) == 1


def test_fail_then_start_is_refused_then_stop_recovers(
    operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(connector("gamma"))
    connectors.wait_phase("gamma", "Running")
    connectors.annotate("gamma", "fail")
    status = connectors.wait_phase("gamma", "Failed")
    assert _conditions(status) == {"Ready": "False", "Stalled": "True"}
    # Fail stops driving the workload: the Deployment is left as it was.
    deployment = connectors.deployment("gamma")
    assert deployment is not None and deployment.spec.replicas == 1
    connectors.wait_event("gamma", "Warning", "Failed")

    connectors.annotate("gamma", "start")

    def refused() -> dict[str, object] | None:
        status = connectors.status("gamma")
        return status if status.get("action", {}).get("accepted") is False else None

    status = eventually(refused, what="the start to be refused")
    assert status["phase"] == "Failed"
    assert "stop" in status["action"]["message"]
    connectors.wait_event("gamma", "Warning", "ActionRefused")
    settle()
    assert connectors.status("gamma")["phase"] == "Failed"
    refusals = [r for r in connectors.event_reasons("gamma") if r[1] == "ActionRefused"]
    assert len(refusals) == 1, "a refusal is announced once, not on every pass"

    connectors.annotate("gamma", "stop")
    connectors.wait_phase("gamma", "Stopped")
    deployment = connectors.deployment("gamma")
    assert deployment is not None and deployment.spec.replicas == 0
    connectors.annotate("gamma", "start")
    connectors.wait_phase("gamma", "Running")


@pytest.mark.parametrize("first", ["stop", "start"])
def test_fail_from_any_phase_and_fail_stays(
    operator: Operator, connectors: Connectors, first: str
) -> None:
    connectors.apply(connector("delta"))
    connectors.wait_phase("delta", "Running")
    connectors.annotate("delta", first)
    connectors.wait_phase("delta", "Stopped" if first == "stop" else "Running")
    connectors.annotate("delta", "fail")
    connectors.wait_phase("delta", "Failed")
    replicas = connectors.deployment("delta").spec.replicas  # type: ignore[union-attr]
    assert replicas == (0 if first == "stop" else 1)
    connectors.apply(connector("delta", "HttpData"))  # a no-op apply: stays Failed
    settle()
    assert connectors.status("delta")["phase"] == "Failed"


def test_start_while_running_and_stop_while_stopped_stay(
    operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(connector("eps"))
    connectors.wait_phase("eps", "Running")
    annotated = connectors.annotate("eps", "start")
    settle()
    # Only the annotation changed the object: the operator had nothing to write.
    after = connectors.get("eps")
    assert after["metadata"]["resourceVersion"] == annotated
    assert after["status"]["phase"] == "Running"
    connectors.annotate("eps", "stop")
    stopped = connectors.wait_phase("eps", "Stopped")
    settle()  # let the operator post its last event and see its own status write
    before = connectors.get("eps")["metadata"]["resourceVersion"]
    connectors.annotate("eps", "stop")
    settle()
    after = connectors.get("eps")
    assert after["metadata"]["resourceVersion"] == before, "a converged Connector costs no write"
    assert after["status"] == stopped


def test_unknown_action_changes_nothing_and_says_why(
    operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(connector("zeta"))
    connectors.wait_phase("zeta", "Running")
    connectors.annotate("zeta", "reboot")

    def said() -> dict[str, object] | None:
        status = connectors.status("zeta")
        return status if status.get("action", {}).get("requested") == "reboot" else None

    status = eventually(said, what="status to name the unknown action")
    assert status["action"]["accepted"] is False
    assert "'reboot'" in status["action"]["message"]
    assert status["phase"] == "Running"
    assert _conditions(status)["Stalled"] == "True"
    connectors.wait_event("zeta", "Warning", "InvalidAction")
    warnings = [e for e in connectors.events("zeta") if e.reason == "InvalidAction"]
    assert len(warnings) == 1 and "'reboot'" in warnings[0].message
    assert connectors.deployment("zeta").spec.replicas == 1  # type: ignore[union-attr]
    # The annotation is the user's: the operator never edits it.
    annotations = connectors.get("zeta")["metadata"]["annotations"]
    assert annotations["dataspace.dev/action"] == "reboot"


def test_edit_restarts_with_the_new_configuration(
    operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(s3("eta"))
    connectors.wait_phase("eta", "Running")
    old_pods = {p.metadata.name for p in connectors.pods("eta")}
    connectors.apply(s3("eta", region="us-east-1"))
    connectors.wait_phase("eta", "Running")
    connectors.wait_event("eta", "Normal", "Restarting")
    deployment = connectors.deployment("eta")
    assert deployment is not None
    env = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}
    assert env["CONNECTOR_STORAGE_REGION"] == "us-east-1"
    new_pods = eventually(
        lambda: {p.metadata.name for p in connectors.pods("eta")} - old_pods,
        what="a new pod",
    )
    assert len(new_pods) == 1


@pytest.mark.parametrize("held", ["stop", "fail"])
def test_edit_while_stopped_or_failed_keeps_the_phase(
    operator: Operator, connectors: Connectors, held: str
) -> None:
    connectors.apply(s3("theta"))
    connectors.wait_phase("theta", "Running")
    connectors.annotate("theta", held)
    phase = "Stopped" if held == "stop" else "Failed"
    connectors.wait_phase("theta", phase)
    template_before = connectors.deployment("theta").spec.template  # type: ignore[union-attr]
    connectors.apply(s3("theta", bucket_name="archive"))
    status = connectors.wait_phase("theta", phase)
    deployment = connectors.deployment("theta")
    assert deployment is not None
    env = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}
    if held == "stop":
        assert env["CONNECTOR_STORAGE_BUCKET_NAME"] == "archive"  # stored for the next start
        assert deployment.spec.replicas == 0
    else:
        assert deployment.spec.template == template_before  # Failed: left as it is
    assert status["phase"] == phase
    # Level-triggered: a start that replaces the stop before the operator saw it is a start
    # while Failed, and refused. Wait for Stopped, as a user would.
    connectors.annotate("theta", "stop")
    connectors.wait_phase("theta", "Stopped")
    connectors.annotate("theta", "start")
    connectors.wait_phase("theta", "Running")
    deployment = connectors.deployment("theta")
    env = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}  # type: ignore[union-attr]
    assert env["CONNECTOR_STORAGE_BUCKET_NAME"] == "archive"


def test_deleting_a_connector_leaves_nothing_behind(
    operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(s3("iota"))
    connectors.wait_phase("iota", "Running")
    connectors.kubectl("delete", "connector", "iota", "--wait=true", "--timeout=60s")

    def all_gone() -> bool:
        ns = connectors.namespace
        left = [
            *connectors.apps.list_namespaced_deployment(ns).items,
            *connectors.core.list_namespaced_secret(ns).items,
            *connectors.core.list_namespaced_service(ns).items,
            *connectors.pods("iota"),
        ]
        return not [o for o in left if o.metadata.name.startswith("connector-iota")]

    eventually(all_gone, what="the children to be garbage-collected")
