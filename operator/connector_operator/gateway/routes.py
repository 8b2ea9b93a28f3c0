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
import logging
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
from connector_operator.kube import (
    JSON_PATCH,
    ApiError,
    ConflictError,
    NotFoundError,
    TransientError,
    connector_path,
)
from connector_operator.models import ACTION_ANNOTATION, GROUP, PLURAL, VERSION, Action, Phase

log = logging.getLogger(__name__)
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
        served = self.settings.namespaces
        if served and caller.namespace not in served:
            raise ForbiddenError(
                f"namespace {caller.namespace} is not served here (the operator runs the "
                "Connectors of its configured namespaces only)"
            )
        # A create names no object, for kubectl too: a resourceNames rule cannot grant it.
        name = None if op.verb == "create" else request.match_info.get("name")
        await self.access.allow(caller, op.verb, name)
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
        except (ValueError, RecursionError):  # RecursionError: nested too deep to be a payload
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
            # Not here (yet): a write through another replica may be newer than this cache.
            fresh = await self.kube.get(connector_path(caller.namespace, name))
            if fresh is None:
                raise absent(name, caller.namespace)
            found = self.view.render(payload.slim(fresh))
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
        replace = [{"op": "replace", "path": "/spec", "value": spec}]
        try:
            edited = await self.kube.patch_connector(caller.namespace, name, replace, JSON_PATCH)
        except NotFoundError:
            raise absent(name, caller.namespace) from None
        return answer(self.view.remember(edited))

    # DELETE /connectors/{name}
    async def delete_connector(self, request: web.Request, op: Operation) -> web.Response:
        caller = await self.authorize(request, op)
        name = self.name(request)
        try:
            gone = await self.kube.delete_connector(caller.namespace, name)
        except NotFoundError:
            raise absent(name, caller.namespace) from None
        if gone.get("kind") == "Connector" and payload.is_deleting(gone):
            self.view.remember(gone)  # someone's finalizer holds it: STOPPING until it goes
        else:
            self.view.forget(caller.namespace, name)
        return answer({"detail": f"Connector {name} is being deleted"}, 202)

    # GET|PUT /connectors/{name}/start|stop|fail
    async def act(self, request: web.Request, op: Operation) -> web.Response:
        caller = await self.authorize(request, op)
        name = self.name(request)
        assert op.action is not None
        shown = await self._set_action(caller.namespace, name, op.action)
        return answer(shown, 200 if shown["status"] == TARGET[op.action] else 202)

    async def _set_action(self, namespace: str, name: str, action: Action) -> Entry:
        if action is not Action.START:
            annotate = {"metadata": {"annotations": {ACTION_ANNOTATION: action.value}}}
            try:
                return self.view.remember(
                    await self.kube.patch_connector(namespace, name, annotate)
                )
            except NotFoundError:
                raise absent(name, namespace) from None
        for _ in range(ACTION_ATTEMPTS):
            current = await self.kube.get(connector_path(namespace, name))
            if current is None:
                raise absent(name, namespace)
            refused = start_refused(current)
            if refused is not None:
                raise RefusedError(refused)
            patch = {
                "metadata": {
                    "annotations": {ACTION_ANNOTATION: action.value},
                    # What was read above must still hold when the start lands.
                    "resourceVersion": current["metadata"]["resourceVersion"],
                }
            }
            try:
                return self.view.remember(await self.kube.patch_connector(namespace, name, patch))
            except ConflictError:
                continue  # it changed meanwhile (a status write, most likely): read it again
        raise UnavailableError(f"Connector {name} kept changing while it was being started")

    # GET /watch/connectors
    async def watch_connectors(self, request: web.Request, op: Operation) -> web.StreamResponse:
        caller = await self.authorize(request, op)
        if not self.view.synced():
            raise UnavailableError("the gateway is still loading the Connectors: try again")
        stream = web.StreamResponse(
            headers={"Content-Type": EVENT_STREAM, "Cache-Control": "no-cache"}
        )
        await stream.prepare(request)
        try:
            await self._follow(request, op, caller, stream)
        except ConnectionResetError:
            pass  # the client went away
        except Exception as error:  # the answer has begun: end it, never raise into it
            log.warning("a live-update stream failed: %s", error)
            with contextlib.suppress(ConnectionResetError):
                await stream.write(end_event("the gateway ended the stream: reconnect"))
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
                        await stream.write(end_event(ended))
                        return
                    recheck = loop.time() + self.settings.stream_recheck_seconds
            await stream.write(end_event("the stream fell behind: reconnect"))

    async def _still_allowed(self, request: web.Request, op: Operation) -> str | None:
        """None while the stream's caller may go on; else why not. An API server that cannot
        answer now ends no stream: the check comes again at the next interval."""
        try:
            await self.authorize(request, op)
        except (UnauthenticatedError, ForbiddenError) as error:
            return str(error)
        except (TransientError, ApiError) as error:
            log.warning("could not check a live-update stream's caller again: %s", error)
        return None


def end_event(why: str) -> bytes:
    """The stream's last event: `end`, with why, as a Problem."""
    return f"event: end\ndata: {json.dumps({'detail': why})}\n\n".encode()


def absent(name: str, namespace: str) -> NotFoundError:
    return NotFoundError(f"no Connector {name} in namespace {namespace}")


def start_refused(current: Mapping[str, Any]) -> str | None:
    """Why a Connector cannot be started now, if it cannot: FAILED, or on its way there (from
    FAILED, only stop or delete)."""
    phase = (current.get("status") or {}).get("phase")
    pending = ((current.get("metadata") or {}).get("annotations") or {}).get(ACTION_ANNOTATION)
    name = current["metadata"]["name"]
    if phase == Phase.FAILED or pending == Action.FAIL:
        return f"Connector {name} is FAILED: from there only stop or delete; stop it, then start it"
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
