"""Correct under faults: crashes at exact points, an API server restart, a workload that never
becomes ready, and a Connector the API server refuses, beside healthy ones."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import yaml

from tests.conftest import BACKEND, Cluster
from tests.integration.conftest import Connectors, Operator, connector, s3
from tests.support import eventually

pytestmark = pytest.mark.cluster


def _children(connectors: Connectors) -> dict[str, list[str]]:
    ns = connectors.namespace
    apps, core = connectors.apps, connectors.core
    return {
        "deployments": sorted(d.metadata.name for d in apps.list_namespaced_deployment(ns).items),
        "replicasets": sorted(
            r.metadata.name for r in apps.list_namespaced_replica_set(ns).items if r.spec.replicas
        ),
        "secrets": sorted(s.metadata.name for s in core.list_namespaced_secret(ns).items),
        "services": sorted(s.metadata.name for s in core.list_namespaced_service(ns).items),
    }


def _died(op: Operator) -> None:
    assert op.process is not None
    op.process.wait(60)
    assert op.process.returncode == -9, "the failpoint kills the operator with SIGKILL"


@pytest.mark.parametrize(
    ("point", "acknowledged"),
    [("before-status:run", False), ("after-status:run", True),
     ("after-apply:Secret", True), ("after-apply:Deployment", True)],
)  # fmt: skip
def test_crash_while_creating_then_restart_converges(
    start_operator: Callable[..., Operator], connectors: Connectors, point: str, acknowledged: bool
) -> None:
    crashing = start_operator(CONNECTOR_OPERATOR_FAILPOINT=point)
    connectors.apply(s3("crash"))
    _died(crashing)
    # The status is written first (it acknowledges the Connector), then the children.
    phase = connectors.status("crash").get("phase")
    assert phase == ("Starting" if acknowledged else None), f"died at {point}: phase {phase}"
    if not acknowledged:
        assert _children(connectors)["deployments"] == [], "nothing was made before the status"
    start_operator()
    connectors.wait_phase("crash", "Running")
    assert _children(connectors) == {
        "deployments": ["connector-crash"],
        "replicasets": [eventually(lambda: _one_rs(connectors), what="one ReplicaSet")],
        "secrets": ["connector-crash"],
        "services": ["connector-crash"],
    }


def _one_rs(connectors: Connectors) -> str | None:
    names = _children(connectors)["replicasets"]
    return names[0] if len(names) == 1 else None


def test_crash_between_the_stop_acknowledged_and_the_deployment_scaled(
    start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    first = start_operator()
    connectors.apply(connector("halt"))
    connectors.wait_phase("halt", "Running")
    first.stop()
    crashing = start_operator(CONNECTOR_OPERATOR_FAILPOINT="after-status:stop")
    connectors.annotate("halt", "stop")
    _died(crashing)
    assert connectors.status("halt")["phase"] == "Stopping", "the stop was acknowledged"
    assert connectors.deployment("halt").spec.replicas == 1, "the Deployment was not scaled yet"  # type: ignore[union-attr]
    start_operator()
    connectors.wait_phase("halt", "Stopped")
    assert connectors.deployment("halt").spec.replicas == 0  # type: ignore[union-attr]
    assert _children(connectors)["deployments"] == ["connector-halt"]


@pytest.mark.skipif(BACKEND != "local", reason="restarts the local control plane's API server")
def test_api_server_restart_mid_transition(
    operator: Operator, connectors: Connectors, cluster: Cluster
) -> None:
    for name in ("r1", "r2", "r3"):
        connectors.apply(connector(name))
    connectors.wait_phase("r1", "Running")
    connectors.annotate("r1", "stop")
    assert cluster.plane is not None
    cluster.plane.restart_apiserver()
    connectors.annotate("r2", "stop")
    connectors.wait_phase("r1", "Stopped", timeout=120)
    connectors.wait_phase("r2", "Stopped", timeout=120)
    connectors.wait_phase("r3", "Running", timeout=120)
    connectors.apply(connector("r4"))  # new watch events arrive after the restart
    connectors.wait_phase("r4", "Running", timeout=120)
    assert operator.alive(), "the operator reconnected without a restart of its own"


def test_progress_deadline_makes_the_connector_failed(
    start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    # No node has a million CPUs (the local one has 1,000): the pod stays Pending and the
    # Deployment misses its deadline.
    start_operator(
        CONNECTOR_OPERATOR_RESOURCES='{"requests": {"cpu": "1000000"}}',
        CONNECTOR_OPERATOR_PROGRESS_DEADLINE_SECONDS="3",
    )
    connectors.apply(connector("slow"))
    status = connectors.wait_phase("slow", "Failed", timeout=120)
    stalled = {c["type"]: c for c in status["conditions"]}["Stalled"]
    assert stalled["reason"] == "ProgressDeadlineExceeded"
    assert "connector-slow" in status["message"]
    connectors.wait_event("slow", "Warning", "Failed")


POLICY = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: deny-connector-broken-NS}
spec:
  failurePolicy: Fail
  matchConstraints:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: NS}}
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]
  validations:
  - expression: object.metadata.name != 'connector-broken'
    message: deployments named connector-broken are not allowed here
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: deny-connector-broken-NS}
spec:
  policyName: deny-connector-broken-NS
  validationActions: [Deny]
"""


