"""What the operator presents to the API server: its TLS settings and, per request, its
Authorization header (stdlib; reads the files an `Endpoint` names, and runs its exec plugin).

A token file is read again every minute, as client-go does: a pod's ServiceAccount token is
rotated by the kubelet (an hour by default) and the old one stops working. An exec plugin's
token is kept until the expiry it states; a plugin that fails is not run again for a pause
that doubles with each failure (1 s to 30 s). A 401 answer drops what is kept, so that the next
request reads or asks again (once, however many requests the same token had been sent with).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import os
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from connector_operator.kubeconfig import Endpoint, ExecPlugin, KubeconfigError

TOKEN_FILE_SECONDS = 60.0  # a token file is read again after this long
EXEC_SECONDS = 30.0  # an exec plugin gets this long to answer
EXPIRY_MARGIN = datetime.timedelta(seconds=10)  # an exec token is renewed this early
# After a plugin failed, requests fail with its error for this long before it runs again,
# doubling with each failure in a row up to the cap: a broken plugin is not run per request.
PLUGIN_PAUSE, PLUGIN_PAUSE_CAP = 1.0, 30.0


def tls_context(endpoint: Endpoint) -> ssl.SSLContext | None:
    """The TLS settings of an https endpoint (None for http): its CA, else the system's; the
    client certificate, if any. PEM data is loaded through a private temporary file that is
    removed at once (the ssl module loads a certificate chain from files only)."""
    if not endpoint.server.startswith("https://"):
        return None
    context = ssl.create_default_context(
        cafile=endpoint.ca_file,
        cadata=endpoint.ca_data.decode() if endpoint.ca_data else None,
    )
    if endpoint.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert, key = endpoint.cert_file or endpoint.cert_data, endpoint.key_file or endpoint.key_data
    if cert is None and key is None:
        return context
    if cert is None or key is None:
        raise KubeconfigError("kubeconfig: a client certificate needs both its key and itself")
    with tempfile.TemporaryDirectory(prefix="connector-operator-tls-") as folder:
        context.load_cert_chain(
            _as_file(cert, folder, "cert.pem"), _as_file(key, folder, "key.pem")
        )
    return context


def _as_file(value: str | bytes, folder: str, name: str) -> str:
    if isinstance(value, str):
        return value
    path = Path(folder) / name
    path.touch(mode=0o600)
    path.write_bytes(value)
    return str(path)


class Authorizer:
    """The Authorization header of the next request.

    `clock` (monotonic seconds) and `now` (UTC) are injectable for tests."""

    def __init__(
        self,
        endpoint: Endpoint,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self.endpoint, self.clock, self.now = endpoint, clock, now
        self._token: str | None = None
        self._read_at = 0.0  # of a token file: when it was read
        self._expires: datetime.datetime | None = None  # of a plugin's token: as it says
        self._lock = asyncio.Lock()
        self._failed: tuple[str, float, int] | None = None  # its error, until when, how often

    @property
    def renewable(self) -> bool:
        """Whether a 401 may be mended by asking again (a file or a plugin may have a new one)."""
        return bool(self.endpoint.token_file or self.endpoint.exec_plugin)

    def invalidate(self, refused: str | None = None) -> None:
        """Forgets the token, so that the next request asks for one again. With `refused` (the
        token a 401 answered), only while that is still the token held: requests refused at
        once renew it once, not once each."""
        if refused is None or refused == self._token:
            self._token, self._expires = None, None

    async def header(self) -> dict[str, str]:
        e = self.endpoint
        if e.exec_plugin is not None:
            token = await self._exec_token(e.exec_plugin)
        elif e.token_file is not None:
            token = self._file_token(e.token_file)
        elif e.token is not None:
            token = e.token
        elif e.username is not None:
            pair = f"{e.username}:{e.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        else:
            return {}  # a client certificate, or none
        return {"Authorization": f"Bearer {token}"}

    def _file_token(self, path: str) -> str:
        if self._token is None or self.clock() - self._read_at >= TOKEN_FILE_SECONDS:
            try:
                self._token = Path(path).read_text().strip()
            except OSError as error:
                if self._token is None:  # a rotation in progress keeps the one read before
                    raise KubeconfigError(f"token file {path}: {error.strerror}") from None
            self._read_at = self.clock()
        return self._token

    async def _exec_token(self, plugin: ExecPlugin) -> str:
        async with self._lock:  # one plugin run at a time: the others wait for its token
            if self._token is not None and (self._expires is None or self.now() < self._expires):
                return self._token  # kept until it expires, or until a 401 without an expiry
            if self._failed is not None and self.clock() < self._failed[1]:
                raise KubeconfigError(self._failed[0])
            try:
                self._token, expiry = await _run_plugin(plugin)
            except KubeconfigError as error:
                count = self._failed[2] + 1 if self._failed is not None else 0
                pause = min(PLUGIN_PAUSE * 2**count, PLUGIN_PAUSE_CAP)
                self._failed = (str(error), self.clock() + pause, count)
                raise
            self._failed = None
            self._expires = expiry - EXPIRY_MARGIN if expiry is not None else None
            return self._token


async def _run_plugin(plugin: ExecPlugin) -> tuple[str, datetime.datetime | None]:
    """Runs the plugin as kubectl does (its env added to ours, KUBERNETES_EXEC_INFO set) and
    reads its ExecCredential. Its stderr is not kept: a plugin may print secrets there."""
    command = plugin.command
    if os.sep in command and not os.path.isabs(command) and plugin.workdir:
        command = os.path.join(plugin.workdir, command)
    info = {"apiVersion": plugin.api_version, "kind": "ExecCredential",
            "spec": {"interactive": False}}  # fmt: skip
    env = {**os.environ, **dict(plugin.env), "KUBERNETES_EXEC_INFO": json.dumps(info)}
    what = f"exec plugin {plugin.command!r}"
    try:
        process = await asyncio.create_subprocess_exec(
            command, *plugin.args, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
    except OSError as error:
        raise KubeconfigError(f"{what}: cannot run: {error.strerror}") from None
    try:
        out, _ = await asyncio.wait_for(process.communicate(), EXEC_SECONDS)
    except TimeoutError:
        raise KubeconfigError(f"{what}: no answer in {EXEC_SECONDS:g} s") from None
    finally:  # timed out or cancelled: the plugin does not outlive its request
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise KubeconfigError(f"{what}: exited with {process.returncode}")
    try:
        status = json.loads(out)["status"]
        token = status["token"]
    except (ValueError, KeyError, TypeError):
        raise KubeconfigError(
            f"{what}: printed no ExecCredential with status.token (a plugin that returns a "
            "client certificate is not supported)"
        ) from None
    expiry = status.get("expirationTimestamp")
    try:
        until = datetime.datetime.fromisoformat(expiry.replace("Z", "+00:00")) if expiry else None
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=datetime.UTC)  # a time without a zone is UTC
    except (AttributeError, ValueError):
        raise KubeconfigError(f"{what}: status.expirationTimestamp {expiry!r} is no time") from None
    return str(token), until
