"""The fewest API writes: counted by the API server's audit log, not by the operator itself."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import BACKEND, Cluster
from tests.integration.conftest import Connectors, Operator, audit_writes, s3, settle

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(BACKEND != "local", reason="reads the local control plane's audit log"),
]


def _tally(cluster: Cluster, namespace: str) -> Counter[str]:
    tally: Counter[str] = Counter()
    for entry in audit_writes(cluster, namespace):
        if entry["responseStatus"]["code"] >= 300:
            tally["failed"] += 1
            continue
        ref = entry["objectRef"]
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        tally[resource] += 1
    return tally


# The minimum for create -> Running, stop, start, fail, stop, delete (README, Operations: Writes):
# - objects: Secret, Service and Deployment once at create; the Deployment's replicas on each
#   of stop, start and the stop after fail (fail leaves the workload alone);
# - status: one write per phase entered (Starting, Running, Stopping, Stopped, Starting,
#   Running, Failed, Stopping, Stopped); events: one per phase entered;
# - delete: nothing; garbage collection removes the children.
MINIMUM = Counter(
    {"secrets": 1, "services": 1, "deployments": 4, "connectors/status": 9, "events": 9}
)


def test_one_lifecycle_costs_the_minimum_writes(
    operator: Operator, connectors: Connectors, cluster: Cluster
) -> None:
    connectors.apply(s3("lean"))
    connectors.wait_phase("lean", "Running")
    settle(3)  # converged: any write now would be busy work
    assert _tally(cluster, connectors.namespace) == Counter(
        {"secrets": 1, "services": 1, "deployments": 1, "connectors/status": 2, "events": 2}
    )
    for action, phase in (
        ("stop", "Stopped"),
        ("start", "Running"),
        ("fail", "Failed"),
        ("stop", "Stopped"),
    ):
        connectors.annotate("lean", action)
        connectors.wait_phase("lean", phase)
    connectors.kubectl("delete", "connector", "lean", "--wait=true")
    settle(3)
    tally = _tally(cluster, connectors.namespace)
    print(f"API writes of one lifecycle: {dict(tally)}; minimum: {dict(MINIMUM)}")
    assert tally == MINIMUM
