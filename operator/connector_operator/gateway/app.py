"""The gateway's aiohttp application: the routes of the OpenAPI table under the mount prefix,
the document and its interactive docs, health, and the one place where errors become answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from connector_operator.gateway.access import ForbiddenError, UnauthenticatedError
from connector_operator.gateway.openapi import OPERATIONS, Operation, document
from connector_operator.gateway.payload import PayloadError
from connector_operator.gateway.routes import (
    RefusedError,
    Routes,
    UnavailableError,
    answer,
    field_errors,
)
from connector_operator.kube import ApiError, ConflictError, NotFoundError, TransientError

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>connector-operator gateway</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "OPENAPI_URL", dom_id: "#ui"});</script>
</body></html>
"""


def _version() -> str:
    try:
        return version("connector-operator")
    except PackageNotFoundError:
        return "dev"


def problem(status: int, detail: str) -> web.Response:
    response = answer({"detail": detail}, status)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def invalid(error: PayloadError) -> web.Response:
    detail = [
        {"loc": ["body" if e.field != "name" else "path", *e.field.split(".")],
         "msg": e.message, "type": "value_error"}
        for e in error.errors
    ]  # fmt: skip
    return answer({"detail": detail}, 422)


# What each failure answers; the first match wins. The messages are the gateway's own.
STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (UnauthenticatedError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (RefusedError, 409),
    (ConflictError, 409),  # a write raced another one: nothing was changed
    (UnavailableError, 503),
)
UNREACHABLE = {
    True: "the API server could not be reached: nothing was done; try again",
    False: (
        "the API server did not answer: the change may or may not have been made; "
        "GET the Connector to see"
    ),
}


def answer_for(error: Exception, method: str) -> web.Response:
    """The answer to a failure; no message carries a request's body or a token."""
    if isinstance(error, PayloadError):
        return invalid(error)
    if isinstance(error, web.HTTPException):  # 404 of an unknown path, 405, 413, 415, 400
        response = problem(error.status, error.text or error.reason)
        if "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
        return response
    if isinstance(error, TransientError):
        log.warning("answering 503: %s", error)
        return problem(503, UNREACHABLE[method == "GET"])
    if isinstance(error, ApiError):
        if error.status == 422:
            return invalid(PayloadError(field_errors(error.fields)))
        log.error("the API server refused a gateway request: %s", error)
        return problem(502, "the API server refused the request")
    status = next(code for kind, code in STATUS_OF if isinstance(error, kind))
    return problem(status, str(error))


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as JSON `{"detail": ...}`."""
    try:
        return await handler(request)
    except (PayloadError, web.HTTPException, TransientError, ApiError) as error:
        return answer_for(error, request.method)
    except tuple(kind for kind, _ in STATUS_OF) as error:
        return answer_for(error, request.method)
    except Exception:
        # A defect: logged with its traceback (which holds no request body), answered in JSON.
        log.exception("%s %s failed", request.method, request.path)
        return problem(500, "the gateway failed: nothing was done")


def _bind(routes: Routes, op: Operation) -> Handler:
    """The handler of an operation of the table; an operation without one fails at start."""
    handlers = {
        "listConnectors": routes.list_connectors,
        "getConnector": routes.get_connector,
        "createConnector": routes.create_connector,
        "editConnector": routes.edit_connector,
        "deleteConnector": routes.delete_connector,
        "watchConnectors": routes.watch_connectors,
    }
    method = routes.act if op.action is not None else handlers[op.id]

    async def handle(request: web.Request) -> web.StreamResponse:
        return await method(request, op)

    return handle


def make_app(routes: Routes) -> web.Application:
    prefix = routes.settings.prefix
    app = web.Application(middlewares=[errors], client_max_size=routes.settings.max_body_bytes)
    spec = json.dumps(document(prefix, _version()))
    page = DOCS_PAGE.replace("OPENAPI_URL", f"{prefix}/openapi.json")

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(text=spec, content_type="application/json")

    async def docs(_: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        if not routes.view.synced():
            return web.Response(text="loading the Connectors", status=503)
        return web.Response(text="ok")

    for op in OPERATIONS:
        app.router.add_route(op.method, prefix + op.path, _bind(routes, op))
    app.router.add_get(f"{prefix}/openapi.json", openapi)
    app.router.add_get(f"{prefix}/docs", docs)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
