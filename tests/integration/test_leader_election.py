"""Two replicas: only the Lease holder reconciles; the other takes over when it dies."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kubernetes import client

from tests.integration.conftest import (
    OPERATOR_NAMESPACE,
    OPERATOR_SA,
    Connectors,
    Operator,
    connector,
)
from tests.support import eventually

pytestmark = pytest.mark.cluster


def _grant_leases(api: client.ApiClient, namespace: str) -> None:
    """deploy/rbac.yaml's leader-election Role, in the test's namespace."""
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="leader-election"),
            rules=[client.V1PolicyRule(api_groups=["coordination.k8s.io"], resources=["leases"],
                                       verbs=["get", "create", "update"])],
        ),
    )  # fmt: skip
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="leader-election"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="leader-election"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=OPERATOR_SA,
                                           namespace=OPERATOR_NAMESPACE)],
        ),
    )  # fmt: skip


def test_only_the_leader_reconciles_and_a_standby_takes_over(
    start_operator: Callable[..., Operator],
    connectors: Connectors,
    api: client.ApiClient,
    namespace: str,
) -> None:
    _grant_leases(api, namespace)
    coordination = client.CoordinationV1Api(api)
    env = {
        "CONNECTOR_OPERATOR_LEADER_ELECTION": "true",
        "CONNECTOR_OPERATOR_LEASE_NAMESPACE": namespace,
        "CONNECTOR_OPERATOR_LEASE_DURATION_SECONDS": "4",
    }

    def holder() -> str | None:
        try:
            lease = coordination.read_namespaced_lease("connector-operator", namespace)
        except client.ApiException:
            return None
        return str(lease.spec.holder_identity or "") or None

    first = start_operator(**env)
    assert first.process is not None
    first_id = eventually(holder, what="a leader")
    assert first_id.endswith(f"-{first.process.pid}")
    second = start_operator(**env)
    connectors.apply(connector("lead"))
    connectors.wait_phase("lead", "Running")
    assert holder() == first_id, "the standby must not take the Lease from a live leader"

    first.kill()
    connectors.annotate("lead", "stop")
    assert second.process is not None
    eventually(lambda: holder() != first_id, timeout=60, what="the standby to take over")
    assert str(holder()).endswith(f"-{second.process.pid}")
    connectors.wait_phase("lead", "Stopped")
    lease = coordination.read_namespaced_lease("connector-operator", namespace)
    assert lease.spec.lease_transitions == 1
