"""The REST gateway under test: a real `python -m connector_operator gateway` process,
authenticated as the ServiceAccount of deploy/gateway/rbac.yaml, and a tiny HTTP client that
calls it the way the platform's clients do (standard library only)."""

from __future__ import annotations

import http.client
import json
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.conftest import ROOT, Cluster
from tests.operator_runtime import runtime_python
from tests.support import eventually

GATEWAY_NAMESPACE = "connector-operator-system"
GATEWAY_SA = "connector-gateway"


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.body!r})"


@dataclass
class Gateway:
    """One gateway process on a loopback port, and calls to it."""

    kubeconfig: Path
    log_path: Path
    port: int
    prefix: str = "/api/v1"
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Gateway:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": str(ROOT / "operator"),
            "CONNECTOR_GATEWAY_HOST": "127.0.0.1",
            "CONNECTOR_GATEWAY_PORT": str(self.port),
            "CONNECTOR_GATEWAY_PREFIX": self.prefix,
            "CONNECTOR_GATEWAY_LOG_LEVEL": "DEBUG",
            **self.env,
        }
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [runtime_python(), "-m", "connector_operator", "gateway"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        eventually(self._ready, 60, "the gateway to be ready")
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"the gateway exited:\n{self.logs()[-3000:]}")
        try:
            return self.call("GET", "/readyz", None, raw_path=True).status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def call(
        self,
        method: str,
        path: str,
        token: str | None,
        body: object = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
        raw_path: bool = False,
    ) -> Answer:
        """One request; `path` is below the prefix unless `raw_path`."""
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path if raw_path else self.prefix + path, data, headers)
            response = connection.getresponse()
            text = response.read().decode()
            try:
                parsed: Any = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return Answer(response.status, parsed, dict(response.getheaders()))
        finally:
            connection.close()

    def stream(self, token: str) -> EventStream:
        return EventStream(self, token).open()


class EventStream:
    """The live-update stream, read by a thread into a queue of (event, data) pairs."""

    def __init__(self, gateway: Gateway, token: str) -> None:
        self.gateway, self.token = gateway, token
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.status = 0
        self._connection: http.client.HTTPConnection | None = None

    def open(self) -> EventStream:
        connection = http.client.HTTPConnection("127.0.0.1", self.gateway.port, timeout=120)
        connection.request(
            "GET",
            f"{self.gateway.prefix}/watch/connectors",
            headers={"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"},
        )
        response = connection.getresponse()
        self.status, self._connection = response.status, connection
        self.content_type = response.getheader("Content-Type", "")
        threading.Thread(target=self._read, args=(response,), daemon=True).start()
        return self

    def _read(self, response: http.client.HTTPResponse) -> None:
        kind, data = "message", ""
        try:
            for raw in response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[len("event: ") :]
                elif line.startswith("data: "):
                    data += line[len("data: ") :]
                elif line == "" and data:
                    self.events.put((kind, json.loads(data)))
                    kind, data = "message", ""
        except (OSError, ValueError, AttributeError):  # AttributeError: closed by close()
            pass
        self.events.put(("closed", None))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()

    def until(self, wanted: Any, timeout: float = 60) -> list[tuple[str, Any]]:
        """Reads events until `wanted(event, data)` holds; returns all read so far."""
        seen: list[tuple[str, Any]] = []
        while True:
            try:
                item = self.events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no wanted event within {timeout}s; saw {seen}") from None
            seen.append(item)
            if wanted(*item):
                return seen
            if item[0] == "closed":
                raise AssertionError(f"the stream ended before the wanted event; saw {seen}")


def token_of(api: client.ApiClient, namespace: str, account: str, audience: str = "") -> str:
    """A TokenRequest token of a ServiceAccount, as a workload's projected volume holds."""
    spec: dict[str, Any] = {"expirationSeconds": 3600}
    if audience:
        spec["audiences"] = [audience]
    answer = client.CoreV1Api(api).create_namespaced_service_account_token(
        account, namespace, client.AuthenticationV1TokenRequest(spec=spec)
    )
    return str(answer.status.token)


@dataclass(frozen=True)
class Tenant:
    """A namespace with three ServiceAccounts: an editor, a viewer and one without a binding."""

    namespace: str
    editor: str
    viewer: str
    nobody: str


def make_tenant(cluster: Cluster, api: client.ApiClient, namespace: str) -> Tenant:
    tokens = {}
    for account, role in (("editor", "connectors-editor"), ("viewer", "connectors-viewer"),
                          ("nobody", None)):  # fmt: skip
        cluster.kubectl("create", "serviceaccount", "-n", namespace, account)
        if role is not None:
            cluster.kubectl(
                "create", "rolebinding", "-n", namespace, f"{account}-{role}",
                f"--clusterrole={role}", f"--serviceaccount={namespace}:{account}",
            )  # fmt: skip
        tokens[account] = token_of(api, namespace, account)
    return Tenant(namespace, tokens["editor"], tokens["viewer"], tokens["nobody"])


def gateway_rbac(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", str(ROOT / "deploy" / "namespace.yaml"))
    for part in ("rbac.yaml", "tenant-roles.yaml"):
        path = ROOT / "deploy" / "gateway" / part
        cluster.kubectl("apply", "-n", GATEWAY_NAMESPACE, "-f", str(path))


def running(gateway: Gateway) -> Iterator[Gateway]:
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()
