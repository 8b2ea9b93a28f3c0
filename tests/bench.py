"""`make bench`: the operator's speed and cost against the local control plane, in one run.

Scenarios (tests/scale/scenarios.py), N = --connectors (100 by default):
1. floor: N Deployments like the operator's, created directly, until all Available;
2. burst: N Connectors applied at once, until all Running (per-object p50/p99, the ratio to the
   floor, the operator's CPU and memory), with a plot of both curves;
3. API requests per Connector over a full lifecycle, reads included (the API server's audit log);
4. memory settled at N = 0, 100 and N; CPU and API requests during an idle period;
5. annotation-to-status latency over --toggles stop/start flips, quiet and while N more
   Connectors are created;
6. a restart over the converged Connectors: until each is confirmed, and its writes;
7. the REST gateway's GET /connectors at 1,000 Connectors (tests/bench_gateway.py);
and, with --only storage, the storage checks of 1,000 AmazonS3 Connectors (tests/bench_storage.py).
The operator runs with its ServiceAccount's token. A tool, not a test: no number fails it.

    python -m tests.bench                              # N = 100, the report in a temp folder
    python -m tests.bench --connectors 1000 --out docs/
"""

from __future__ import annotations

import argparse
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


def operator_scenarios(
    plane: controlplane.ControlPlane, args: argparse.Namespace
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    h = Harness(plane, work)
    h.install()
    n = args.connectors
    result: dict[str, Any] = {"connectors": n}
    try:
        print(f"[bench] N = {n}; logs in {work}", file=sys.stderr)
        model = scenarios.pod_template(h)
        result["floor"] = scenarios.floor(h, n, model)
        print(f"[bench] floor {result['floor']['seconds']} s", file=sys.stderr)
        result["burst"] = scenarios.burst(h, n)
        print(f"[bench] burst {result['burst']['seconds']} s", file=sys.stderr)
        result["lifecycle"] = scenarios.lifecycle(h)
        result["steady"] = scenarios.steady(h, n, args.toggles, args.idle_seconds)
    finally:
        h.stop_operator()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connectors", type=int, default=100)
    parser.add_argument("--toggles", type=int, default=100, help="stop/start flips (100)")
    parser.add_argument("--idle-seconds", type=float, default=120.0)
    parser.add_argument("--kcm-qps", type=float, default=400.0,
                        help="the controller manager's client QPS (400; burst: twice)")  # fmt: skip
    parser.add_argument("--gateway-connectors", type=int, default=1000)
    parser.add_argument("--storage-connectors", type=int, default=1000)
    parser.add_argument("--storage-window", type=float, default=300.0, help="seconds")
    parser.add_argument("--only", choices=["operator", "gateway", "storage"], default=None)
    parser.add_argument("--out", type=Path, default=None, help="where the report goes")
    args = parser.parse_args()
    sizing = controlplane.Sizing.from_env()
    if sizing.controller_manager_qps is None:
        sizing = controlplane.Sizing(**{
            **sizing.__dict__, "controller_manager_qps": args.kcm_qps,
            "controller_manager_burst": int(2 * args.kcm_qps),
        })  # fmt: skip
    result: dict[str, Any] = {}
    with controlplane.running(sizing=sizing, audit_every_request_of=(OPERATOR_USER,)) as plane:
        if args.only in (None, "operator"):
            result = operator_scenarios(plane, args)
        if args.only in (None, "gateway"):
            result["gateway"] = GatewayBench(plane, args.gateway_connectors).run()
        if args.only == "storage":
            storage = StorageBench(plane, args.storage_connectors, args.storage_window)
            try:
                result["storage"] = storage.run()
            finally:
                storage.stop_operator()
    result["settings"] = {
        "control plane": sizing.report(),
        "operator": "generic profile, 4 workers, its ServiceAccount's token (deploy/rbac.yaml)",
        "command": " ".join(["python -m tests.bench", *sys.argv[1:]]),
    }
    result["machine"] = machine()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-report-"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks.json").write_text(json.dumps(result, indent=2) + "\n")
    if "burst" in result:
        (out / "benchmarks.md").write_text(markdown(result))
        burst_plot(out / "benchmarks-burst.png", result["floor"]["curve"],
                   result["burst"]["curve"], result["connectors"])  # fmt: skip
    print(json.dumps({k: v for k, v in result.items() if k not in ("floor", "burst")}, indent=2))
    print(f"[bench] report in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
