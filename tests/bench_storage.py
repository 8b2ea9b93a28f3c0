"""The storage checks' part of `make bench`: N AmazonS3 Connectors (stopped, so that no pod is
needed) whose storage a real operator checks against moto, on the local control plane.

- burst: from the operator's start until every Connector has had its first check (what a new
  leader does), with the default concurrency;
- steady: checks per minute over a window at the default interval (300 s, jittered), and the
  operator's CPU time in that window;
- memory: the operator's RSS over the same Connectors with checks off and on; and, in a fresh
  interpreter, what importing the client libraries and one check of each kind (S3, Azure Blob)
  adds to the operator's own imports.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

import controlplane  # noqa: E402 -- lives beside the go.mod files, not in a package

from tests.operator_runtime import runtime_python  # noqa: E402 -- after the path above
from tests.storage import azurite, moto  # noqa: E402 -- after the path above

NAMESPACE = "bench-storage"
REGION = "eu-central-1"
ACCOUNT_KEY = base64.b64encode(b"bench-account-key-" * 4).decode()
INTERVAL = 300  # the default of CONNECTOR_OPERATOR_STORAGE_CHECK_INTERVAL_SECONDS
CHECKS = re.compile(r"^connector_operator_storage_checks_total\{[^}]*\} (\S+)$", re.MULTILINE)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class StorageBench:
    def __init__(self, plane: controlplane.ControlPlane, count: int, window: float) -> None:
        self.plane, self.count, self.window = plane, count, window
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

    def start_operator(self, mode: str) -> int:
        self.metrics_port = controlplane.free_port()
        env = {
            **self.env,
            "PYTHONPATH": str(ROOT / "operator"),
            "CONNECTOR_OPERATOR_NAMESPACES": NAMESPACE,
            "CONNECTOR_OPERATOR_LEADER_ELECTION": "false",
            "CONNECTOR_OPERATOR_LEASE_NAMESPACE": NAMESPACE,  # where its hash key goes
            "CONNECTOR_OPERATOR_METRICS_PORT": str(self.metrics_port),
            "CONNECTOR_OPERATOR_HEALTH_PORT": str(controlplane.free_port()),
            "CONNECTOR_OPERATOR_LOG_LEVEL": "WARNING",
            "CONNECTOR_OPERATOR_PROFILE": "generic",
            "CONNECTOR_OPERATOR_STORAGE_CHECK": mode,  # the other settings: their defaults
        }
        log = Path(tempfile.gettempdir()) / f"bench-storage-operator-{mode}.log"
        with log.open("wb") as out:  # read it when a step times out
            # A process group, not a session (Linux's autogroup): see Harness.start_operator.
            self.process = subprocess.Popen(
                [runtime_python(), "-m", "connector_operator"], env=env,
                stdout=out, stderr=subprocess.STDOUT, process_group=0,
            )  # fmt: skip
        self._wait(lambda: self.metrics() is not None, 60)
        return self.process.pid

    def stop_operator(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
            self.process = None

    def metrics(self) -> str | None:
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            return None

    def checks(self) -> float:
        return sum(float(v) for v in CHECKS.findall(self.metrics() or ""))

    @staticmethod
    def _wait(check: Any, timeout: float) -> float:
        start = time.monotonic()
        while not check():
            if time.monotonic() - start > timeout:
                raise TimeoutError("benchmark step did not finish")
            time.sleep(0.2)
        return time.monotonic() - start

    def create_all(self, s3: moto.Moto, reader: tuple[str, str], writer: tuple[str, str]) -> None:
        config = {
            "bucket_name": "orders", "region": REGION, "url": s3.endpoint,
            "username_read": reader[0], "password_read": reader[1],
            "username_write": writer[0], "password_write": writer[1],
        }  # fmt: skip
        docs = [
            {"apiVersion": "dataspace.dev/v1alpha1", "kind": "Connector",
             "metadata": {"name": f"s{i}", "namespace": NAMESPACE,
                          "annotations": {"dataspace.dev/action": "stop"}},
             "spec": {"storage_type": "AmazonS3", "storage_config": config}}
            for i in range(self.count)
        ]  # fmt: skip
        for start in range(0, self.count, 250):
            batch = {"apiVersion": "v1", "kind": "List", "items": docs[start : start + 250]}
            self.kubectl("apply", "-f", "-", stdin=json.dumps(batch))

    def stopped(self) -> int:
        out = self.kubectl(
            "get", "conn", "-n", NAMESPACE, "-o", "jsonpath={.items[*].status.phase}"
        )
        return out.split().count("Stopped")

    def run(self) -> dict[str, Any]:
        self.kubectl("apply", "-f", str(ROOT / "crds"))
        self.kubectl("create", "namespace", NAMESPACE)
        with tempfile.TemporaryDirectory() as work, moto.running(Path(work)) as s3:
            s3.create_bucket("orders", REGION)
            reader = s3.create_user("reader", write=False)
            writer = s3.create_user("writer", write=True)
            s3.enable_auth()
            self.create_all(s3, reader, writer)
            pid = self.start_operator("off")
            self._wait(lambda: self.stopped() == self.count, 900)
            rss_off = _rss_mib(pid)
            self.stop_operator()

            pid = self.start_operator("warn")
            cpu_start = _cpu_seconds(pid)
            burst = self._wait(lambda: self.checks() >= self.count, 900)
            burst_cpu = _cpu_seconds(pid) - cpu_start
            rss_on = _rss_mib(pid)
            before, cpu_before = self.checks(), _cpu_seconds(pid)
            time.sleep(self.window)
            done, cpu = self.checks() - before, _cpu_seconds(pid) - cpu_before
            rss_after = _rss_mib(pid)
            self.stop_operator()
            libraries = self.library_memory(s3, reader, writer, Path(work))
        return {
            "connectors": self.count,
            "first_check_of_all_seconds": round(burst, 1),
            "first_checks_per_second": round(self.count / burst, 1),
            # The reconciles of the operator's start are in it too: an upper bound.
            "first_checks_operator_cpu_ms_per_check": round(1000 * burst_cpu / self.count, 1),
            # The window opens as the first checks end, so it sees only part of their first
            # round of re-checks (due 0.8 to 1.2 intervals after each): what it measures is
            # the cost of a re-check; the steady rate is one check per Connector per interval.
            "window_seconds": self.window,
            "window_checks": int(done),
            "window_operator_cpu_ms_per_check": round(1000 * cpu / done, 1) if done else None,
            "steady_checks_per_minute": round(self.count * 60 / INTERVAL, 1),
            "steady_operator_cpu_percent": (
                round(100 * (self.count / INTERVAL) * (cpu / done), 2) if done else None
            ),
            "operator_rss_mib_checks_off": round(rss_off, 1),
            "operator_rss_mib_checks_on": round(rss_on, 1),
            "operator_rss_mib_after_window": round(rss_after, 1),
            "client_libraries": libraries,
        }

    def library_memory(
        self, s3: moto.Moto, reader: tuple[str, str], writer: tuple[str, str], work: Path
    ) -> dict[str, float]:
        """RSS of a fresh interpreter: the operator's imports, then the client libraries',
        then after one S3 and one Azure Blob check (their clients made and closed)."""
        with azurite.running(work / "azurite", {"acct": ACCOUNT_KEY}) as blob:
            blob.create_container("acct", "reports")
            script = textwrap.dedent(f"""
                import asyncio, json
                from pathlib import Path
                def rss():
                    for line in Path("/proc/self/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            return int(line.split()[1]) / 1024
                import connector_operator.__main__, connector_operator.controller
                base = rss()
                from connector_operator.storage import azure, s3
                from connector_operator.storage.s3_clients import S3Clients
                from connector_operator.storage.target import AzureTarget, S3Target
                imported = rss()
                async def once():
                    async with S3Clients(5) as clients:
                        a = await s3.check_s3(clients, S3Target(
                            "orders", {REGION!r}, {s3.endpoint!r}, {reader!r}, {writer!r}),
                            write=True)
                    b = await azure.check_azure(AzureTarget(
                        "reports", {blob.blob_endpoint("acct")!r},
                        ("acct", {ACCOUNT_KEY!r}), ("acct", {ACCOUNT_KEY!r})),
                        write=True, timeout=5)
                    return [a.reason.value, b.reason.value]
                reasons = asyncio.run(once())
                print(json.dumps({{"base": base, "imported": imported, "checked": rss(),
                                  "reasons": reasons}}))
            """)
            env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
            out = subprocess.run(
                [runtime_python(), "-c", script], env=env, capture_output=True, text=True,
                check=True,
            )  # fmt: skip
        measured = json.loads(out.stdout)
        if measured["reasons"] != ["Reachable", "Reachable"]:
            raise RuntimeError(f"the checks of the memory probe failed: {measured['reasons']}")
        return {
            "operator_imports_rss_mib": round(measured["base"], 1),
            "added_by_importing_mib": round(measured["imported"] - measured["base"], 1),
            "added_after_one_check_each_mib": round(measured["checked"] - measured["base"], 1),
        }
