"""The only module that talks to the Kubernetes API server: REST verbs over aiohttp, on the
event loop, plain dicts in and out (where it is and how to authenticate: `kubeconfig`,
`credentials`)."""

from __future__ import annotations

import datetime
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import aiohttp
import orjson

from connector_operator import metrics
from connector_operator.credentials import Authorizer, tls_context
from connector_operator.kubeconfig import Endpoint, KubeconfigError
from connector_operator.models import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)
FIELD_MANAGER = "connector-operator"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
REVIEWS = {
    "TokenReview": "/apis/authentication.k8s.io/v1/tokenreviews",
    "SubjectAccessReview": "/apis/authorization.k8s.io/v1/subjectaccessreviews",
}
TIMEOUT = (5, 30)  # connect, read (seconds): no call waits for ever
WATCH_SLACK = 30  # seconds a watch may stay silent beyond its timeoutSeconds


class NotFoundError(Exception):
    """The object does not exist."""


class ConflictError(Exception):
    """The write raced another one (409); the caller retries from fresh state."""


class TransientError(Exception):
    """The API server could not answer now (5xx, 429, a dropped connection); retry."""


class FencedError(Exception):
    """A write was refused before it was sent: this replica is no longer sure that it leads."""


def path_of(manifest: Mapping[str, Any]) -> str:
    """The REST path of a namespaced object from its apiVersion, kind and name."""
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    meta = manifest["metadata"]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    plural = {
        "Secret": "secrets",
        "Service": "services",
        "Deployment": "deployments",
        "Ingress": "ingresses",
    }[kind]
    return f"{base}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"


