"""A HashiCorp Vault stand-in for the integration tests; standard library only.

It speaks the subset of Vault's HTTP API that Eclipse EDC's vault-hashicorp client (0.14.0) and
an operator writing secrets use, over plain HTTP on 127.0.0.1:

    GET  /v1/sys/health                      always 200, no token needed (as in Vault)
    GET  /v1/auth/token/lookup-self          the token's data; `renewable` as configured
    POST /v1/auth/token/renew-self           (also PUT) only called by EDC for a renewable token
    GET|POST|PUT|DELETE /v1/secret/data/P    KV v2 read, write (body {"data": {...}}), soft delete
    GET|DELETE /v1/secret/metadata/P         KV v2 metadata read, delete of every version
    LIST /v1/secret/metadata/P               (also GET ...?list=true) keys under P, folders end in /

Every route but the health check needs the header X-Vault-Token; a wrong or missing one gets 403
{"errors": ["permission denied"]}, as from Vault. EDC stores a secret as the field "content" of
the data at the secret's key (EDC_FIELD), under the folder EDC_VAULT_HASHICORP_FOLDER when set.

    vault = Vault("root-token")
    url = vault.start()   # http://127.0.0.1:<free port>
    ...
    vault.entries()       # {"path/of/secret": {"content": "..."}}
    vault.stop()
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

EDC_FIELD = "content"
TOKEN_HEADER = "X-Vault-Token"  # noqa: S105 (a header name, not a secret)
Json = dict[str, Any]


class VaultError(Exception):
    """Ends a request with Vault's error body {"errors": [...]} and the given status."""

    def __init__(self, status: int, *errors: str) -> None:
        super().__init__(status, errors)
        self.status = status
        self.errors = list(errors)


class Request(NamedTuple):
    """One request as the stand-in saw it: no headers, no body."""

    method: str
    path: str
    status: int


@dataclass
class Version:
    """One version of a KV v2 secret; `data` is None once the version is deleted."""

    data: Json | None
    created_time: str
    deletion_time: str = ""


@dataclass
class Secret:
    """Every version of one KV v2 secret, oldest first."""

    versions: list[Version] = field(default_factory=list)

    @property
    def current(self) -> Version:
        return self.versions[-1]


