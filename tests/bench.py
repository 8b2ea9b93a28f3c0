"""`make bench`: the operator's speed and cost against the local control plane, in one run.

Scenarios (tests/scale/scenarios.py), N = --connectors (100 by default):
1. floor: N Deployments like the operator's, created directly, until all Available; and the
   burst below for a minimal controller-runtime reconciler of the same contract (its CPU and
   memory, to compare with the operator's in one run; tests/scale/goref, built by Go);
2. burst: N Connectors applied at once, until all Running (per-object p50/p99, the ratio to the
   floor, the operator's CPU and memory), with a plot of both curves;
3. API requests per Connector over a full lifecycle, reads included (the API server's audit log);
4. memory settled at N = 0, 100 and N; CPU and API requests during an idle period;
5. annotation-to-status latency over --toggles stop/start flips, quiet and while N more
   Connectors are created;
6. a restart over the converged Connectors: until each is confirmed, and its writes;
7. the REST gateway's GET /connectors at 1,000 Connectors (tests/bench_gateway.py);
and, with --only storage, the storage checks of 1,000 AmazonS3 Connectors (tests/bench_storage.py).
The operator runs with its ServiceAccount's token (generic profile). The control plane's
controller manager gets client QPS 400 and burst 800 unless --kcm-qps/--kcm-burst (or
CONNECTOR_CLUSTER_KCM_QPS/_BURST) say otherwise; the scheduler keeps upstream's unless
--scheduler-qps/--scheduler-burst. The report states the sizing used. A tool, not a test: no
number fails it. What was measured is written even when a later scenario fails.

    python -m tests.bench                              # N = 100, the report in a temp folder
    python -m tests.bench --connectors 1000 --out docs/
    python -m tests.bench --only gateway               # or storage: that scenario alone
    python -m tests.bench --py-spy                     # + a flame graph of the burst
    make bench BENCH_ARGS="--connectors 1000 --out docs/"
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

import controlplane  # noqa: E402 -- lives beside the go.mod files, not in a package

from tests.bench_gateway import GatewayBench  # noqa: E402 -- after the path above
from tests.bench_storage import StorageBench  # noqa: E402
from tests.scale import scenarios  # noqa: E402
from tests.scale.harness import OPERATOR_USER, Harness  # noqa: E402
from tests.scale.plot import burst_plot  # noqa: E402
from tests.scale.report import markdown  # noqa: E402

# The API server rotates its audit log at 100 MB by default, which a run at 1,000 passes: the
# counts follow a rotation (tests/scale/measure.py), but one file is simpler to look into.
NO_AUDIT_ROTATION = {"kube-apiserver": ["--audit-log-maxsize=100000"]}


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip()
         for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    memory = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )  # fmt: skip
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(memory / 2**20, 1),
            "python": platform.python_version()}  # fmt: skip


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """What the report states of how it was measured (the control plane's sizing is added)."""
    return {
        "operator": "generic profile (CONNECTOR_OPERATOR_PROFILE=generic), 4 workers (the "
        "default), 4 more for the first two lanes and 2 for users' new changes, log level "
        "WARNING, its ServiceAccount's token "
        "(deploy/rbac.yaml), its runtime dependencies only (as in its image)",
        "flips": f"{args.toggles} quiet, {args.toggle_rate:g}/s over {scenarios.FLIP_POOL} "
        "Running Connectors",
        "idle period": f"{args.idle_seconds:g} s",
        "py-spy during the burst": (
            "yes (it pauses the operator to sample: times not comparable)" if args.py_spy else "no"
        ),
        "command": " ".join(["python -m tests.bench", *sys.argv[1:]]),
    }


def write(out: Path, result: dict[str, Any]) -> None:
    """benchmarks.json; with the operator's scenarios all done, the Markdown and the plot."""
    (out / "benchmarks.json").write_text(json.dumps(result, indent=2) + "\n")
    if all(key in result for key in ("floor", "burst", "lifecycle", "steady")):
        (out / "benchmarks.md").write_text(markdown(result))
        burst_plot(out / "benchmarks-burst.png", result["floor"]["curve"],
                   result["burst"]["curve"], result["connectors"])  # fmt: skip


def bench_sizing(base: controlplane.Sizing, args: argparse.Namespace) -> controlplane.Sizing:
    """The control plane's sizing: a flag, else its environment variable, else the bench's
    controller manager of QPS 400 and burst 800 (the scheduler's upstream defaults)."""
    kcm_qps = args.kcm_qps if args.kcm_qps is not None else base.controller_manager_qps
    kcm_qps = 400.0 if kcm_qps is None else kcm_qps
    kcm_burst = args.kcm_burst if args.kcm_burst is not None else base.controller_manager_burst
    return dataclasses.replace(
        base,
        controller_manager_qps=kcm_qps,
        controller_manager_burst=int(2 * kcm_qps) if kcm_burst is None else kcm_burst,
        scheduler_qps=base.scheduler_qps if args.scheduler_qps is None else args.scheduler_qps,
        scheduler_burst=(
            base.scheduler_burst if args.scheduler_burst is None else args.scheduler_burst
        ),
    )


def operator_scenarios(
    plane: controlplane.ControlPlane, args: argparse.Namespace, result: dict[str, Any]
) -> None:
    """The operator's scenarios, each result put in `result` as soon as it is measured."""
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    h = Harness(plane, work)
    h.install()
    n = result["connectors"] = args.connectors
    try:
        print(f"[bench] N = {n}; logs in {work}", file=sys.stderr)
        model = scenarios.pod_template(h)
        result["floor"] = scenarios.floor(h, n, model)
        print(f"[bench] floor {result['floor']['seconds']} s", file=sys.stderr)
        result["go_reference"] = scenarios.go_reference(h, n, model)
        print(f"[bench] Go reference {result['go_reference']['cpu_seconds']} s of CPU",
              file=sys.stderr)  # fmt: skip
        profile = args.out_dir / "benchmarks-burst-profile.svg" if args.py_spy else None
        result["burst"] = scenarios.burst(h, n, profile_to=profile)
        print(f"[bench] burst {result['burst']['seconds']} s", file=sys.stderr)
        result["lifecycle"] = scenarios.lifecycle(h)
        print(f"[bench] lifecycle {result['lifecycle']['requests_per_connector']} requests "
              "per Connector", file=sys.stderr)  # fmt: skip
        result["steady"] = scenarios.steady(h, n, args.toggles, args.toggle_rate, args.idle_seconds)
    finally:
        h.stop_operator()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connectors", type=int, default=100)
    parser.add_argument("--toggles", type=int, default=100, help="stop/start flips (100)")
    parser.add_argument(
        "--toggle-rate",
        type=float,
        default=4.0,
        help="flips sent per second (4), over 20 Running Connectors",
    )
    parser.add_argument("--idle-seconds", type=float, default=120.0)
    parser.add_argument(
        "--kcm-qps",
        type=float,
        default=None,
        help="the controller manager's client QPS (400, or CONNECTOR_CLUSTER_KCM_QPS)",
    )
    parser.add_argument(
        "--kcm-burst",
        type=int,
        default=None,
        help="its burst (twice its QPS, or CONNECTOR_CLUSTER_KCM_BURST)",
    )
    parser.add_argument(
        "--scheduler-qps",
        type=float,
        default=None,
        help="the scheduler's client QPS (upstream's 50 unless set)",
    )
    parser.add_argument(
        "--scheduler-burst",
        type=int,
        default=None,
        help="the scheduler's client burst (upstream's 100 unless set)",
    )
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="a flame graph of the operator during the burst (py-spy)",
    )
    parser.add_argument("--gateway-connectors", type=int, default=1000)
    parser.add_argument("--storage-connectors", type=int, default=1000)
    parser.add_argument("--storage-window", type=float, default=300.0, help="seconds")
    parser.add_argument("--only", choices=["operator", "gateway", "storage"], default=None)
    parser.add_argument("--out", type=Path, default=None, help="where the report goes")
    args = parser.parse_args()
    args.out_dir = args.out or Path(tempfile.mkdtemp(prefix="bench-report-"))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    sizing = bench_sizing(controlplane.Sizing.from_env(), args)
    result: dict[str, Any] = {}
    with controlplane.running(
        sizing=sizing, audit_every_request_of=(OPERATOR_USER,), extra_args=NO_AUDIT_ROTATION
    ) as plane:
        result["settings"] = {"control plane": plane.sizing.report(), **settings(args)}
        result["machine"] = machine()
        try:
            if args.only in (None, "operator"):
                operator_scenarios(plane, args, result)
            if args.only in (None, "gateway"):
                result["gateway"] = GatewayBench(plane, args.gateway_connectors).run()
            if args.only == "storage":
                storage = StorageBench(plane, args.storage_connectors, args.storage_window)
                try:
                    result["storage"] = storage.run()
                finally:
                    storage.stop_operator()
        finally:  # what was measured is kept, whatever failed after
            write(args.out_dir, result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("floor", "burst")}, indent=2))
    print(f"[bench] report in {args.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
