"""The local control plane's sizing: read from the environment, turned into flags, reported."""

from __future__ import annotations

import pytest

from tests.cluster.controlplane import ControlPlaneError, Sizing


def test_without_variables_the_node_is_large_and_the_limits_are_upstreams() -> None:
    sizing = Sizing.from_env({})
    assert (sizing.node_pods, sizing.node_cpu, sizing.node_memory) == (5000, "1000", "4Ti")
    assert sizing.args("kube-controller-manager") == []
    assert sizing.args("kube-scheduler") == []
    assert sizing.report()["controller_manager_qps"] == "20 (upstream default)"


def test_variables_set_the_capacity_and_the_client_limits() -> None:
    sizing = Sizing.from_env(
        {
            "CONNECTOR_CLUSTER_NODE_PODS": "8000",
            "CONNECTOR_CLUSTER_KCM_QPS": "400",
            "CONNECTOR_CLUSTER_KCM_BURST": "800",
            "CONNECTOR_CLUSTER_SCHEDULER_QPS": "",  # empty: the default
        }
    )
    assert sizing.node_pods == 8000
    assert sizing.args("kube-controller-manager") == ["--kube-api-qps=400", "--kube-api-burst=800"]
    assert sizing.args("kube-scheduler") == []
    assert sizing.args("kwok") == []
    assert sizing.report()["controller_manager_burst"] == 800


@pytest.mark.parametrize(
    ("variable", "value"),
    [("CONNECTOR_CLUSTER_NODE_PODS", "many"), ("CONNECTOR_CLUSTER_KCM_BURST", "1.5")],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ControlPlaneError, match=variable):
        Sizing.from_env({variable: value})
