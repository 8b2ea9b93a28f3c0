"""The benchmark's scenarios, each on its own namespace of the one control plane. Times are
wall-clock seconds from a watch; CPU and memory are the operator process's own (/proc), or the
Go reference's for its burst."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.scale.harness import (
    GROUP_VERSION,
    Harness,
    connector_doc,
    connector_summary,
    deployment_summary,
)
from tests.scale.measure import (
    AuditLog,
    by_key,
    completed_requests,
    per_object,
    scheduling,
    spread,
    stored_to_stored,
    total,
    usage,
)
from tests.scale.profile import Profile
from tests.scale.watcher import Watcher

GROUP, VERSION = GROUP_VERSION.split("/")
ACTION = "dataspace.dev/action"
READS = ("get", "list", "watch")


def running(summary: str) -> bool:
    return summary.startswith("Running/")


def watch_connectors(h: Harness, namespace: str) -> Watcher:
    return Watcher(
        h.custom.list_namespaced_custom_object, connector_summary,
        group=GROUP, version=VERSION, namespace=namespace, plural="connectors",
    ).start()  # fmt: skip


def names(prefix: str, start: int, stop: int) -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(start, stop)]


def apply_connectors(h: Harness, namespace: str, these: list[str]) -> None:
    h.apply([connector_doc(namespace, n) for n in these])


# -- the floor -----------------------------------------------------------------------------------
def pod_template(h: Harness) -> dict[str, Any]:
    """The Deployment the operator makes for an HttpData Connector, as the floor's model."""
    ns = h.namespace("bench-template")
    h.start_operator(ns)
    watcher = watch_connectors(h, ns)
    apply_connectors(h, ns, ["model"])
    watcher.wait(lambda: watcher.count(running) == 1, 120, "the model Connector Running")
    watcher.stop()
    h.stop_operator()
    made = h.apps.list_namespaced_deployment(ns).items[0]
    return h.api.sanitize_for_serialization(made)  # type: ignore[no-any-return]


def floor(h: Harness, count: int, model: dict[str, Any]) -> dict[str, Any]:
    """The same Deployments created directly: how fast the control plane alone gets there."""
    ns = h.namespace("bench-floor")
    docs = []
    for name in names("d", 0, count):
        doc = copy.deepcopy(model)
        doc["metadata"] = {"name": name, "namespace": ns, "labels": model["metadata"]["labels"]}
        selector = {"app.kubernetes.io/instance": name}
        doc["spec"]["selector"] = {"matchLabels": selector}
        doc["spec"]["template"]["metadata"]["labels"] = {
            **doc["spec"]["template"]["metadata"].get("labels", {}), **selector,
        }  # fmt: skip
        doc.pop("status", None)
        doc["apiVersion"], doc["kind"] = "apps/v1", "Deployment"
        docs.append(doc)
    watcher = Watcher(h.apps.list_namespaced_deployment, _deployment, namespace=ns).start()
    start = time.monotonic()
    h.apply(docs)
    watcher.wait(lambda: watcher.count(lambda s: s == "available") == count,
                 1800, "the floor's Deployments available")  # fmt: skip
    seconds = time.monotonic() - start
    times = watcher.times_of(lambda s: s == "available", start)
    each = per_object(watcher.created(), watcher.reached(lambda s: s == "available"))
    watcher.stop()
    return {
        "seconds": round(seconds, 2), **spread(each), "from_apply": spread(times),
        "curve": sorted(times),
    }  # fmt: skip


def _deployment(obj: Any) -> str | None:
    return deployment_summary(obj if isinstance(obj, dict) else obj.to_dict())


# -- the Go reference ----------------------------------------------------------------------------
GOREF_BUILD = Path(__file__).resolve().parent / "goref" / "build.sh"