def connector_path(namespace: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"


class Kube:
    """Async verbs over one API server; every write is counted in the metrics.

    `identity` names this replica in the User-Agent of every request (the audit log shows who
    wrote what) and in the Lease. `fence`, once set, is asked right before each write is sent:
    a replica that cannot prove it still leads sends nothing.

    Requests share one aiohttp session (made on first use, in the running loop): connections
    are kept alive and reused, and each watch holds one of its own for as long as it lasts.
    """

    def __init__(self, endpoint: Endpoint, identity: str) -> None:
        self.endpoint = endpoint
        self.identity = identity
        self.fence: Callable[[], bool] | None = None
        self.user_agent = f"{FIELD_MANAGER}/{_version()} ({identity})"
        self._auth = Authorizer(endpoint)
        self._tls = tls_context(endpoint)  # now: a bad certificate fails the start, not a call
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No limit on connections: every watch holds one for minutes, and the calls in
            # flight are bounded by the workers that make them.
            connector = aiohttp.TCPConnector(limit=0, ssl=self._tls or True)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.user_agent}
            )
        return self._session

    async def bearer_token(self) -> str | None:
        """The token the next request would present, if it presents one."""
        return _bearer(await self._auth.header())

    def refused(self, token: str | None) -> None:
        """Another client (Kopf's) was refused `token`: the next request asks for a new one
        (from a token file or a plugin; a fixed token stays as it is)."""
        if self._auth.renewable:
            self._auth.invalidate(token)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None,
        headers: dict[str, str],
        query: list[tuple[str, str]] | None,
        timeout: aiohttp.ClientTimeout,
        fenced: bool,
    ) -> aiohttp.ClientResponse:
        """One request, its response open (the caller reads and releases it). A 401 from
        credentials that may have been renewed (a token file, a plugin) is asked again once."""
        for attempt in (1, 2):
            auth = await self._auth.header()
            if fenced and self.fence is not None and not self.fence():
                raise FencedError(f"{method} {path}: not sent, this replica may no longer lead")
            response = await self._http().request(
                method, self.endpoint.server + path, params=query, data=data,
                headers={**headers, **auth}, timeout=timeout, proxy=self.endpoint.proxy_url,
                server_hostname=self.endpoint.tls_server_name,
            )  # fmt: skip
            if response.status != 401 or attempt == 2 or not self._auth.renewable:
                return response
            response.release()
            self._auth.invalidate(_bearer(auth))
        raise AssertionError("unreachable")

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
        accept: str = "application/json",
        fenced: bool = False,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> dict[str, Any]:
        # An apply patch is YAML, of which JSON is a subset: every body goes as JSON text.
        data = None if body is None else orjson.dumps(body)
        headers = {"Accept": accept, **({"Content-Type": content_type} if data else {})}
        limits = aiohttp.ClientTimeout(total=None, sock_connect=timeout[0], sock_read=timeout[1])
        try:
            response = await self._send(method, path, data=data, headers=headers, query=query,
                                        timeout=limits, fenced=fenced)  # fmt: skip
            async with response:
                raw = await response.read()
        # OSError: timeouts included; KubeconfigError: a token file or plugin failing for now.
        except (aiohttp.ClientError, OSError, KubeconfigError) as error:
            raise TransientError(f"{method} {path}: {_describe(error)}") from None
        if not 200 <= response.status < 300:
            raise status_error(response.status, raw, method, path)
        try:
            data_: dict[str, Any] = orjson.loads(raw or b"{}")
        except ValueError:  # a proxy's error page, a response cut short
            raise TransientError(f"{method} {path}: {response.status} with no JSON") from None
        return data_

    async def _write(
        self, verb: str, resource: str, method: str, path: str, **kwargs: Any
    ) -> dict[str, Any]:
        kwargs.setdefault("fenced", True)
        result = await self._call(method, path, **kwargs)
        metrics.write_sent(verb, resource)
        return result

    async def get(self, path: str) -> dict[str, Any] | None:
        try:
            return await self._call("GET", path)
        except NotFoundError:
            return None

    async def list_page(
        self, path: str, query: list[tuple[str, str]], accept: str = "application/json"
    ) -> dict[str, Any]:
        """One page of a LIST (`limit` and `continue` are in `query`)."""
        return await self._call("GET", path, query=query, accept=accept)

    async def list_metadata(self, path: str, page_size: int = 500) -> list[dict[str, Any]]:
        """Only the items' metadata, page by page: a cheap way to compare the server with a
        cache."""
        accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = [("limit", str(page_size))] + ([("continue", token)] if token else [])
            page = await self.list_page(path, query, accept)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    async def watch(
        self, path: str, query: list[tuple[str, str]], accept: str = "application/json"
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The events of one WATCH request, until the server ends it.

        Lines are split here, not by the stream's readline, which refuses a line longer than
        its buffer (an event of a large object is one line). The stream is read only as fast
        as the consumer takes events: a busy loop leaves the rest in the socket, not in memory.
        """
        seconds = next((int(v) for k, v in query if k == "timeoutSeconds"), 300)
        limits = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=seconds + WATCH_SLACK)
        try:
            response = await self._send("GET", path, data=None, headers={"Accept": accept},
                                        query=query, timeout=limits, fenced=False)  # fmt: skip
            async with response:
                if response.status == 410:
                    yield {"type": "ERROR", "object": {"code": 410, "message": "Gone"}}
                    return
                if not 200 <= response.status < 300:
                    raise status_error(response.status, await response.read(), "WATCH", path)
                lines = Lines()
                async for chunk in response.content.iter_any():
                    for line in lines.feed(chunk):
                        yield orjson.loads(line)
        except (aiohttp.ClientError, OSError, KubeconfigError) as error:
            raise TransientError(f"WATCH {path}: {_describe(error)}") from None

    async def create(
        self, collection: str, body: Mapping[str, Any], kind: str, *, fenced: bool = True
    ) -> dict[str, Any]:
        return await self._write("create", kind, "POST", collection, body=body, fenced=fenced)

    async def replace(
        self, path: str, body: Mapping[str, Any], kind: str, *, fenced: bool = True
    ) -> dict[str, Any]:
        """PUT: the body's resourceVersion makes it fail (409) if the object changed."""
        return await self._write("update", kind, "PUT", path, body=body, fenced=fenced)

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply: creates or updates in one request, owning exactly our fields."""
        return await self._write(
            "apply",
            manifest["kind"],
            "PATCH",
            path_of(manifest),
            body=manifest,
            content_type=APPLY,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        )

    async def merge_patch(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the object the manifest names: unlike apply, it replaces lists
        whole, and a key set to null is removed."""
        return await self._write(
            "patch",
            manifest["kind"],
            "PATCH",
            path_of(manifest),
            body=manifest,
            content_type=MERGE,
            query=[("fieldManager", FIELD_MANAGER)],
        )

    async def patch_connector_status(
        self, namespace: str, name: str, status: Mapping[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        """Replaces the status as a whole; the resourceVersion guards against a stale base."""
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self._write(
            "patch",
            "Connector/status",
            "PATCH",
            connector_path(namespace, name) + "/status",
            body=body,
            content_type=MERGE,
        )

    async def review(self, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """The status of a TokenReview or SubjectAccessReview of `spec` (nothing is stored)."""
        group_version = REVIEWS[kind].split("/")[2:4]
        body = {"apiVersion": "/".join(group_version), "kind": kind, "spec": spec}
        result = await self._call("POST", REVIEWS[kind], body=body)
        status: dict[str, Any] = result.get("status") or {}
        return status

    async def patch_connector(
        self, namespace: str, name: str, patch: object, content_type: str = MERGE
    ) -> dict[str, Any]:
        """A merge patch (or a JSON patch: a list of operations) of a Connector's main resource."""
        return await self._write(
            "patch", "Connector", "PATCH", connector_path(namespace, name),
            body=patch, content_type=content_type, fenced=False,
        )  # fmt: skip

    async def delete_connector(self, namespace: str, name: str) -> dict[str, Any]:
        return await self._write(
            "delete", "Connector", "DELETE", connector_path(namespace, name), fenced=False
        )

    async def post_event(
        self,
        involved: Mapping[str, Any],
        type_: str,
        reason: str,
        message: str,
        now: datetime.datetime,
    ) -> None:
        meta = involved["metadata"]
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": self.identity,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self._write(
                "create", "Event", "POST", f"/api/v1/namespaces/{meta['namespace']}/events",
                body=event,
            )  # fmt: skip
        except (TransientError, ConflictError, NotFoundError, ApiError) as error:
            # An event is a courtesy: losing one (even a refused one) must not fail the
            # reconcile whose status was written already.
            log.warning("could not post event %s: %s", reason, error)


class Lines:
    """Splits a stream of chunks into its non-empty lines, a line cut across chunks joined."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # the start of a line not yet ended

    def feed(self, chunk: bytes) -> list[bytes]:
        *ended, rest = chunk.split(b"\n")
        if ended and self._pending:
            ended[0] = b"".join([*self._pending, ended[0]])
            self._pending = []
        if rest:
            self._pending.append(rest)
        return [line for line in ended if line.strip()]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 -- once

    try:
        return version("connector-operator")
    except PackageNotFoundError:
        return "dev"


def _describe(error: BaseException) -> str:
    """A transport failure in words (a timeout's own text is empty)."""
    return str(error) or type(error).__name__


class ApiError(Exception):
    """The API server refused a request for a reason a retry does not fix (4xx)."""

    def __init__(self, status: int, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.fields = fields  # of a 422: the fields the API server refused, by path


def _fields(answer: object) -> tuple[str, ...]:
    details = answer.get("details") if isinstance(answer, dict) else None
    causes = details.get("causes") if isinstance(details, dict) else None
    return tuple(str(c["field"]) for c in causes or () if isinstance(c, dict) and c.get("field"))


def _bearer(header: Mapping[str, str]) -> str | None:
    found = header.get("Authorization", "")
    return found.removeprefix("Bearer ") if found.startswith("Bearer ") else None


def status_error(status: int, raw: bytes | str | None, method: str, path: str) -> Exception:
    """The error an answer other than 2xx stands for: what to do about it is in its type."""
    try:
        answer = orjson.loads(raw or "{}")
        detail = str(answer.get("message", ""))
    except (ValueError, AttributeError):
        answer, detail = {}, ""
    text = f"{method} {path}: {status} {detail}".rstrip()
    if status == 404:
        return NotFoundError(text)
    if status == 409:
        return ConflictError(text)
    if status in (0, 429) or status >= 500:
        return TransientError(text)
    return ApiError(status, text, _fields(answer))
