"""The benchmark's report, rendered from its results (pure): the table, the targets met or
not, the settings and the machine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The targets at 1,000 Connectors; a minimal controller-runtime reconciler of the same contract
# took 6.4 s of CPU to bring them to Running on this project's machine.
GO_RECONCILER_CPU_SECONDS = 6.4
LIFECYCLE_MINIMUM = (
    "The minimum for that lifecycle (generic profile, no ports): a status write and an event "
    "for each phase entered (9 each: Starting, Running, Stopping, Stopped, Starting, Running, "
    "Failed, Stopping, Stopped), the Deployment applied once and scaled on each transition "
    "that changes its replicas (4), and one read of the Deployment's name before it is made "
    "(so that an object of that name that is someone else's is never taken over): 23 requests."
)
PREAMBLE = """# Benchmarks

Measured with `{command}` (`make bench` runs N = 100 and writes to a temporary folder). One run
on one fresh local control plane (the README's Development section), the operator as a process
with its ServiceAccount's token, so API Priority and Fairness applies to it as in production.
Compare ratios measured in one run, not seconds across machines. A tool, never a test: no
number here fails a build.

- floor: the Deployment the operator makes for an HttpData Connector, N copies created directly
  with one apply, until all Available: what the control plane alone takes;
- burst: N Connectors with one `kubectl apply --server-side`, until all Running (per object:
  from the apply to its first Running, seen by a watch); the operator's CPU time meanwhile and
  its memory once all run; `benchmarks-burst.png` plots both curves;
- lifecycle: ten Connectors at once from creation through Running, stop, start, fail, stop and
  deletion: the operator's requests per Connector, reads included, from the API server's audit
  log (its watches, opened before, excepted);
- steady: memory settled at N = 0, 100 and N; an idle period with N Running (CPU, and requests
  from the audit log); stop/start flips one at a time on ten Running Connectors, from the
  annotation written to the status acknowledging it and to the phase reached, quiet and while N
  more Connectors are applied (only flips begun while those were still coming up count); then
  a restart over all 2N: the time until the new process has reconciled each (its
  reconciles_total counter, not its port opening) and the writes it made.

"""


def targets(r: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target of the benchmark."""
    n = r["connectors"]
    burst, floor, steady = r["burst"], r["floor"], r["steady"]
    rss = max(steady["rss_mib"][str(n)], burst["rss_mib_all_running"])
    ratio = burst["seconds"] / floor["seconds"]
    cpu_limit = 1.5 * GO_RECONCILER_CPU_SECONDS
    ack = steady["latency_under_load"]["acknowledged"]["p99_s"]
    restart = steady["restart"]
    idle = steady["idle"]["api_requests"]
    return [
        (f"RSS at N = {n} at most 80 MiB", f"{rss:.1f} MiB", rss <= 80),
        (f"CPU to bring all to Running at most {cpu_limit:.1f} s (1.5x the Go reconciler)",
         f"{burst['cpu_seconds']:.1f} s", burst["cpu_seconds"] <= cpu_limit),
        ("all Running no slower than 2.0x the floor", f"{ratio:.2f}x", ratio <= 2.0),
        ("annotation to status p99 under 0.5 s while another N are created",
         f"{ack:.3f} s", ack < 0.5),
        ("restart confirmed in under 10 s", f"{restart['seconds_to_confirm_all']:.2f} s",
         restart["seconds_to_confirm_all"] < 10),
        ("restart makes no write", str(restart["writes"]), restart["writes"] == 0),
        ("no API request while idle", str(idle), idle == 0),
    ]  # fmt: skip


def markdown(r: Mapping[str, Any]) -> str:
    n = r["connectors"]
    burst, floor, steady, life = r["burst"], r["floor"], r["steady"], r["lifecycle"]
    quiet, loaded = steady["latency_quiet"], steady["latency_under_load"]
    rows = [
        ("floor: N Deployments created directly, until all Available",
         f"{floor['seconds']} s (per object p50 {floor['p50_s']} s, p99 {floor['p99_s']} s)"),
        ("burst: N Connectors applied at once, until all Running",
         f"{burst['seconds']} s = {burst['seconds'] / floor['seconds']:.2f}x the floor "
         f"(per object p50 {burst['p50_s']} s, p99 {burst['p99_s']} s)"),
        ("operator CPU to bring N to Running", f"{burst['cpu_seconds']} s"),
        ("operator RSS when all N Running (burst)", f"{burst['rss_mib_all_running']} MiB"),
        ("operator RSS settled at N = " + ", ".join(steady["rss_mib"]),
         " / ".join(f"{v} MiB" for v in steady["rss_mib"].values())),
        (f"idle {steady['idle']['seconds']:.0f} s with N Running: CPU, API requests",
         f"{steady['idle']['cpu_percent']} % of a core, {steady['idle']['api_requests']}"),
        (f"API requests per Connector, full lifecycle ({life['connectors']} at once)",
         f"{life['requests_per_connector']} ({life['reads_per_connector']} reads)"),
        (f"annotation to status acknowledged, quiet ({quiet['flips_counted']} flips)",
         f"p50 {quiet['acknowledged']['p50_s']} s, p99 {quiet['acknowledged']['p99_s']} s"),
        ("annotation to phase reached, quiet",
         f"p50 {quiet['phase_reached']['p50_s']} s, p99 {quiet['phase_reached']['p99_s']} s"),
        (f"annotation to status acknowledged, while N more are created "
         f"({loaded['flips_counted']} flips)",
         f"p50 {loaded['acknowledged']['p50_s']} s, p99 {loaded['acknowledged']['p99_s']} s"),
        ("annotation to phase reached, while N more are created",
         f"p50 {loaded['phase_reached']['p50_s']} s, p99 {loaded['phase_reached']['p99_s']} s"),
        (f"restart over {steady['restart']['connectors']} converged: every one confirmed; writes",
         f"{steady['restart']['seconds_to_confirm_all']} s; {steady['restart']['writes']}"),
    ]  # fmt: skip
    if "gateway" in r:
        g = r["gateway"]
        rows.append((f"REST gateway GET /connectors at {g.get('connectors')} Connectors",
                     _gateway(g)))  # fmt: skip
    lines = [PREAMBLE.format(command=r["settings"].get("command", "python -m tests.bench")),
             f"N = {n}.", "", "| measure | value |", "|---|---|"]  # fmt: skip
    lines += [f"| {m} | {v} |" for m, v in rows]
    lines += ["", "Targets:", "", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {'yes' if ok else 'no'} |" for t, m, ok in targets(r)]
    lines += ["", "Requests per Connector over the lifecycle, by verb and resource:", ""]
    lines += [f"- {k}: {v}" for k, v in life["by_verb_and_resource"].items()]
    lines += ["", LIFECYCLE_MINIMUM]
    lines += ["", "Settings:", ""]
    lines += [f"- {k}: {v}" for k, v in r["settings"].items()]
    lines += ["", "Machine:", ""]
    lines += [f"- {k}: {v}" for k, v in r["machine"].items()]
    return "\n".join(lines) + "\n"


def _gateway(g: Mapping[str, Any]) -> str:
    def one(key: str, label: str) -> str:
        m = g.get(key) or {}
        return (f"{label}: {m.get('requests_per_s')} requests/s, p50 {m.get('p50_ms')} ms, "
                f"p99 {m.get('p99_ms')} ms")  # fmt: skip

    return (f"{one('one_client', '1 client')}; {one('4_clients', '4 clients')}; "
            f"the gateway's peak RSS {g.get('gateway_peak_rss_mib')} MiB")  # fmt: skip
