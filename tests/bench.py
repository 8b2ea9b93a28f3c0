"""`make bench`: the operator's cost and speed against the local control plane, one run.

Measures, on one fresh control plane:
- fan-out: N Connectors created at once, time until all are Running, with 1 worker and with
  the default 4 (the ratio is what to compare between machines, not the seconds);
- API writes per Connector to reach Running, from the operator's own counter;
- idle: writes during a quiet period after convergence (must be 0);
- restart: writes and time for a restarted operator to confirm N converged Connectors;
- latency: annotate stop -> Stopped, and start -> Running, for one Connector among N;
- the control plane's peak memory (each component's VmHWM) over the whole run;
- the REST gateway: GET /connectors with 1,000 Connectors (tests/bench_gateway.py);
- the storage checks of 1,000 AmazonS3 Connectors against moto (tests/bench_storage.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

import controlplane  # noqa: E402 -- lives beside the go.mod files, not in a package

from tests.bench_gateway import GatewayBench  # noqa: E402 -- after the path above
from tests.bench_storage import StorageBench  # noqa: E402

free_port = controlplane.free_port


class Bench:
    def __init__(self, plane: controlplane.ControlPlane, count: int) -> None:
        self.plane, self.count = plane, count
        self.env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
        self.env["PATH"] = f"{plane.bin_dir}{os.pathsep}{self.env['PATH']}"
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run(
            ["kubectl", *args], env=self.env, input=stdin, capture_output=True, text=True,
            check=True,
        )  # fmt: skip
        return out.stdout

    def start_operator(self, namespace: str, workers: int) -> None:
        self.metrics_port = free_port()
        env = {
            **self.env,
            "PYTHONPATH": str(ROOT / "operator"),
            "CONNECTOR_OPERATOR_NAMESPACES": namespace,
            "CONNECTOR_OPERATOR_LEADER_ELECTION": "false",
            "CONNECTOR_OPERATOR_WORKERS": str(workers),
            "CONNECTOR_OPERATOR_METRICS_PORT": str(self.metrics_port),
            "CONNECTOR_OPERATOR_HEALTH_PORT": str(free_port()),
            "CONNECTOR_OPERATOR_LOG_LEVEL": "WARNING",
            # The generic profile until the benchmark measures the edc profile's two planes.
            "CONNECTOR_OPERATOR_PROFILE": "generic",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "connector_operator"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self._wait(lambda: self.writes() is not None, 60)

    def stop_operator(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
            self.process = None

    def writes(self) -> float | None:
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return None
        pattern = r"^connector_operator_api_writes_total\{[^}]*\} (\S+)$"
        return sum(float(v) for v in re.findall(pattern, text, re.MULTILINE))

    def phases(self, namespace: str) -> list[str]:
        out = self.kubectl(
            "get", "conn", "-n", namespace, "-o", "jsonpath={.items[*].status.phase}"
        )
        return out.split()

    @staticmethod
    def _wait(check: Any, timeout: float) -> float:
        start = time.monotonic()
        while not check():
            if time.monotonic() - start > timeout:
                raise TimeoutError("benchmark step did not finish")
            time.sleep(0.1)
        return time.monotonic() - start

    def namespace(self, name: str) -> str:
        self.kubectl("create", "namespace", name)
        return name

    def create_all(self, namespace: str) -> None:
        docs = [
            {"apiVersion": "dataspace.dev/v1alpha1", "kind": "Connector",
             "metadata": {"name": f"c{i}", "namespace": namespace},
             "spec": {"storage_type": "HttpData", "storage_config": {}}}
            for i in range(self.count)
        ]  # fmt: skip
        self.kubectl(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
        )

    def fan_out(self, namespace: str, workers: int) -> dict[str, float]:
        self.start_operator(namespace, workers)
        before = self.writes() or 0.0
        start = time.monotonic()
        self.create_all(namespace)
        self._wait(lambda: self.phases(namespace).count("Running") == self.count, 600)
        elapsed = time.monotonic() - start
        time.sleep(2)
        writes = (self.writes() or 0.0) - before
        return {"seconds": elapsed, "writes_per_connector": writes / self.count}

    def run(self) -> dict[str, Any]:
        self.kubectl("apply", "-f", str(ROOT / "crds"))
        self.kubectl("wait", "--for=condition=Established", "crd/connectors.dataspace.dev")
        result: dict[str, Any] = {"connectors": self.count}
        one = self.fan_out(self.namespace("bench-w1"), workers=1)
        self.stop_operator()
        four = self.fan_out(self.namespace("bench-w4"), workers=4)
        result["fan_out_seconds_1_worker"] = round(one["seconds"], 2)
        result["fan_out_seconds_4_workers"] = round(four["seconds"], 2)
        result["fan_out_ratio_1_to_4_workers"] = round(one["seconds"] / four["seconds"], 2)
        result["writes_per_connector_to_running"] = round(four["writes_per_connector"], 2)

        quiet_before = self.writes() or 0.0
        time.sleep(20)
        result["writes_in_20s_idle"] = (self.writes() or 0.0) - quiet_before

        stops, starts = [], []
        for i in range(5):
            name = f"c{i}"
            self.kubectl("annotate", "-n", "bench-w4", "conn", name, "dataspace.dev/action=stop")
            stops.append(self._wait(lambda n=name: self._phase("bench-w4", n) == "Stopped", 60))
            self.kubectl("annotate", "--overwrite", "-n", "bench-w4", "conn", name,
                         "dataspace.dev/action=start")  # fmt: skip
            starts.append(self._wait(lambda n=name: self._phase("bench-w4", n) == "Running", 60))
        result["stop_latency_median_s"] = round(statistics.median(stops), 3)
        result["start_latency_median_s"] = round(statistics.median(starts), 3)

        self.stop_operator()
        start = time.monotonic()
        self.start_operator("bench-w4", workers=4)
        time.sleep(5)
        result["restart_writes_for_converged"] = self.writes()
        result["restart_to_metrics_s"] = round(time.monotonic() - start - 5, 2)
        rss = Path(f"/proc/{self.process.pid}/status").read_text() if self.process else ""
        match = re.search(r"VmRSS:\s+(\d+) kB", rss)
        result["operator_rss_mib"] = round(int(match.group(1)) / 1024, 1) if match else None
        self.stop_operator()
        peaks = {}
        for name, component in self.plane.components.items():
            if component.process is not None:
                status = Path(f"/proc/{component.process.pid}/status").read_text()
                found = re.search(r"VmHWM:\s+(\d+) kB", status)
                peaks[name] = round(int(found.group(1)) / 1024) if found else 0
        result["control_plane_peak_rss_mib"] = {**peaks, "total": sum(peaks.values())}
        return result

    def _phase(self, namespace: str, name: str) -> str:
        return self.kubectl("get", "conn", "-n", namespace, name, "-o", "jsonpath={.status.phase}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connectors", type=int, default=40)
    parser.add_argument("--gateway-connectors", type=int, default=1000)
    parser.add_argument("--storage-connectors", type=int, default=1000)
    parser.add_argument("--storage-window", type=float, default=300.0, help="seconds")
    parser.add_argument("--only", choices=["operator", "gateway", "storage"], default=None)
    args = parser.parse_args()
    result: dict[str, Any] = {}
    with controlplane.running() as plane:
        if args.only in (None, "operator"):
            bench = Bench(plane, args.connectors)
            try:
                result = bench.run()
            finally:
                bench.stop_operator()
        if args.only in (None, "gateway"):
            result["gateway"] = GatewayBench(plane, args.gateway_connectors).run()
        if args.only in (None, "storage"):
            storage = StorageBench(plane, args.storage_connectors, args.storage_window)
            try:
                result["storage"] = storage.run()
            finally:
                storage.stop_operator()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
