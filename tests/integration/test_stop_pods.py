"""A stop is finished once the Connector's pods have ended, terminating ones included: counted
from the Deployment's status where its controller counts terminating pods (Kubernetes 1.35 on),
and from the pods themselves where it does not (watched from the first such Deployment seen)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Cluster
from tests.integration.conftest import (
    Connectors,
    Operator,
    connector,
    controller_manager_with,
    pod_kept,
    settle,
)
from tests.support import eventually

pytestmark = pytest.mark.cluster
OLD_CONTROLLERS = "--feature-gates=DeploymentReplicaSetTerminatingReplicas=false"


def watched_paths(operator: Operator) -> list[str]:
    """The collections the operator watches, as its metrics name them."""
    return [
        line.split('path="', 1)[1].split('"', 1)[0]
        for line in operator.metrics().splitlines()
        if line.startswith("connector_operator_watch_relists_total{")
    ]


def stop_while_a_pod_is_kept(connectors: Connectors, name: str) -> None:
    """Stopping for as long as the pod is kept Terminating; Stopped once it has ended."""
    with pod_kept(connectors, name) as pod:
        connectors.annotate(name, "stop")
        connectors.wait_phase(name, "Stopping")
        eventually(
            lambda: (p := connectors.pods(name)) and p[0].metadata.deletion_timestamp,
            what=f"pod {pod} deleted and kept Terminating",
        )
        settle(3)
        assert connectors.status(name)["phase"] == "Stopping", "a pod is still terminating"
    connectors.wait_phase(name, "Stopped")
    assert connectors.pods(name) == []


def test_a_stop_waits_for_a_terminating_pod_counted_by_its_deployment(
    operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(connector("counted"))
    connectors.wait_phase("counted", "Running")
    stop_while_a_pod_is_kept(connectors, "counted")
    deployment = connectors.deployment("counted")
    assert deployment is not None
    assert deployment.status.terminating_replicas == 0, "this API server counts them"
    assert not [p for p in watched_paths(operator) if p.endswith(("/pods", "/replicasets"))]


def test_where_deployments_do_not_count_terminating_pods_the_pods_are_watched(
    cluster: Cluster, start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    with controller_manager_with(cluster, OLD_CONTROLLERS):
        operator = start_operator()
        connectors.apply(connector("uncounted"))
        connectors.wait_phase("uncounted", "Running")
        deployment = connectors.deployment("uncounted")
        assert deployment is not None
        assert deployment.status.terminating_replicas is None, "as before Kubernetes 1.35"
        paths = watched_paths(operator)
        assert [p for p in paths if p.endswith("/pods")], paths
        assert [p for p in paths if p.endswith("/replicasets")], paths
        assert "has no status.terminatingReplicas" in operator.logs()
        stop_while_a_pod_is_kept(connectors, "uncounted")
        # A restart lists the pods before any pass: Stopped stays, no new transition.
        reasons = connectors.event_reasons("uncounted")
        operator.kill()
        again = start_operator()
        eventually(lambda: "reconciling 1 Connectors" in again.logs(), what="the restart")
        settle(3)
        assert connectors.status("uncounted")["phase"] == "Stopped"
        assert connectors.event_reasons("uncounted") == reasons
