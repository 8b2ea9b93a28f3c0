"""Prometheus metrics of the operator (prometheus_client and the models' phases only). No label
carries a value from a Connector's storage_config."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from connector_operator.models import Phase

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
# Every result starts at 0, so that rate() sees the first error and a dashboard shows none.
RECONCILE_RESULTS = {r: RECONCILES.labels(result=r) for r in ("ok", "retry", "error")}
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
# Every kind a Connector's children are of starts at 0: rate() then counts the first repair
# after a start or a failover, which a series born at 1 would hide.
for _kind in ("Deployment", "Service", "Secret", "Ingress"):
    DRIFT_REPAIRS.labels(kind=_kind)
WATCH_RELISTS = Counter(
    "connector_operator_watch_relists_total",
    "Watches the API server could not continue (410 Gone), answered with a fresh LIST.",
    ["path"],
)
# Two informers may watch one path (the operator's own Secrets, and every Secret as metadata):
# the selector tells them apart.
WATCH_ERRORS = Counter(
    "connector_operator_watch_errors_total",
    "LISTs and watches that failed (410 Gone aside) and were retried after a pause.",
    ["path", "selector"],
)
WATCH_LAST_CONTACT = Gauge(
    "connector_operator_watch_last_contact_timestamp_seconds",
    "When the API server last answered this watch: a LIST, an event or bookmark, or a watch "
    "that ran to its timeout (every 5 minutes at least while it works).",
    ["path", "selector"],
)


M = TypeVar("M", Counter, Gauge)


@functools.cache
def series(metric: M, *labels: str) -> M:
    """The child of `metric` with these label values, looked up once: on a path taken per
    request or per watch event, a label lookup costs more than the bookkeeping it serves."""
    return metric.labels(*labels)


def write_sent(verb: str, resource: str) -> None:
    series(API_WRITES, verb, resource).inc()


def watch_contacted(path: str, selector: str) -> None:
    series(WATCH_LAST_CONTACT, path, selector).set_to_current_time()


PHASE_TRANSITIONS = Counter(
    "connector_operator_phase_transitions_total",
    "Connectors that entered a phase (their status written with a new phase), by that phase.",
    ["phase"],
)
for _phase in Phase:
    PHASE_TRANSITIONS.labels(phase=_phase.value)

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
    """connector_operator_connectors{namespace,phase} and
    connector_operator_connector_failed{namespace,name}: read from the cache at each scrape, so
    they are never out of step with what the operator holds.

    A name label costs a series per Connector; only Failed ones get one (a Failed Connector
    is an exception that someone must look at, and its alert must name it)."""

    def __init__(self) -> None:
        self.source: Callable[[], Mapping[tuple[str, str], str]] = dict

    def collect(self) -> Iterator[GaugeMetricFamily]:
        phases = self.source()
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for (namespace, _), phase in phases.items():
            counts[(namespace, phase)] += 1
        by_phase = GaugeMetricFamily(
            "connector_operator_connectors",
            "Connectors known to the operator, by namespace and phase (Unknown: not reconciled "
            "yet; only the leader knows them).",
            labels=["namespace", "phase"],
        )
        for (namespace, phase), count in sorted(counts.items()):
            by_phase.add_metric([namespace, phase], count)
        yield by_phase
        failed = GaugeMetricFamily(
            "connector_operator_connector_failed",
            "1 for each Connector in phase Failed (no series for the others).",
            labels=["namespace", "name"],
        )
        for (namespace, name), phase in sorted(phases.items()):
            if phase == Phase.FAILED.value:
                failed.add_metric([namespace, name], 1)
        yield failed


_PHASES = _PhaseCollector()
REGISTRY.register(_PHASES)


def count_phases_with(source: Callable[[], Mapping[tuple[str, str], str]]) -> None:
    """Where connector_operator_connectors and connector_operator_connector_failed read each
    Connector's phase from: (namespace, name) -> phase."""
    _PHASES.source = source
