"""The Grafana dashboard and the alerting rules of deploy/helm/connector-operator/files/, without
promtool or a cluster: the dashboard's shape as Grafana imports it, each alert's labels and
annotations and its promtool tests, the metric names of every expression (as far as the
operator's registry declares them), and the parser that finds those names.

promtool checks the syntax and runs the alerts' tests, and a live scrape of the operator
proves the names, in tests/integration/test_monitoring.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest

import connector_operator.metrics  # noqa: F401 -- registers the operator's metrics
from tests.prometheus import promql
from tests.prometheus.promtool import ALERTS_TEST

BOARD = promql.dashboard()
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('sum by (phase) (x{namespace=~"$namespace", phase!="Failed"})', {"x"}),
        ("sum(x) by (le) / ignoring (code) group_left (a) y", {"x", "y"}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))", {"h_bucket"}),
        ("rate(x_total[5m] offset 1h30m) > bool 0.5e3", {"x_total"}),
        ("max_over_time(x[1h:5m]) or on (job) vector(0) unless absent(y)", {"x", "y"}),
        ('label_replace(x, "dst", "$1 by (a)", "src", "(.*)") and y', {"x", "y"}),
        ("time() - max by (path, selector) (t_seconds)", {"t_seconds"}),
        ('topk(5, a) + count_values("v", b) * Inf - NaN', {"a", "b"}),
        ("job:requests:rate5m", {"job:requests:rate5m"}),
        ("sum without (instance) (x) atan2 y", {"x", "y"}),
        ("rate (x[${__rate_interval}])", {"x"}),
    ],
)
def test_metric_names_of_promql(expr: str, names: set[str]) -> None:
    assert promql.metric_names(expr) == names


def test_grafana_variables_become_promql() -> None:
    expr = 'sum(rate(x{job=~"$job", namespace=~"${namespace}"}[$__rate_interval]))'
    assert promql.as_promql(expr) == 'sum(rate(x{job=~".*", namespace=~".*"}[5m]))'


# -- the dashboard ------------------------------------------------------------------------------
def test_the_dashboard_is_one_grafana_imports() -> None:
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "time"):
        assert key in BOARD, key
    assert BOARD["uid"] == "connector-operator" and BOARD["title"]
    assert BOARD["schemaVersion"] >= 36, "Grafana 9 and newer"
    assert BOARD.get("id") is None, "an id would clash with the importing Grafana's dashboards"
    assert "__inputs" not in BOARD, "the datasource is a variable: no import prompt"


def test_the_dashboard_picks_a_prometheus_and_namespaces() -> None:
    variables = {v["name"]: v for v in BOARD["templating"]["list"]}
    datasource = variables["datasource"]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    for name in ("namespace", "job"):
        variable = variables[name]
        assert variable["type"] == "query" and variable["datasource"] == DATASOURCE
        assert variable["includeAll"] and variable["allValue"] == ".*"


def test_panels_have_unique_ids_and_a_place_on_the_grid() -> None:
    panels = promql.panels(BOARD)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), ids
    cells: dict[tuple[int, int], int] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("h", "w", "x", "y")), panel["title"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                other = cells.setdefault((x, y), panel["id"])
                assert other == panel["id"], f"panels {other} and {panel['id']} overlap"


def test_every_target_queries_the_chosen_datasource() -> None:
    for panel in promql.panels(BOARD):
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel.get("description"), panel["id"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        targets: list[dict[str, Any]] = panel["targets"]
        assert targets, panel["title"]
        assert len({t["refId"] for t in targets}) == len(targets), panel["title"]
        for target in targets:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]
            assert promql.metric_names(target["expr"]), f"{panel['title']}: reads no metric"
            assert 'job=~"$job"' in target["expr"], f"{panel['title']}: not per installation"


def test_the_dashboard_shows_what_it_must() -> None:
    queried = {n for q in promql.dashboard_queries(BOARD) for n in promql.metric_names(q.expr)}
    wanted = {
        "connector_operator_connectors",  # Connectors by phase
        "connector_operator_connector_failed",
        "connector_operator_phase_transitions_total",
        "connector_operator_reconcile_duration_seconds_bucket",
        "connector_operator_api_writes_total",
        "connector_operator_queue_depth",
        "connector_operator_leader",
        "connector_operator_storage_checks_total",
    }
    assert wanted <= queried, wanted - queried


# -- the alerts ---------------------------------------------------------------------------------
ALERTS = {rule["alert"]: rule for rule in promql.alerting_rules()}


def test_the_alerts_are_the_documented_ones() -> None:
    assert sorted(ALERTS) == [
        "ConnectorFailed",
        "ConnectorOperatorDown",
        "ConnectorOperatorDriftRepairs",
        "ConnectorOperatorNoLeader",
        "ConnectorOperatorReconcileErrors",
        "ConnectorOperatorWatchStalled",
    ]
    assert all("record" not in rule for rule in promql.alerting_rules())


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_an_alert_says_how_bad_what_and_what_to_do(name: str) -> None:
    rule = ALERTS[name]
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["for"], "a blip never pages"
    assert rule["annotations"]["summary"].strip()
    assert len(rule["annotations"]["description"]) > 200, "a runbook, not a restatement"


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_an_alert_is_tested_firing_and_quiet(name: str) -> None:
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    cases = [c for t in tests for c in t.get("alert_rule_test", []) if c["alertname"] == name]
    assert any(c["exp_alerts"] for c in cases), f"{name} is never shown to fire"
    assert any(not c["exp_alerts"] for c in cases), f"{name} is never shown to stay quiet"


def test_every_metric_queried_is_one_the_operator_declares() -> None:
    """The integration test proves it on a live scrape; this says so before a cluster runs."""
    declared = promql.exported_names(generate_latest(REGISTRY).decode())
    samples = set().union(*declared.values())
    queries = [*promql.dashboard_queries(BOARD), *promql.alert_queries()]
    unknown = {q.where: promql.metric_names(q.expr) - samples for q in queries}
    assert not {where: names for where, names in unknown.items() if names}
