"""The operator reaches the real API server however its kubeconfig says who it is: a token
file, an exec credential plugin, a client certificate in files; and says clearly when it
cannot."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.integration.conftest import Connectors, Operator, connector
from tests.operator_runtime import runtime_python

API = "client.authentication.k8s.io/v1"


def _parts(operator_kubeconfig: Path) -> tuple[dict[str, Any], str]:
    """The operator's cluster entry and its ServiceAccount token."""
    config = json.loads(operator_kubeconfig.read_text())
    return config["clusters"][0], config["users"][0]["user"]["token"]


def _write(folder: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    """A kubeconfig in `folder` whose user is `user` (its paths relative to `folder`)."""
    path = folder / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "clusters": [cluster],
        "users": [{"name": "me", "user": user}],
        "contexts": [{"name": "here", "context": {"cluster": cluster["name"], "user": "me"}}],
        "current-context": "here",
    }))  # fmt: skip
    return path


def _runs_a_connector(
    start_operator: Callable[..., Operator], connectors: Connectors, kubeconfig: Path
) -> None:
    start_operator(kubeconfig=kubeconfig)
    connectors.apply(connector("reach"))
    connectors.wait_phase("reach", "Running")


def test_a_token_file_relative_to_the_kubeconfig(
    start_operator: Callable[..., Operator], connectors: Connectors, operator_kubeconfig: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    cluster, token = _parts(operator_kubeconfig)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text(token + "\n")
    kubeconfig = _write(tmp_path, cluster, {"tokenFile": "secrets/token"})
    _runs_a_connector(start_operator, connectors, kubeconfig)


def test_an_exec_credential_plugin(
    start_operator: Callable[..., Operator], connectors: Connectors, operator_kubeconfig: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    cluster, token = _parts(operator_kubeconfig)
    plugin = tmp_path / "bin" / "token-plugin"
    plugin.parent.mkdir()
    status = {"token": token, "expirationTimestamp": "2099-01-01T00:00:00Z"}
    credential = {"apiVersion": API, "kind": "ExecCredential", "status": status}
    plugin.write_text(
        f"#!{sys.executable}\nimport os\n"
        f"open({str(tmp_path / 'runs')!r}, 'a').write(os.environ['PLUGIN_MODE'] + '\\n')\n"
        f"print({json.dumps(credential)!r})\n"
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    exec_ = {"apiVersion": API, "command": "./bin/token-plugin", "interactiveMode": "Never",
             "env": [{"name": "PLUGIN_MODE", "value": "operator"}]}  # fmt: skip
    kubeconfig = _write(tmp_path, cluster, {"exec": exec_})
    _runs_a_connector(start_operator, connectors, kubeconfig)
    # Its token is valid until 2099: asked once, whatever the requests made since.
    assert (tmp_path / "runs").read_text().splitlines() == ["operator"]


def test_a_plugin_token_the_api_server_refuses_is_asked_for_again(
    start_operator: Callable[..., Operator], connectors: Connectors, operator_kubeconfig: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The plugin's first token is one the API server does not know (a token revoked, say),
    without an expiry: the 401 makes the operator, and Kopf, ask the plugin again."""
    cluster, token = _parts(operator_kubeconfig)
    runs = tmp_path / "runs"
    plugin = tmp_path / "token-plugin"
    answer = {"apiVersion": API, "kind": "ExecCredential", "status": {"token": "TOKEN"}}
    plugin.write_text(
        f"#!{sys.executable}\nimport json, pathlib\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "first = not runs.exists()\n"
        "runs.open('a').write('run\\n')\n"
        f"token = 'revoked-token' if first else {token!r}\n"
        f"print({json.dumps(answer)!r}.replace('TOKEN', token))\n"
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    exec_ = {"apiVersion": API, "command": str(plugin), "interactiveMode": "Never"}
    kubeconfig = _write(tmp_path, cluster, {"exec": exec_})
    _runs_a_connector(start_operator, connectors, kubeconfig)
    # Once for the refused token, once more by whichever client was refused first; the other,
    # refused the same token, takes the new one without a third run.
    assert runs.read_text().splitlines() == ["run", "run"]


class ConnectProxy:
    """A real HTTP CONNECT proxy on a free local port, in a thread: it tunnels each connection
    to the host and port asked for, and records them."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10), "the proxy did not start"

    def _run(self, ready: threading.Event) -> None:
        async def main() -> None:
            server = await asyncio.start_server(self._tunnel, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await server.serve_forever()

        # The Runner ends the tunnels still open in their own loop, then closes it: left to
        # the garbage collector, they would close their sockets on a closed loop, in whichever
        # test runs then.
        with (
            asyncio.Runner(loop_factory=lambda: self.loop) as runner,
            contextlib.suppress(asyncio.CancelledError),
        ):
            runner.run(main())

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        method, target, _ = head.split("\r\n", 1)[0].split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            writer.close()
            return
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        # Cancelled when the proxy stops: a tunnel's end, not its failure.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def stop(self) -> None:
        for task in asyncio.all_tasks(self.loop):
            self.loop.call_soon_threadsafe(task.cancel)
        self.thread.join(10)


@pytest.fixture
def connect_proxy() -> Iterator[ConnectProxy]:
    proxy = ConnectProxy()
    yield proxy
    proxy.stop()


def test_a_proxy_url_carries_every_request(
    start_operator: Callable[..., Operator], connectors: Connectors, operator_kubeconfig: Path,
    tmp_path: Path, connect_proxy: ConnectProxy,
) -> None:  # fmt: skip
    cluster, token = _parts(operator_kubeconfig)
    url = f"http://127.0.0.1:{connect_proxy.port}"
    proxied = {**cluster, "cluster": {**cluster["cluster"], "proxy-url": url}}
    kubeconfig = _write(tmp_path, proxied, {"token": token})
    _runs_a_connector(start_operator, connectors, kubeconfig)
    server = cluster["cluster"]["server"].removeprefix("https://")
    assert connect_proxy.tunnels, "no request went through the proxy"
    assert set(connect_proxy.tunnels) == {server}


def test_a_client_certificate_in_files(
    start_operator: Callable[..., Operator], connectors: Connectors, tmp_path: Path
) -> None:
    admin = yaml.safe_load(connectors.cluster.kubeconfig.read_text())
    user = admin["users"][0]["user"]
    for field, name in (("client-certificate-data", "me.crt"), ("client-key-data", "me.key")):
        (tmp_path / name).write_bytes(base64.b64decode(user[field]))
    kubeconfig = _write(
        tmp_path, admin["clusters"][0], {"client-certificate": "me.crt", "client-key": "me.key"}
    )
    _runs_a_connector(start_operator, connectors, kubeconfig)


def test_an_unusable_kubeconfig_stops_the_operator_with_its_reason(tmp_path: Path) -> None:
    kubeconfig = _write(
        tmp_path, {"name": "c", "cluster": {"server": "https://127.0.0.1:1"}},
        {"auth-provider": {"name": "oidc"}},
    )  # fmt: skip
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(ROOT / "operator"),
           "CONNECTOR_OPERATOR_PROFILE": "generic", "CONNECTOR_OPERATOR_METRICS_PORT": "0",
           "CONNECTOR_OPERATOR_HEALTH_PORT": "0"}  # fmt: skip
    env.pop("KUBERNETES_SERVICE_HOST", None)
    done = subprocess.run(
        [runtime_python(), "-m", "connector_operator"], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "user 'me': auth-provider is not supported" in done.stderr
