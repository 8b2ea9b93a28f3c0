"""Unit tests of the metrics read from the cache at each scrape: Connectors by namespace and
phase, and one series for each Failed Connector (and none for the others), as Prometheus
reads them from the registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from connector_operator import metrics
from connector_operator.cache import Cache


def connector(namespace: str, name: str, phase: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"namespace": namespace, "name": name, "uid": f"{namespace}-{name}",
                     "resourceVersion": "1"},
        "spec": {"storage_type": "AmazonS3",
                 "storage_config": {"bucket_name": "orders", "password_read": "pw-Zq81xT0w"}},
    }  # fmt: skip
    if phase is not None:
        body["status"] = {"phase": phase}
    return body


@pytest.fixture
def cache() -> Iterator[Cache]:
    """A cache that is never started (no client needed), counted from as the leader's is."""
    held = Cache(client=None, namespaces=(), enqueue=lambda key: None, forget=lambda key: None)  # type: ignore[arg-type]
    metrics.count_phases_with(held.phases)
    yield held
    metrics.count_phases_with(dict)


def sample(metric: str, /, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, labels)


def test_connectors_are_counted_by_namespace_and_phase(cache: Cache) -> None:
    for body in (
        connector("team-a", "orders", "Running"),
        connector("team-a", "invoices", "Running"),
        connector("team-a", "archive", "Stopped"),
        connector("team-b", "orders", "Running"),
        connector("team-b", "fresh", None),
    ):
        cache.connectors.upsert(body)
    assert sample("connector_operator_connectors", namespace="team-a", phase="Running") == 2
    assert sample("connector_operator_connectors", namespace="team-a", phase="Stopped") == 1
    assert sample("connector_operator_connectors", namespace="team-b", phase="Running") == 1
    assert sample("connector_operator_connectors", namespace="team-b", phase="Unknown") == 1
    assert sample("connector_operator_connectors", namespace="team-b", phase="Stopped") is None


def test_only_failed_connectors_have_a_series_of_their_name(cache: Cache) -> None:
    cache.connectors.upsert(connector("team-a", "orders", "Failed"))
    cache.connectors.upsert(connector("team-a", "invoices", "Running"))
    cache.connectors.upsert(connector("team-b", "orders", "Failed"))
    failed = {
        (s.labels["namespace"], s.labels["name"]): s.value
        for family in REGISTRY.collect()
        if family.name == "connector_operator_connector_failed"
        for s in family.samples
    }
    assert failed == {("team-a", "orders"): 1, ("team-b", "orders"): 1}


def test_a_connector_that_recovers_loses_its_failed_series(cache: Cache) -> None:
    cache.connectors.upsert(connector("team-a", "orders", "Failed"))
    assert sample("connector_operator_connector_failed", namespace="team-a", name="orders") == 1
    stopped = connector("team-a", "orders", "Stopped")
    stopped["metadata"]["resourceVersion"] = "2"
    cache.connectors.upsert(stopped)
    assert sample("connector_operator_connector_failed", namespace="team-a", name="orders") is None
    assert sample("connector_operator_connectors", namespace="team-a", phase="Failed") is None


def test_no_label_carries_a_spec_value(cache: Cache) -> None:
    cache.connectors.upsert(connector("team-a", "orders", "Failed"))
    values = {
        value
        for family in REGISTRY.collect()
        if family.name.startswith("connector_operator_")
        for s in family.samples
        for value in s.labels.values()
    }
    assert "pw-Zq81xT0w" not in values and "orders" in values


def test_a_standby_exports_no_connector(cache: Cache) -> None:
    """Only the leader holds Connectors: without a cache the families are empty."""
    cache.connectors.upsert(connector("team-a", "orders", "Failed"))
    metrics.count_phases_with(dict)
    names = {
        family.name
        for family in REGISTRY.collect()
        if family.name.startswith("connector_operator_connector") and family.samples
    }
    assert names == set()


def test_every_phase_and_result_starts_at_zero() -> None:
    """So that rate() over the first Failed or error sees it, and dashboards show 0 at once."""
    for phase in ("Starting", "Running", "Restarting", "Stopping", "Stopped", "Failed"):
        assert sample("connector_operator_phase_transitions_total", phase=phase) is not None
    for result in ("ok", "retry", "error"):
        assert sample("connector_operator_reconciles_total", result=result) is not None
