"""The gateway's part of `make bench`: GET /connectors with N Connectors in the caller's
namespace, served from the gateway's watch cache, under a steady load of concurrent clients.

Every request is a real one: a ServiceAccount token, checked with a TokenReview and a
SubjectAccessReview by the API server, then the entries from the cache. For scale, the same
number of LISTs straight from the API server (what a gateway without a cache would add to each
request) is timed in the same run.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

import controlplane  # noqa: E402 -- lives beside the go.mod files, not in a package

from tests.operator_runtime import runtime_python  # noqa: E402 -- after the path above

NAMESPACE = "bench-gateway"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class GatewayBench:
    def __init__(
        self, plane: controlplane.ControlPlane, count: int, requests: int = 2000, clients: int = 4
    ) -> None:
        self.plane, self.count, self.requests, self.clients = plane, count, requests, clients
        self.env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
        self.env["PATH"] = f"{plane.bin_dir}{os.pathsep}{self.env['PATH']}"
        self.port = controlplane.free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run(
            ["kubectl", *args], env=self.env, input=stdin, capture_output=True, text=True,
            check=True,
        )  # fmt: skip
        return out.stdout

    def prepare(self) -> str:
        """N Connectors and a viewer's token in one namespace."""
        self.kubectl("apply", "-f", str(ROOT / "crds"))
        self.kubectl("wait", "--for=condition=Established", "crd/connectors.dataspace.dev")
        self.kubectl("create", "namespace", NAMESPACE)
        docs = [
            {"apiVersion": "dataspace.dev/v1alpha1", "kind": "Connector",
             "metadata": {"name": f"g{i:04d}", "namespace": NAMESPACE},
             "spec": {"storage_type": "AmazonS3",
                      "storage_config": {"bucket_name": f"b{i}", "region": "eu-central-1",
                                         "username_read": "r", "password_read": "r",
                                         "username_write": "w", "password_write": "w"}}}
            for i in range(self.count)
        ]  # fmt: skip
        for start in range(0, self.count, 250):
            batch = {"apiVersion": "v1", "kind": "List", "items": docs[start : start + 250]}
            self.kubectl("create", "-f", "-", stdin=json.dumps(batch))
        self.kubectl("apply", "-f", str(ROOT / "deploy" / "gateway" / "tenant-roles.yaml"))
        self.kubectl("create", "serviceaccount", "-n", NAMESPACE, "dashboard")
        self.kubectl(
            "create", "rolebinding", "-n", NAMESPACE, "dashboard",
            "--clusterrole=connectors-viewer", f"--serviceaccount={NAMESPACE}:dashboard",
        )  # fmt: skip
        return self.kubectl("create", "token", "-n", NAMESPACE, "dashboard").strip()

    def start_gateway(self) -> None:
        env = {
            **self.env,
            "PYTHONPATH": str(ROOT / "operator"),
            "CONNECTOR_GATEWAY_HOST": "127.0.0.1",
            "CONNECTOR_GATEWAY_PORT": str(self.port),
            "CONNECTOR_GATEWAY_PREFIX": "/api/v1",
            "CONNECTOR_GATEWAY_LOG_LEVEL": "WARNING",
        }
        # A process group, not a session (Linux's autogroup): see Harness.start_operator.
        self.process = subprocess.Popen(
            [runtime_python(), "-m", "connector_operator", "gateway"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self._get("/readyz", None)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError("the gateway did not become ready")

    def stop_gateway(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None

    def _get(
        self, path: str, token: str | None, connection: http.client.HTTPConnection | None = None
    ) -> tuple[int, bytes]:
        conn = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if connection is None:
            conn.close()
        return response.status, body

    def load(self, token: str, clients: int) -> dict[str, float]:
        """`requests` GETs of /connectors by `clients` keep-alive clients at once."""
        latencies: list[float] = []
        failures: list[int] = []
        lock = threading.Lock()
        share = self.requests // clients

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            mine = []
            for i in range(share):
                start = time.perf_counter()
                status, body = self._get("/api/v1/connectors", token, conn)
                mine.append(time.perf_counter() - start)
                # Every answer is checked, every 50th read whole (parsing competes for the CPU).
                whole = i % 50 or len(json.loads(body)) == self.count
                if status != 200 or not whole:
                    failures.append(status)
            conn.close()
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        if failures:
            raise AssertionError(f"{len(failures)} requests failed: {failures[:5]}")
        return {
            "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        }

    def list_from_api_server(self, times: int = 50) -> float:
        """The median time of one LIST of the namespace's Connectors from the API server."""
        api = client.CustomObjectsApi(config.new_client_from_config(str(self.plane.kubeconfig)))
        seconds = []
        for _ in range(times):
            start = time.perf_counter()
            api.list_namespaced_custom_object(
                "dataspace.dev", "v1alpha1", NAMESPACE, "connectors", _preload_content=False
            ).read()
            seconds.append(time.perf_counter() - start)
        return round(statistics.median(seconds) * 1000, 2)

    def run(self) -> dict[str, Any]:
        token = self.prepare()
        self.start_gateway()
        try:
            rss = Path(f"/proc/{self.process.pid}/status").read_text() if self.process else ""
            self.load(token, self.clients)  # warm up: connections, the first reviews
            result: dict[str, Any] = {
                "connectors": self.count,
                "requests": self.requests,
                "one_client": self.load(token, 1),
                f"{self.clients}_clients": self.load(token, self.clients),
            }
            status = Path(f"/proc/{self.process.pid}/status").read_text() if self.process else rss
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    result["gateway_peak_rss_mib"] = round(int(line.split()[1]) / 1024, 1)
        finally:
            self.stop_gateway()
        result["api_server_list_median_ms"] = self.list_from_api_server()
        return result