def go_reference(h: Harness, count: int, model: dict[str, Any]) -> dict[str, Any]:
    """The burst for a minimal controller-runtime reconciler of the operator's contract
    (tests/scale/goref), under the operator's identity and with its Deployment: until all
    Running, its CPU meanwhile and its memory then. Measured in the same run as the
    operator's burst, the two CPU figures compare on any machine. (It does less than the
    operator: no validation, config hash, conditions, GET before the first apply, nor
    comparison with what it wrote; its Connectors run the same Deployment.)"""
    built = subprocess.run([str(GOREF_BUILD)], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise RuntimeError(f"building the Go reference failed: {built.stderr.strip()[-2000:]}")
    ns = h.namespace("bench-goref")
    template = h.work / "goref-deployment.json"
    template.write_text(json.dumps(model))
    env = {**os.environ, "KUBECONFIG": str(h.work / "operator.kubeconfig")}
    with (h.work / "goref.log").open("ab") as log:
        process = subprocess.Popen(
            [built.stdout.strip().splitlines()[-1], f"--namespace={ns}", f"--template={template}"],
            env=env, stdout=log, stderr=subprocess.STDOUT, process_group=0,
        )  # fmt: skip
    watcher = None
    try:
        time.sleep(5)
        if process.poll() is not None:
            raise RuntimeError(f"the Go reference exited: see {h.work}/goref.log")
        before = usage(process.pid)
        watcher = watch_connectors(h, ns)
        start = time.monotonic()
        apply_connectors(h, ns, names("g", 0, count))
        watcher.wait(lambda: watcher.count(running) == count, 1800, "all Running (Go reference)")
        seconds = time.monotonic() - start
        cpu = usage(process.pid).cpu_seconds - before.cpu_seconds
        each = per_object(watcher.created(), watcher.reached(running))
        time.sleep(10)
        settled = usage(process.pid)
    finally:
        if watcher is not None:
            watcher.stop()
        process.kill()
        process.wait()
    # Its Connectors, Deployments and pods go before the operator's burst: both on a control
    # plane holding the same.
    h.kubectl("delete", "namespace", ns, "--wait=true", "--timeout=600s")
    return {
        "seconds": round(seconds, 2), **spread(each), "cpu_seconds": round(cpu, 2),
        "rss_mib_all_running": round(settled.rss_mib, 1),
    }  # fmt: skip


# -- burst ---------------------------------------------------------------------------------------
def burst(h: Harness, count: int, profile_to: Path | None = None) -> dict[str, Any]:
    """N Connectors applied at once: until all Running, the operator's CPU, its memory then.
    Per object: from its creation (first seen by the watch) to its first Running; the curve is
    from the apply. With `profile_to`, py-spy samples the operator meanwhile."""
    ns = h.namespace("bench-burst")
    pid = h.start_operator(ns)
    time.sleep(5)
    before = h.usage()
    watcher = watch_connectors(h, ns)
    profile = Profile(pid, profile_to) if profile_to is not None else None
    start = time.monotonic()
    apply_connectors(h, ns, names("c", 0, count))
    watcher.wait(lambda: watcher.count(running) == count, 1800, "all Running")
    seconds = time.monotonic() - start
    cpu = h.usage().cpu_seconds - before.cpu_seconds
    if profile is not None:
        profile.stop()
    times = watcher.times_of(running, start)
    each = per_object(watcher.created(), watcher.reached(running))
    watcher.stop()
    time.sleep(10)
    settled = h.usage()
    h.stop_operator()
    return {
        "seconds": round(seconds, 2), **spread(each), "from_apply": spread(times),
        "curve": sorted(times), "cpu_seconds": round(cpu, 2),
        "rss_mib_all_running": round(settled.rss_mib, 1),
        "rss_mib_before": round(before.rss_mib, 1), "profiled": profile is not None,
    }  # fmt: skip


# -- a lifecycle's API requests ------------------------------------------------------------------
LIFECYCLE = (("stop", "Stopped"), ("start", "Running"), ("fail", "Failed"), ("stop", "Stopped"))


def lifecycle(h: Harness, count: int = 10) -> dict[str, Any]:
    """Create to Running, stop, start, fail, stop, delete, for `count` Connectors at once: the
    operator's requests per Connector, reads included, as the API server's audit log has them."""
    ns = h.namespace("bench-lifecycle")
    h.start_operator(ns)
    time.sleep(3)
    h.audit.since_last()  # the start's LISTs and watches are not a Connector's
    watcher = watch_connectors(h, ns)
    these = names("l", 0, count)
    apply_connectors(h, ns, these)
    watcher.wait(lambda: watcher.count(running) == count, 300, "lifecycle Running")
    for action, phase in LIFECYCLE:
        for name in these:
            _annotate(h, ns, name, action)
        target = f"{phase}/{action}"
        watcher.wait(lambda t=target: watcher.count(lambda s: s == t) == count, 300, target)  # type: ignore[misc]
    for name in these:
        h.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "connectors", name)
    time.sleep(5)  # the deletions' last passes
    watcher.stop()
    counts = h.audit.since_last()
    h.stop_operator()
    per = {k: round(v / count, 2) for k, v in by_key(counts).items()}
    reads = sum(n for (verb, _), n in counts.items() if verb in READS)
    return {
        "connectors": count, "requests_per_connector": round(total(counts) / count, 2),
        "reads_per_connector": round(reads / count, 2), "by_verb_and_resource": per,
    }  # fmt: skip


