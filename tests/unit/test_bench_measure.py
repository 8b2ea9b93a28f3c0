"""The benchmark's pure parts: percentiles, the audit log counted per request, the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.scale.measure import AuditLog, percentile, requests_by
from tests.scale.report import markdown, targets

USER = "system:serviceaccount:connector-operator-system:connector-operator"


def entry(
    audit_id: str, verb: str, resource: str, *, stage: str = "ResponseComplete",
    user: str = USER, sub: str | None = None,
) -> str:  # fmt: skip
    ref = {"resource": resource, **({"subresource": sub} if sub else {})}
    return json.dumps({"auditID": audit_id, "stage": stage, "verb": verb,
                       "user": {"username": user}, "objectRef": ref})  # fmt: skip


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50.0, 99.0, 100.0,
    )  # fmt: skip
    assert percentile([0.2], 99) == 0.2


def test_a_request_counts_once_and_only_the_users() -> None:
    lines = [
        entry("w1", "watch", "deployments", stage="ResponseStarted"),
        entry("w1", "watch", "deployments"),  # the same watch, ended
        entry("p1", "patch", "connectors", sub="status"),
        entry("p2", "patch", "connectors", sub="status"),
        entry("c1", "create", "deployments"),
        entry("x1", "list", "pods", user="system:kube-controller-manager"),
    ]
    counts = requests_by(lines, USER)
    assert counts == {
        ("watch", "deployments"): 1,
        ("patch", "connectors/status"): 2,
        ("create", "deployments"): 1,
    }


def test_the_audit_log_is_read_from_where_it_ended(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(entry("a", "get", "secrets") + "\n" + entry("b", "get", "secrets")[:20])
    audit = AuditLog(log, USER)
    assert sum(audit.since_last().values()) == 1  # the half-written line waits
    with log.open("a") as more:
        more.write(entry("b", "get", "secrets")[20:] + "\n")
    assert audit.since_last() == {("get", "secrets"): 1}
    assert not audit.since_last()


def result(**overrides: Any) -> dict[str, Any]:
    spread = {"p50_s": 0.05, "p99_s": 0.2, "max_s": 0.3}
    r: dict[str, Any] = {
        "connectors": 1000,
        "floor": {"seconds": 20.0, **spread},
        "burst": {"seconds": 44.0, **spread, "cpu_seconds": 12.0, "rss_mib_all_running": 120.0},
        "lifecycle": {"connectors": 10, "requests_per_connector": 14.0,
                      "reads_per_connector": 1.0,
                      "by_verb_and_resource": {"create deployments": 1}},
        "steady": {
            "rss_mib": {"0": 60.0, "100": 70.0, "1000": 118.0},
            "idle": {"seconds": 120, "cpu_percent": 0.1, "api_requests": 0},
            "latency_quiet": {"flips_counted": 100, "acknowledged": spread,
                              "phase_reached": spread},
            "latency_under_load": {"flips_counted": 120, "acknowledged": spread,
                                   "phase_reached": spread},
            "restart": {"connectors": 2000, "seconds_to_confirm_all": 3.0, "writes": 0},
        },
        "settings": {"operator": "generic"},
        "machine": {"cpus": 2},
    }  # fmt: skip
    r.update(overrides)
    return r


def test_the_targets_are_judged_against_what_was_measured() -> None:
    met = {t: ok for t, _, ok in targets(result())}
    assert met["RSS at N = 1000 at most 80 MiB"] is False  # 120 MiB
    assert met["all Running no slower than 2.0x the floor"] is False  # 2.2x
    assert met["annotation to status p99 under 0.5 s while another N are created"] is True
    assert met["restart makes no write"] is True
    assert met["no API request while idle"] is True


def test_the_report_names_every_measure_and_the_settings() -> None:
    text = markdown(result())
    assert (
        "| burst: N Connectors applied at once, until all Running | 44.0 s = 2.20x the floor"
        in text
    )
    assert "| RSS at N = 1000 at most 80 MiB | 120.0 MiB | no |" in text
    assert "- operator: generic" in text
