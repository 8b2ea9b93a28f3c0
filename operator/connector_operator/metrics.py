"""Prometheus metrics of the operator (prometheus_client only). No label carries a value from
a Connector's storage_config."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

API_WRITES = Counter(
    "connector_operator_api_writes_total",
    "Writes the operator sent to the API server.",
    ["verb", "resource"],
)
RECONCILES = Counter(
    "connector_operator_reconciles_total",
    "Reconcile passes, by result (ok, retry, error).",
    ["result"],
)
RECONCILE_SECONDS = Histogram(
    "connector_operator_reconcile_duration_seconds",
    "How long one reconcile pass took.",
)
QUEUE_DEPTH = Gauge(
    "connector_operator_queue_depth",
    "Connectors waiting to be reconciled.",
)
LEADER = Gauge(
    "connector_operator_leader",
    "1 while this replica holds the Lease and reconciles, else 0.",
)
DRIFT_REPAIRS = Counter(
    "connector_operator_drift_repairs_total",
    "Children restored after a change or deletion made outside the operator, by kind.",
    ["kind"],
)
WATCH_RELISTS = Counter(
    "connector_operator_watch_relists_total",
    "Watches the API server could not continue (410 Gone), answered with a fresh LIST.",
    ["path"],
)

STORAGE_CHECKS = Counter(
    "connector_operator_storage_checks_total",
    "Storage checks done, by storage type and result (the StorageReachable reason).",
    ["storage_type", "result"],
)
STORAGE_CHECK_SECONDS = Histogram(
    "connector_operator_storage_check_duration_seconds",
    "How long one storage check took, its wait for a free slot excluded.",
    ["storage_type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STORAGE_CHECKS_IN_FLIGHT = Gauge(
    "connector_operator_storage_checks_in_flight",
    "Storage checks calling the storage now.",
)


class _PhaseCollector(Collector):
    """connector_operator_connectors{phase}: counted from the cache at each scrape, so it is
    never out of step with what the operator holds."""

    def __init__(self) -> None:
        self.source: Callable[[], Mapping[str, int]] = dict

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "connector_operator_connectors",
            "Connectors known to the operator, by phase (only the leader knows them).",
            labels=["phase"],
        )
        for phase, count in sorted(self.source().items()):
            family.add_metric([phase], count)
        yield family


_PHASES = _PhaseCollector()
REGISTRY.register(_PHASES)


def count_phases_with(source: Callable[[], Mapping[str, int]]) -> None:
    """Where connector_operator_connectors reads its numbers from."""
    _PHASES.source = source
