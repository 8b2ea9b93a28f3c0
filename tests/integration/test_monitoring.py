"""The alerts and the dashboard of deploy/helm/connector-operator/files/ with the real tools:
promtool checks the rules and runs their unit tests (tests/prometheus/alerts_test.yaml) and
parses every dashboard query; and a live scrape of the real operator, after it reconciled
Connectors that run, fail, have a child repaired and their storage checked, holds every metric
those expressions name, passes `promtool check metrics`, and is all on the dashboard."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Connectors, Operator, connector, free_port, s3
from tests.prometheus import promql
from tests.prometheus.promtool import ALERTS_TEST, promtool
from tests.support import eventually

CONNECTORS = "/apis/dataspace.dev/v1alpha1/namespaces/{}/connectors"


def test_promtool_accepts_the_rules() -> None:
    out = promtool("check", "rules", str(promql.RULES)).stdout
    assert f"SUCCESS: {len(promql.alerting_rules())} rules found" in out


def test_the_alerts_pass_their_promtool_unit_tests() -> None:
    out = promtool("test", "rules", str(ALERTS_TEST)).stdout
    assert "SUCCESS" in out


def dashboard_as_rules(path: Path, exprs: list[str]) -> Path:
    """The queries as recording rules, for promtool to parse (Grafana's variables replaced)."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": promql.as_promql(expr)}
        for i, expr in enumerate(exprs)
    ]
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return path


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    queries = promql.dashboard_queries(promql.dashboard())
    rules = dashboard_as_rules(tmp_path / "dashboard.yaml", [q.expr for q in queries])
    assert f"SUCCESS: {len(queries)} rules found" in promtool("check", "rules", str(rules)).stdout


def test_promtool_refuses_a_broken_query(tmp_path: Path) -> None:
    """The check above would notice a query Prometheus cannot parse."""
    rules = dashboard_as_rules(tmp_path / "broken.yaml", ["sum(rate(x[$__rate_interval])) by"])
    with pytest.raises(AssertionError, match="parse error"):
        promtool("check", "rules", str(rules))


def sample(scrape: str, metric: str, /, **labels: str) -> float | None:
    for family in text_string_to_metric_families(scrape):
        for found in family.samples:
            if found.name == metric and labels.items() <= found.labels.items():
                return float(found.value)
    return None


@pytest.mark.cluster
def test_a_live_scrape_holds_every_metric_the_dashboard_and_alerts_name(
    start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    operator = start_operator(
        CONNECTOR_OPERATOR_STORAGE_CHECK="warn",
        CONNECTOR_OPERATOR_STORAGE_CHECK_TIMEOUT_SECONDS="2",
    )
    namespace = connectors.namespace
    connectors.apply(connector("mon-run"))
    connectors.apply(connector("mon-fail"))
    # Nothing listens on that port: the storage check ends EndpointUnreachable (warn: it runs).
    connectors.apply(s3("mon-s3", url=f"http://127.0.0.1:{free_port()}"))
    connectors.wait_phase("mon-fail", "Running")
    connectors.annotate("mon-fail", "fail")
    connectors.wait_phase("mon-fail", "Failed")
    connectors.wait_phase("mon-run", "Running")
    connectors.kubectl("delete", "deployment", "connector-mon-run", "--wait=true")
    connectors.wait_event("mon-run", "Warning", "DriftRepaired")
    connectors.wait_phase("mon-run", "Running")
    connectors.wait_phase("mon-s3", "Running")
    eventually(
        lambda: (
            (connectors.condition("mon-s3", "StorageReachable") or {}).get("reason")
            == "EndpointUnreachable"
        ),
        what="mon-s3's storage check",
    )

    def repaired() -> str | None:
        text = operator.metrics()
        return text if (sample(text, "connector_operator_drift_repairs_total") or 0) >= 1 else None

    scrape = eventually(repaired, what="the drift repair counted")

    # Every name of every expression has samples in the scrape.
    sampled = promql.sampled_names(scrape)
    queries = [*promql.dashboard_queries(promql.dashboard()), *promql.alert_queries()]
    missing = {q.where: sorted(promql.metric_names(q.expr) - sampled) for q in queries}
    assert not {where: names for where, names in missing.items() if names}, missing

    # Every family of the operator is on the dashboard.
    queried = {n for q in queries for n in promql.metric_names(q.expr)}
    families = promql.exported_names(scrape)
    unshown = [
        family
        for family, names in families.items()
        if family.startswith("connector_operator_")
        and not family.endswith("_created")
        and not names & queried
    ]
    assert not unshown, f"metrics no dashboard panel shows: {unshown}"

    # Prometheus's own lint of the exposition (names, units, help texts).
    promtool("check", "metrics", stdin=scrape)

    # What the alerts and panels will read.
    connectors_path = CONNECTORS.format(namespace)
    assert sample(scrape, "connector_operator_connectors", namespace=namespace, phase="Failed") == 1
    assert (
        sample(scrape, "connector_operator_connectors", namespace=namespace, phase="Running") == 2
    )
    failed = {
        s.labels["name"]
        for f in text_string_to_metric_families(scrape)
        for s in f.samples
        if s.name == "connector_operator_connector_failed"
    }
    assert failed == {"mon-fail"}
    assert (sample(scrape, "connector_operator_phase_transitions_total", phase="Failed") or 0) >= 1
    assert (sample(scrape, "connector_operator_phase_transitions_total", phase="Running") or 0) >= 3
    assert (sample(scrape, "connector_operator_drift_repairs_total", kind="Deployment") or 0) >= 1
    checks = sample(scrape, "connector_operator_storage_checks_total",
                    storage_type="AmazonS3", result="EndpointUnreachable")  # fmt: skip
    assert (checks or 0) >= 1
    contact = sample(
        scrape, "connector_operator_watch_last_contact_timestamp_seconds", path=connectors_path
    )
    assert contact is not None and time.time() - contact < 120, "the watch answered just now"
    assert sample(scrape, "connector_operator_watch_errors_total", path=connectors_path) == 0
    assert sample(scrape, "connector_operator_leader") == 1

    # Stopped, the Connector is no longer Failed: its series goes, and the alert resolves.
    connectors.annotate("mon-fail", "stop")
    connectors.wait_phase("mon-fail", "Stopped")
    eventually(
        lambda: sample(operator.metrics(), "connector_operator_connector_failed") is None,
        what="mon-fail's Failed series to go",
    )
