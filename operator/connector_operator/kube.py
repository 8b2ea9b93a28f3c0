"""The only module that talks to the Kubernetes API server (the official client, off the event
loop, plain dicts: no model deserialization)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from connector_operator import metrics
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


WATCH_BUFFER = 16  # watch lines read ahead of the consumer


class NotFoundError(Exception):
    """The object does not exist."""


class ConflictError(Exception):
    """The write raced another one (409); the caller retries from fresh state."""


class TransientError(Exception):
    """The API server could not answer now (5xx, 429, a dropped connection); retry."""


class FencedError(Exception):
    """A write was refused before it was sent: this replica is no longer sure that it leads."""


def load_api_client() -> client.ApiClient:
    """In a pod: its ServiceAccount; elsewhere: KUBECONFIG or ~/.kube/config."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration)


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
    """Async verbs over one API client; every write is counted in the metrics.

    `identity` names this replica in the User-Agent of every request (the audit log shows who
    wrote what) and in the Lease. `fence`, once set, is asked right before each write is sent:
    a replica that cannot prove it still leads sends nothing.
    """

    def __init__(self, api: client.ApiClient, identity: str) -> None:
        self.api = api
        self.identity = identity
        self.fence: Callable[[], bool] | None = None
        api.user_agent = f"{FIELD_MANAGER}/{_version()} ({identity})"

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
        def call() -> dict[str, Any]:
            method_, url, headers, _, _ = self.api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query or [],
                header_params={"Content-Type": content_type, "Accept": accept},
                auth_settings=["BearerToken"],
            )
            # The client serializes JSON bodies itself; an apply patch (YAML, of which JSON is a
            # subset) goes as the text we give it.
            payload = json.dumps(body) if content_type == APPLY and body is not None else body
            if fenced and self.fence is not None and not self.fence():
                raise FencedError(f"{method} {path}: not sent, this replica may no longer lead")
            response = self.api.call_api(
                method_, url, header_params=headers, body=payload, _request_timeout=timeout
            )
            raw: bytes = response.read()  # type: ignore[no-untyped-call]
            if not 200 <= response.status < 300:
                raise _status_error(response.status, raw, method, path)
            data: dict[str, Any] = json.loads(raw or b"{}")
            return data

        try:
            return await asyncio.to_thread(call)
        except ApiException as error:  # raised for transport failures (status 0)
            raise _status_error(error.status or 0, error.body, method, path) from None
        except (OSError, urllib3.exceptions.HTTPError) as error:
            raise TransientError(f"{method} {path}: {error}") from None

    async def _write(
        self, verb: str, resource: str, method: str, path: str, **kwargs: Any
    ) -> dict[str, Any]:
        kwargs.setdefault("fenced", True)
        result = await self._call(method, path, **kwargs)
        metrics.API_WRITES.labels(verb=verb, resource=resource).inc()
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
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of one WATCH request, until the server ends it.

        The stream is read by a thread of its own (a watch blocks for minutes; it must not hold
        one of the loop's executor threads) and handed to the loop line by line, at most
        WATCH_BUFFER lines ahead of the consumer: a busy loop makes the thread wait (and TCP
        hold the rest), rather than letting events of large objects pile up in memory.
        """
        seconds = next((int(v) for k, v in query if k == "timeoutSeconds"), 300)

        def open_stream() -> Any:
            method_, url, headers, _, _ = self.api.param_serialize(
                method="GET",
                resource_path=path,
                query_params=query,
                header_params={"Accept": accept},
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(
                method_, url, header_params=headers, _request_timeout=(5, seconds + WATCH_SLACK)
            )
            if response.status == 410:
                raise _GoneError
            if not 200 <= response.status < 300:
                raise _status_error(response.status, response.response.data, "WATCH", path)
            return response

        try:
            response = await asyncio.to_thread(open_stream)
        except _GoneError:
            yield {"type": "ERROR", "object": {"code": 410, "message": "Gone"}}
            return
        except ApiException as error:
            raise _status_error(error.status or 0, error.body, "WATCH", path) from None
        except (OSError, urllib3.exceptions.HTTPError) as error:
            raise TransientError(f"WATCH {path}: {error}") from None
        pump = _Pump(asyncio.get_running_loop(), response.response)
        threading.Thread(target=pump.run, name=f"watch {path}", daemon=True).start()
        try:
            while (item := await pump.lines.get()) is not None:
                if isinstance(item, BaseException):
                    raise TransientError(f"WATCH {path}: {item}")
                pump.slots.release()
                if item.strip():
                    yield json.loads(item)
        finally:
            pump.close()

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


class _Pump:
    """Reads one WATCH response line by line in a thread of its own, at most WATCH_BUFFER lines
    ahead of the loop that consumes `lines` (and releases a slot per line)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, response: Any) -> None:
        self.loop, self.response = loop, response
        self.lines: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self.slots = threading.Semaphore(WATCH_BUFFER)
        self.done = threading.Event()

    def _hand_over(self, item: bytes | BaseException | None) -> None:
        # A loop that has closed raises RuntimeError: nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.lines.put_nowait, item)

    def run(self) -> None:
        buffer = b""
        try:
            for chunk in self.response.stream(65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    while not self.slots.acquire(timeout=1):
                        if self.done.is_set():
                            return
                    self._hand_over(line)
        except BaseException as error:
            self._hand_over(error)
        finally:
            self._hand_over(None)

    def close(self) -> None:
        """Ends the thread: its blocked read (close() alone would wait for the lock that read
        holds, until the next event arrives), or its wait for a slot."""
        self.done.set()
        with contextlib.suppress(Exception):
            self.response.shutdown()
        self.response.close()


class _GoneError(Exception):
    """A watch request answered 410 before streaming."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 -- once

    try:
        return version("connector-operator")
    except PackageNotFoundError:
        return "dev"


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


def _status_error(status: int, raw: bytes | str | None, method: str, path: str) -> Exception:
    try:
        answer = json.loads(raw or "{}")
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
