"""Prometheus metrics of the operator (prometheus_client only). No label carries a value from
a Connector's storage_config."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
CONNECTORS = Gauge(
    "connector_operator_connectors",
    "Connectors known to the operator, by phase.",
    ["phase"],
)
