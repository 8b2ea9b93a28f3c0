"""The metric names a PromQL expression reads, and the expressions of the Grafana dashboard and
the alerting rules (pure: stdlib and PyYAML). promtool checks the syntax (tests/prometheus/
promtool.py); this finds what the expressions need the operator to export.

The expressions are parsed only as far as the names go, in the order that keeps each step
simple: strings first (they may hold anything), then what sits in braces (label matchers) and
brackets (ranges, subqueries), then the label lists of grouping and vector matching; what is
left are metric names, function names (followed by a parenthesis), keywords and numbers. A name
given only as {__name__="..."} is not seen: the dashboard and the rules do not use that form.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "deploy" / "helm" / "connector-operator" / "files"
RULES = FILES / "prometheus-rules.yaml"
DASHBOARD = FILES / "dashboard.json"

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_GRAFANA_VARIABLE = re.compile(r"\$(?:\{[^}]*\}|\w+)")
# A number (durations such as 5m or 1h30m, 0.99, 1e3, 0x1f) is one token, so that its unit or
# exponent is never taken for a name.
_TOKEN = re.compile(r"\d[\w.]*|\.\d[\w.]*|([a-zA-Z_:][\w:]*)(\s*\()?")
KEYWORDS = frozenset(
    {
        "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
        "group_left", "group_right", "inf", "nan", "atan2",
    }
)  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names `expr` selects (Grafana's $variables allowed)."""
    text = _STRING.sub('""', expr)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    text = _BRACES.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    names = set()
    for match in _TOKEN.finditer(text):
        name, call = match.group(1), match.group(2)
        if name is None or call is not None or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def as_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced, as Grafana would send it:
    intervals by a duration, the others (used in label matchers) by a regular expression."""
    expr = re.sub(r"\$__(?:rate_)?interval\b|\$\{__(?:rate_)?interval\}", "5m", expr)
    expr = re.sub(r"\$__range\b|\$\{__range\}", "1h", expr)
    return _GRAFANA_VARIABLE.sub(".*", expr)


@dataclass(frozen=True)
class Query:
    where: str  # e.g. "panel 4 (Connectors by phase) target A"
    expr: str


def dashboard() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return result


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside a collapsed row included."""
    found = []
    for panel in board.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def dashboard_queries(board: dict[str, Any]) -> list[Query]:
    """The PromQL of every panel target and of every query variable."""
    queries = [
        Query(f"panel {p.get('id')} ({p.get('title')}) target {t.get('refId')}", t.get("expr", ""))
        for p in panels(board)
        for t in p.get("targets", [])
    ]
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            # label_values(selector, label): the selector is PromQL, the label is not.
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", text.strip())
            queries.append(Query(f"variable {variable['name']}", inner[1] if inner else text))
    return queries


def alerting_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load(RULES.read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def alert_queries() -> list[Query]:
    return [Query(f"alert {rule['alert']}", rule["expr"]) for rule in alerting_rules()]


def exported_names(scrape: str) -> dict[str, set[str]]:
    """Per metric family of a /metrics text (its # TYPE line), the sample names it stands for
    (a histogram's _bucket, _sum and _count)."""
    families: dict[str, set[str]] = {}
    for line in scrape.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
            families[name] = {name + suffix for suffix in suffixes}
    return families


def sampled_names(scrape: str) -> set[str]:
    """The names of the samples a /metrics text holds."""
    return {
        re.split(r"[{\s]", line, maxsplit=1)[0]
        for line in scrape.splitlines()
        if line and not line.startswith("#")
    }
