"""The gateway's handlers, one per operation of the OpenAPI table: authorize, check the input,
write through `kube`, answer from the watch cache (aiohttp at the edge; never the operator's
handlers).

Every handler authorizes first (401, 403) and then checks its input (422, 415, 413, 400), so a
caller without permission learns nothing about names or payloads; nothing is written before
every check has passed, and each change is one API request, so nothing is half-applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from connector_operator.gateway import payload
from connector_operator.gateway.access import Access, Caller, ForbiddenError, UnauthenticatedError
from connector_operator.gateway.openapi import EVENT_STREAM, JSON, Operation
from connector_operator.gateway.payload import FieldError
from connector_operator.gateway.schemas import PlatformStatus
from connector_operator.gateway.settings import GatewaySettings
from connector_operator.gateway.watchcache import ConnectorView, Entry
from connector_operator.kube import JSON_PATCH, ConflictError, NotFoundError, connector_path
from connector_operator.models import ACTION_ANNOTATION, GROUP, PLURAL, VERSION, Action, Phase

TARGET = {
    Action.START: PlatformStatus.RUNNING,
    Action.STOP: PlatformStatus.STOPPED,
    Action.FAIL: PlatformStatus.FAILED,
}
ACTION_ATTEMPTS = 3  # a Connector that changes between the read and the patch is read again


class UnavailableError(Exception):
    """503: the gateway cannot answer now (its cache is still loading)."""


class RefusedError(Exception):
    """409: the Connector exists, or cannot take the action now."""


class Writer(Protocol):
    """What the handlers need of the API server."""

    async def get(self, path: str) -> dict[str, Any] | None: ...
    async def create(
        self, collection: str, body: Mapping[str, Any], kind: str, *, fenced: bool = True
    ) -> dict[str, Any]: ...
    async def patch_connector(
        self, namespace: str, name: str, patch: object, content_type: str = ...
    ) -> dict[str, Any]: ...
    async def delete_connector(self, namespace: str, name: str) -> dict[str, Any]: ...


def answer(body: object, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type=JSON)


@dataclass(frozen=True)
class Routes:
    settings: GatewaySettings
    access: Access
    view: ConnectorView
    kube: Writer

    async def authorize(self, request: web.Request, op: Operation) -> Caller:
        caller = await self.access.caller(request.headers.get("Authorization"))
        await self.access.allow(caller, op.verb, request.match_info.get("name"))
        return caller

    def name(self, request: web.Request) -> str:
        name = request.match_info["name"]
        payload.check_name(name)
        return name

    async def read_payload(self, request: web.Request) -> object:
        if request.content_type != JSON:
            raise web.HTTPUnsupportedMediaType(text="the body must be application/json")
        raw = await request.read()  # over client_max_size: aiohttp answers 413
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPBadRequest(text="the body is not valid JSON") from None

    # GET /connectors
    async def list_connectors(self, request: web.Request, op: Operation) -> web.Response:
        caller = await self.authorize(request, op)
        if not self.view.synced():
            raise UnavailableError("the gateway is still loading the Connectors: try again")
        listing = self.view.listing(caller.namespace)
        return web.Response(body=listing, content_type=JSON)

    # GET /connectors/{name}
    async def get_connector(self, request: web.Request, op: Operation) -> web.Response:
        caller = await self.authorize(request, op)
        name = self.name(request)
        if not self.view.synced():
            raise UnavailableError("the gateway is still loading the Connectors: try again")
        found = self.view.entry(caller.namespace, name)
        if found is None:
            raise NotFoundError(f"no Connector {name} in namespace {caller.namespace}")
        return answer(found)

    # POST /connectors/{name}
    async def create_connector(self, request: web.Request, op: Operation) -> web.Response:
        caller = await self.authorize(request, op)
        name = self.name(request)
        manifest = payload.manifest(name, await self.read_payload(request))
        manifest["metadata"]["namespace"] = caller.namespace
        collection = f"/apis/{GROUP}/{VERSION}/namespaces/{caller.namespace}/{PLURAL}"
        try:
            made = await self.kube.create(collection, manifest, "Connector", fenced=False)
        except ConflictError:
            raise RefusedError(
                f"a Connector {name} exists in namespace {caller.namespace}"
            ) from None
        return answer(self.view.remember(made), 201)

    # PUT /connectors/{name}
    async def edit_connector(self, request: web.Request, op: Operation) -> web.Response:
        caller = await self.authorize(request, op)
        name = self.name(request)
        spec = payload.manifest(name, await self.read_payload(request))["spec"]
        edited = await self.kube.patch_connector(
            caller.namespace, name, [{"op": "replace", "path": "/spec", "value": spec}], JSON_PATCH
        )
        return answer(self.view.remember(edited))

    # DELETE /connectors/{name}
    async def delete_connector(self, request: web.Request, op: Operation) -> web.Response:
        caller = await self.authorize(request, op)
        name = self.name(request)
        gone = await self.kube.delete_connector(caller.namespace, name)
        if gone.get("kind") == "Connector":
            self.view.remember(gone)
        return answer({"detail": f"Connector {name} is being deleted"}, 202)

    # GET|PUT /connectors/{name}/start|stop|fail
    async def act(self, request: web.Request, op: Operation) -> web.Response:
        caller = await self.authorize(request, op)
        name = self.name(request)
        assert op.action is not None
        shown = await self._set_action(caller.namespace, name, op.action)
        return answer(shown, 200 if shown["status"] == TARGET[op.action] else 202)

    async def _set_action(self, namespace: str, name: str, action: Action) -> Entry:
        for attempt in range(ACTION_ATTEMPTS):
            current = await self.kube.get(connector_path(namespace, name))
            if current is None:
                raise NotFoundError(f"no Connector {name} in namespace {namespace}")
            phase = (current.get("status") or {}).get("phase")
            if action is Action.START and phase == Phase.FAILED:
                raise RefusedError(
                    f"Connector {name} is FAILED: from there only stop or delete; "
                    "stop it, then start it"
                )
            patch = {
                "metadata": {
                    "annotations": {ACTION_ANNOTATION: action.value},
                    # The phase read above must still hold when the action lands.
                    "resourceVersion": current["metadata"]["resourceVersion"],
                }
            }
            try:
                return self.view.remember(await self.kube.patch_connector(namespace, name, patch))
            except ConflictError:
                if attempt == ACTION_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    # GET /watch/connectors
    async def watch_connectors(self, request: web.Request, op: Operation) -> web.StreamResponse:
        caller = await self.authorize(request, op)
        if not self.view.synced():
            raise UnavailableError("the gateway is still loading the Connectors: try again")
        stream = web.StreamResponse(
            headers={"Content-Type": EVENT_STREAM, "Cache-Control": "no-cache"}
        )
        await stream.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the client went away
            await self._follow(request, op, caller, stream)
        return stream

    async def _follow(
        self, request: web.Request, op: Operation, caller: Caller, stream: web.StreamResponse
    ) -> None:
        """Sends the namespace's entries, then every change, until the caller may no longer
        watch or falls too far behind (then it reconnects and starts over)."""
        loop = asyncio.get_running_loop()
        with self.view.subscribe(caller.namespace) as subscription:
            for name, shown in self.view.entries(caller.namespace).items():
                await send(stream, "ADDED", name, shown)
            recheck = loop.time() + self.settings.stream_recheck_seconds
            while not subscription.lagging:
                wait = min(self.settings.stream_keepalive_seconds, recheck - loop.time())
                try:
                    event = await asyncio.wait_for(subscription.queue.get(), max(wait, 0))
                    await send(stream, *event)
                except TimeoutError:
                    await stream.write(b": keepalive\n\n")
                if loop.time() >= recheck:
                    if (ended := await self._still_allowed(request, op)) is not None:
                        await stream.write(f"event: end\ndata: {ended}\n\n".encode())
                        break
                    recheck = loop.time() + self.settings.stream_recheck_seconds

    async def _still_allowed(self, request: web.Request, op: Operation) -> str | None:
        """None while the stream's caller may go on; else why not, as a Problem in JSON."""
        try:
            await self.authorize(request, op)
        except (UnauthenticatedError, ForbiddenError) as error:
            return json.dumps({"detail": str(error)})
        return None


async def send(stream: web.StreamResponse, kind: str, name: str, shown: Entry | None) -> None:
    data: dict[str, Any] = {"type": kind, "name": name}
    if shown is not None:
        data["connector"] = shown
    await stream.write(f"event: connector\ndata: {json.dumps(data)}\n\n".encode())


def field_errors(fields: tuple[str, ...]) -> list[FieldError]:
    """A 422 of the API server, as field errors: its own messages are not passed on, since the
    schema's can quote the value (and the value may be a credential)."""
    return [
        FieldError(f.removeprefix("spec."), "the API server refused this field") for f in fields
    ] or [FieldError("body", "the API server refused the payload")]