def now() -> str:
    """The current time as Vault writes it, RFC 3339 in UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def version_metadata(secret: Secret) -> Json:
    current = secret.current
    return {
        "created_time": current.created_time,
        "custom_metadata": None,
        "deletion_time": current.deletion_time,
        "destroyed": False,
        "version": len(secret.versions),
    }


class Vault:
    """An in-memory Vault with one KV v2 mount and one token, served from a background thread."""

    def __init__(
        self, token: str, *, mount: str = "secret", renewable: bool = False, ttl: int = 0
    ) -> None:
        """`renewable` and `ttl` are what token lookups report (a root dev token: False, 0)."""
        self.token = token
        self.mount = mount.strip("/")
        self.renewable = renewable
        self.ttl = ttl
        self.requests: list[Request] = []
        self._secrets: dict[str, Secret] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the vault is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, port: int = 0) -> str:
        """Serves on 127.0.0.1 and `port` (a free one by default); returns the base URL."""
        self._server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="vault", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Vault:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def entries(self) -> dict[str, Json]:
        """The current data of every secret that is not deleted, by path under the mount."""
        with self._lock:
            return {
                path: dict(secret.current.data)
                for path, secret in sorted(self._secrets.items())
                if secret.current.data is not None
            }

    def put(self, path: str, data: Json) -> None:
        """Writes a secret directly, as a test's seed."""
        with self._lock:
            self._write(path.strip("/"), data, cas=None)

    def put_edc_secret(self, key: str, value: str) -> None:
        """Writes a secret where EDC reads it: `value` as the field "content" at `key`."""
        self.put(key, {EDC_FIELD: value})

    # The routes, called by the handler with the lock held.

    def _write(self, path: str, data: Json, cas: int | None) -> Json:
        secret = self._secrets.setdefault(path, Secret())
        if cas is not None and cas != len(secret.versions):
            raise VaultError(400, "check-and-set parameter did not match the current version")
        secret.versions.append(Version(data=data, created_time=now()))
        return version_metadata(secret)

    def _read(self, path: str) -> Json:
        secret = self._secrets.get(path)
        if secret is None or secret.current.data is None:
            raise VaultError(404)
        return {"data": secret.current.data, "metadata": version_metadata(secret)}

    def _soft_delete(self, path: str) -> None:
        secret = self._secrets.get(path)
        if secret is not None and secret.current.data is not None:
            secret.current.data = None
            secret.current.deletion_time = now()

    def _read_metadata(self, path: str) -> Json:
        secret = self._secrets.get(path)
        if secret is None:
            raise VaultError(404)
        versions = {
            str(number): {
                "created_time": version.created_time,
                "deletion_time": version.deletion_time,
                "destroyed": False,
            }
            for number, version in enumerate(secret.versions, start=1)
        }
        return {
            "cas_required": False,
            "created_time": secret.versions[0].created_time,
            "current_version": len(secret.versions),
            "custom_metadata": None,
            "delete_version_after": "0s",
            "max_versions": 0,
            "oldest_version": 0,
            "updated_time": secret.current.created_time,
            "versions": versions,
        }

    def _list(self, path: str) -> Json:
        prefix = f"{path}/" if path else ""
        keys = {
            child.split("/", 1)[0] + ("/" if "/" in child else "")
            for child in (p[len(prefix) :] for p in self._secrets if p.startswith(prefix))
        }
        if not keys:
            raise VaultError(404)
        return {"keys": sorted(keys)}

    def _token_data(self) -> Json:
        return {
            "accessor": "stand-in",
            "creation_time": 0,
            "creation_ttl": self.ttl,
            "display_name": "token",
            "entity_id": "",
            "expire_time": None,
            "explicit_max_ttl": 0,
            "id": self.token,
            "meta": None,
            "num_uses": 0,
            "orphan": True,
            "path": "auth/token/create",
            "policies": ["root"],
            "renewable": self.renewable,
            "ttl": self.ttl,
            "type": "service",
        }

    def _renew(self, body: Json) -> Json:
        increment = str(body.get("increment", self.ttl)).removesuffix("s")
        return {
            "client_token": self.token,
            "accessor": "stand-in",
            "policies": ["root"],
            "token_policies": ["root"],
            "metadata": None,
            "lease_duration": int(increment) if increment.isdigit() else self.ttl,
            "renewable": self.renewable,
            "entity_id": "",
            "token_type": "service",
            "orphan": True,
        }

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Json) -> Json | None:
        """Answers one authorised request: the response's `data`, or None for 204."""
        if path == "v1/auth/token/lookup-self" and method == "GET":
            return {"data": self._token_data()}
        if path == "v1/auth/token/renew-self" and method in ("POST", "PUT"):
            return {"auth": self._renew(body)}
        mount = f"v1/{self.mount}/"
        kind, _, key = path.removeprefix(mount).partition("/")
        if not path.startswith(mount) or kind not in ("data", "metadata"):
            raise VaultError(404, f'no handler for route "{path}"')
        key = key.strip("/")
        listing = method == "LIST" or (method == "GET" and query.get("list") == ["true"])
        with self._lock:
            return self._kv(method, kind, key, body, listing=listing)

    def _kv(self, method: str, kind: str, key: str, body: Json, *, listing: bool) -> Json | None:
        if kind == "metadata" and listing:
            return {"data": self._list(key)}
        if not key:
            raise VaultError(405, "unsupported operation")
        if kind == "data" and method == "GET":
            return {"data": self._read(key)}
        if kind == "data" and method in ("POST", "PUT"):
            if not isinstance(body.get("data"), dict):
                raise VaultError(400, "no data provided")
            cas = (body.get("options") or {}).get("cas")
            return {"data": self._write(key, body["data"], cas)}
        if kind == "data" and method == "DELETE":
            self._soft_delete(key)
            return None
        if kind == "metadata" and method == "GET":
            return {"data": self._read_metadata(key)}
        if kind == "metadata" and method == "DELETE":
            self._secrets.pop(key, None)
            return None
        raise VaultError(405, "unsupported operation")


def health() -> Json:
    return {
        "initialized": True,
        "sealed": False,
        "standby": False,
        "performance_standby": False,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": int(time.time()),
        "version": "1.17.0-stand-in",
        "cluster_name": "stand-in",
        "cluster_id": "stand-in",
    }


def envelope(answer: Json) -> Json:
    """Vault's response envelope around a route's `data` or `auth`."""
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": answer.get("data"),
        "wrap_info": None,
        "warnings": None,
        "auth": answer.get("auth"),
    }


def make_handler(vault: Vault) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one Vault."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 60  # an idle keep-alive connection is closed after this

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the requests are kept in vault.requests instead."""

        def do_GET(self) -> None:
            self.answer("GET")

        def do_POST(self) -> None:
            self.answer("POST")

        def do_PUT(self) -> None:
            self.answer("PUT")

        def do_DELETE(self) -> None:
            self.answer("DELETE")

        def do_LIST(self) -> None:
            self.answer("LIST")

        def answer(self, method: str) -> None:
            status, payload = self.respond(method)
            with vault._lock:
                vault.requests.append(Request(method, self.path, status))
            self.send_json(status, payload)

        def respond(self, method: str) -> tuple[int, Json | None]:
            url = urlsplit(self.path)
            path = unquote(url.path).strip("/")
            try:
                body = self.read_body()
                if path == "v1/sys/health" and method == "GET":
                    return 200, health()
                if self.headers.get(TOKEN_HEADER) != vault.token:
                    raise VaultError(403, "permission denied")
                answer = vault.route(method, path, parse_qs(url.query), body)
            except VaultError as error:
                return error.status, {"errors": error.errors}
            return (204, None) if answer is None else (200, envelope(answer))

        def read_body(self) -> Json:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw.strip():
                return {}
            try:
                body = json.loads(raw)
            except ValueError as error:
                raise VaultError(400, f"failed to parse JSON input: {error}") from error
            if not isinstance(body, dict):
                raise VaultError(400, "failed to parse JSON input: not an object")
            return body

        def send_json(self, status: int, payload: Json | None) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