def _annotate(h: Harness, namespace: str, name: str, action: str) -> None:
    h.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "connectors", name,
        {"metadata": {"annotations": {ACTION: action}}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip


# -- steady state: memory, idle, latency, restart ------------------------------------------------
def steady(
    h: Harness, count: int, toggles: int, toggle_rate: float, idle_seconds: float
) -> dict[str, Any]:
    """Memory settled at N = 0, 100, 1,000 and N; an idle period; the flips, quiet and under
    load; a restart over everything converged."""
    ns, load = h.namespace("bench-steady"), h.namespace("bench-load")
    h.start_operator(f"{ns},{load}")
    watcher = watch_connectors(h, ns)
    out: dict[str, Any] = {"rss_mib": {}}
    time.sleep(10)
    out["rss_mib"]["0"] = round(h.usage().rss_mib, 1)
    made = 0
    for step in sorted({n for n in (100, 1000, count) if n <= count}):
        apply_connectors(h, ns, names("s", made, step))
        made = step
        watcher.wait(lambda m=made: watcher.count(running) == m, 1800, f"{made} Running")  # type: ignore[misc]
        time.sleep(15)
        out["rss_mib"][str(step)] = round(h.usage().rss_mib, 1)
    out["idle"] = idle(h, idle_seconds)
    pool = names("s", 0, min(FLIP_POOL, count))
    out["latency_quiet"] = toggle(h, ns, watcher, pool, toggles=toggles, rate=toggle_rate)
    loader = threading.Thread(target=apply_connectors, args=(h, load, names("x", 0, count)))
    load_watcher = watch_connectors(h, load)
    loader.start()
    out["latency_under_load"] = toggle(
        h, ns, watcher, pool, toggles=toggles, rate=toggle_rate, busy=(load_watcher, count)
    )
    loader.join()
    load_watcher.wait(lambda: load_watcher.count(running) == count, 1800, "load Running")
    load_watcher.stop()
    watcher.stop()
    out["restart"] = restart(h, f"{ns},{load}", 2 * count)
    h.stop_operator()
    return out


def idle(h: Harness, seconds: float) -> dict[str, Any]:
    before = h.usage()
    h.audit.since_last()
    time.sleep(seconds)
    counts = h.audit.since_last()
    cpu = h.usage().cpu_seconds - before.cpu_seconds
    return {
        "seconds": seconds, "cpu_seconds": round(cpu, 3),
        "cpu_percent": round(100 * cpu / seconds, 3),
        "api_requests": total(counts), "by_verb_and_resource": by_key(counts),
    }  # fmt: skip


# The flips go to this many Running Connectors in turn, a Connector again only once its last
# flip reached its phase; how many are in flight at once follows from the rate.
FLIP_POOL = 20


@dataclass(frozen=True)
class Flip:
    name: str
    action: str
    target: str  # the summary once done, e.g. "Stopped/stop"
    sent: float  # before the annotate call
    returned: float  # after it returned: what the latencies count from
    counted: bool  # quiet, or sent while the load was still coming up


def toggle(
    h: Harness, ns: str, watcher: Watcher, pool: list[str], *, toggles: int, rate: float,
    busy: tuple[Watcher, int] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Stop/start flips, `rate` a second, over `pool`: from the annotate call's return to the
    status acknowledging the action (its phase Stopping/Starting or its action field), and to
    the phase reached, both from the watch. Quiet: `toggles` flips. Under load: flips for as
    long as the load's Connectors are coming up (at most 10x `toggles`); only those count."""
    flips: list[Flip] = []
    waiting: dict[str, Flip] = {}
    turn = deque(pool)
    next_at = time.monotonic()
    assert h.process is not None
    started, scheduled = time.monotonic(), scheduling(h.process.pid)
    audit = AuditLog(h.audit.path, h.audit.user)
    audit.skip()

    def more() -> bool:
        counted = sum(f.counted for f in flips)
        return counted < toggles if busy is None else _busy(busy) and counted < 10 * toggles

    def in_flight() -> int:  # under the lock: forgets the flips done, counts the others
        for name, flip in list(waiting.items()):
            if watcher.latest.get(name) == flip.target:
                del waiting[name]
        return len(waiting)

    while more():
        with watcher.changed:
            full = in_flight() == len(pool)
        if full:
            watcher.wait(lambda: in_flight() < len(pool), 300, "a flip done")
            continue
        while (name := turn[0]) in waiting:
            turn.rotate(-1)
        turn.rotate(-1)
        with watcher.changed:
            current = watcher.latest.get(name) or ""
        stopping = current.startswith("Running")
        action, phase = ("stop", "Stopped") if stopping else ("start", "Running")
        during = busy is None or _busy(busy)
        sent = time.monotonic()
        _annotate(h, ns, name, action)
        flip = Flip(name, action, f"{phase}/{action}", sent, time.monotonic(), during)
        flips.append(flip)
        waiting[name] = flip
        next_at = max(next_at + 1 / rate, time.monotonic() - 1 / rate)  # no catching up
        time.sleep(max(0.0, next_at - time.monotonic()))
    watcher.wait(lambda: in_flight() == 0, 300, "the last flips done")
    seconds, after = time.monotonic() - started, scheduling(h.process.pid)
    # How long the operator's event loop was runnable but waited for a CPU, beside the time it
    # ran: on a machine shared with the whole control plane, the part of a latency that is
    # neither the operator's work nor the API server's.
    loop = {"seconds": round(seconds, 1), "running_s": round(after.running - scheduled.running, 2),
            "waiting_for_cpu_s": round(after.waiting - scheduled.waiting, 2)}  # fmt: skip
    acks: list[float] = []
    dones: list[float] = []
    # For scale: the annotate call's own round trip, one write to the same API server under
    # the same load (an acknowledgement is at least a watch event, a write and a watch event).
    writes = [f.returned - f.sent for f in flips if f.counted]
    with watcher.changed:
        for f in flips:
            ack = watcher.first_after(f.name, f.sent, lambda s, a=f.action: s.endswith(f"/{a}"))  # type: ignore[misc]
            done = watcher.first_after(f.name, f.sent, lambda s, t=f.target: s == t)  # type: ignore[misc]
            if f.counted and ack is not None and done is not None:
                acks.append(max(0.0, ack - f.returned))
                dones.append(max(0.0, done - f.returned))
    return {
        "flips": len(flips), "flips_counted": len(acks), "rate_per_s": rate, "pool": len(pool),
        "acknowledged": spread(acks), "phase_reached": spread(dones),
        "annotate_round_trip": spread(writes), "operator_event_loop": loop,
        "acknowledged_by_server_clock": _acknowledged_stored(audit, flips, ns, h.audit.user),
    }  # fmt: skip


def _acknowledged_stored(
    audit: AuditLog, flips: list[Flip], ns: str, operator: str
) -> dict[str, float | int]:
    """By the API server's clock (its audit log): each counted flip's annotation stored to
    the acknowledging status stored, the operator's share of an acknowledgement without either
    watch that shows it; how many could not be paired (an entry not written yet, say)."""
    time.sleep(2)  # the log's last entries written
    logged = completed_requests(audit.lines_since_last())
    stored = stored_to_stored(logged, [f.name for f in flips], ns, operator)
    paired = [d for f, d in zip(flips, stored, strict=True) if f.counted]
    found = [d for d in paired if d is not None]
    return {**spread(found), "unpaired": len(paired) - len(found)}


def _busy(busy: tuple[Watcher, int]) -> bool:
    watcher, count = busy
    with watcher.changed:
        return watcher.count(running) < count


def restart(h: Harness, namespaces: str, converged: int) -> dict[str, Any]:
    """The operator killed (SIGKILL) and started again over `converged` Running Connectors:
    the time until it serves metrics as leader, and until it has confirmed each (its
    reconciles_total{result="ok"} at `converged` and its queue empty), and the writes it made
    (the audit log)."""
    h.stop_operator(kill=True)
    h.audit.since_last()
    start = time.monotonic()
    h.start_operator(namespaces)
    serving = time.monotonic() - start
    while (h.metric("connector_operator_reconciles_total", result="ok") or 0) < converged or (
        h.metric("connector_operator_queue_depth") != 0
    ):
        if time.monotonic() - start > 600:
            raise TimeoutError("the restarted operator did not confirm every Connector")
        time.sleep(0.05)
    seconds = time.monotonic() - start
    time.sleep(3)
    counts = h.audit.since_last()
    writes = Counter({k: v for k, v in counts.items() if k[0] not in READS})
    not_ok = sum(h.metric("connector_operator_reconciles_total", result=r) or 0
                 for r in ("retry", "error"))  # fmt: skip
    return {
        "connectors": converged, "seconds_to_serve_metrics": round(serving, 2),
        "seconds_to_confirm_all": round(seconds, 2), "reconciles_not_ok": int(not_ok),
        "writes": total(writes), "writes_by": by_key(writes),
        "requests": total(counts), "requests_by": by_key(counts),
    }  # fmt: skip