def test_a_refused_connector_does_not_block_the_others(
    operator: Operator, connectors: Connectors, cluster: Cluster
) -> None:
    policy = POLICY.replace("NS", connectors.namespace)
    cluster.kubectl("apply", "-f", "-", stdin=policy)
    try:

        def refuses() -> bool:
            labels = {"app": "probe"}
            probe = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "connector-broken"},
                "spec": {
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "c", "image": "probe"}]},
                    },
                },
            }
            out = connectors.kubectl("apply", "--dry-run=server", "-f", "-",
                                     stdin=yaml.safe_dump(probe), check=False)  # fmt: skip
            return "not allowed here" in out

        eventually(refuses, what="the admission policy to be active")
        connectors.apply(connector("broken"))
        for name in ("ok1", "ok2"):
            connectors.apply(connector(name))

        def blocked() -> dict[str, object] | None:
            conditions = {c["type"]: c for c in connectors.status("broken").get("conditions", [])}
            stalled = conditions.get("Stalled")
            return stalled if stalled and stalled["reason"] == "ApplyFailed" else None

        stalled = eventually(blocked, what="broken to be Stalled")
        assert "not allowed here" in str(stalled["message"])
        connectors.wait_phase("ok1", "Running")
        connectors.wait_phase("ok2", "Running")
        # The retries (backoff 0.5, 1, 2, 4 s) neither report it again nor clear the report
        # for a moment: one Warning, and Stalled since the first refusal.
        time.sleep(8)
        assert blocked() == stalled, "Stalled stood, unchanged, through the retries"
        refused = [e for e in connectors.events("broken") if e.reason == "ApplyFailed"]
        assert len(refused) == 1, [e.message for e in refused]
    finally:
        cluster.kubectl("delete", "-f", "-", stdin=policy, check=False)
    # Once the cause is gone, the retries with backoff bring it up by itself.
    connectors.wait_phase("broken", "Running", timeout=120)


def test_liveness_notices_a_stalled_watch(
    start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    healthy = start_operator()
    connectors.apply(connector("seen"))
    connectors.wait_phase("seen", "Running")

    def answering() -> str | None:
        code, body = healthy.health()
        return body if code == 200 else None

    body = eventually(answering, what="the liveness probe to answer")
    assert '"connectors": 1' in body
    healthy.stop()

    # A watch that silently stops delivering: the probe compares with the API server.
    stalled = start_operator(
        CONNECTOR_OPERATOR_FAILPOINT="drop-connector-events",
        CONNECTOR_OPERATOR_WATCH_GRACE_SECONDS="1",
    )
    # Once it has listed (primed its cache), its watch delivers nothing more.
    eventually(lambda: '"leading": 1' in stalled.health()[1], what="the stalled one to prime")
    connectors.apply(connector("unseen"))

    def failing() -> tuple[int, str] | None:
        code, body = stalled.health()
        return (code, body) if code == 500 else None

    eventually(failing, timeout=60, what="the liveness probe to fail")
