"""The benchmark's hands: kubectl and the API as the admin, the operator as a process with its
ServiceAccount's token (so API Priority and Fairness treats it as in production), its metrics,
and the API server's audit log of its requests."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client, config

from tests.operator_runtime import runtime_python
from tests.scale.measure import AuditLog, Usage, usage

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

import controlplane  # noqa: E402 -- lives beside the go.mod files, as tests/conftest.py imports it

OPERATOR_NAMESPACE = "connector-operator-system"
OPERATOR_SA = "connector-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SA}"
GROUP_VERSION = "dataspace.dev/v1alpha1"


class Harness:
    def __init__(self, plane: controlplane.ControlPlane, work: Path) -> None:
        self.plane, self.work = plane, work
        self.env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
        self.env["PATH"] = f"{plane.bin_dir}{os.pathsep}{self.env['PATH']}"
        self.api = config.new_client_from_config(config_file=str(plane.kubeconfig))  # type: ignore[no-untyped-call]
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.audit = AuditLog(plane.audit_log, OPERATOR_USER)
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run(
            ["kubectl", *args], env=self.env, input=stdin, capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args[:3])}: {out.stderr.strip()}")
        return out.stdout

    def install(self) -> None:
        """The CRD, and the operator's namespace, ServiceAccount and RBAC of deploy/."""
        self.kubectl("apply", "-f", str(ROOT / "crds"))
        self.kubectl("wait", "--for=condition=Established", "crd/connectors.dataspace.dev")
        self.kubectl("apply", "-f", str(ROOT / "deploy" / "namespace.yaml"))
        self.kubectl("apply", "-n", OPERATOR_NAMESPACE, "-f", str(ROOT / "deploy" / "rbac.yaml"))
        token = self.kubectl("create", "token", OPERATOR_SA, "-n", OPERATOR_NAMESPACE,
                             "--duration=6h").strip()  # fmt: skip
        admin = json.loads(self.plane.kubeconfig.read_text())
        kubeconfig = {
            "apiVersion": "v1", "kind": "Config", "clusters": admin["clusters"],
            "users": [{"name": "op", "user": {"token": token}}],
            "contexts": [{"name": "op", "context": {"cluster": admin["clusters"][0]["name"],
                                                    "user": "op"}}],
            "current-context": "op",
        }  # fmt: skip
        (self.work / "operator.kubeconfig").write_text(json.dumps(kubeconfig))

    def namespace(self, name: str) -> str:
        self.kubectl("create", "namespace", name)
        return name

    # -- the operator --------------------------------------------------------------------------
    def start_operator(self, namespace: str) -> int:
        self.metrics_port = controlplane.free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.work / "operator.kubeconfig"),
            "PYTHONPATH": str(ROOT / "operator"),
            "CONNECTOR_OPERATOR_NAMESPACES": namespace,
            "CONNECTOR_OPERATOR_LEASE_NAMESPACE": OPERATOR_NAMESPACE,
            "CONNECTOR_OPERATOR_LEADER_ELECTION": "false",
            "CONNECTOR_OPERATOR_METRICS_PORT": str(self.metrics_port),
            "CONNECTOR_OPERATOR_HEALTH_PORT": str(controlplane.free_port()),
            "CONNECTOR_OPERATOR_LOG_LEVEL": "WARNING",
            "CONNECTOR_OPERATOR_PROFILE": "generic",
        }
        log = (self.work / "operator.log").open("ab")
        # A process group of its own (a kill reaches all of it), not a session: Linux schedules
        # each session as one group against the others (autogroup), and the operator alone in
        # one waited for a CPU in stretches of up to half a second, against the session of the
        # whole control plane. A pod is never scheduled so (autogroup does not apply inside a
        # cgroup); here it is a peer of the control plane's processes, as they are of each other.
        self.process = subprocess.Popen(
            [runtime_python(), "-m", "connector_operator"], env=env, stdout=log,
            stderr=subprocess.STDOUT, process_group=0,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while self.metric("connector_operator_leader") != 1:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the operator did not start: see {self.work}/operator.log")
            time.sleep(0.05)
        return self.process.pid

    def stop_operator(self, kill: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(30)
        self.process = None

    def usage(self) -> Usage:
        assert self.process is not None
        return usage(self.process.pid)

    def metric(self, name: str, **labels: str) -> float | None:
        """The sum of the series of `name` with these labels; None while nothing answers."""
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return None
        found = 0.0
        for match in re.finditer(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", text, re.MULTILINE):
            have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                found += float(match.group(2))
        return found

    # -- objects -------------------------------------------------------------------------------
    def apply(self, docs: list[dict[str, Any]]) -> None:
        """One server-side apply of all, as a user applies a folder."""
        listing = {"apiVersion": "v1", "kind": "List", "items": docs}
        self.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(listing))


def connector_doc(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION, "kind": "Connector",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"storage_type": "HttpData", "storage_config": {}},
    }  # fmt: skip


def connector_summary(obj: dict[str, Any]) -> str | None:
    """ "<phase>/<action the operator acted on>", e.g. "Stopping/stop"; None before a status."""
    status = obj.get("status") or {}
    if not status.get("phase"):
        return None
    return f"{status['phase']}/{(status.get('action') or {}).get('requested', '-')}"


def deployment_summary(obj: dict[str, Any]) -> str | None:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    available = status.get("available_replicas", status.get("availableReplicas"))
    return "available" if available and available == spec.get("replicas") else None
