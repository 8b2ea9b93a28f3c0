"""The gateway's operations, and its OpenAPI document generated from them and the pydantic
models (pure: pydantic and the models only). The app routes by the same table, so the document
cannot drift from what is served."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from connector_operator.gateway.schemas import (
    Accepted,
    ConnectorEntry,
    ConnectorEvent,
    ConnectorList,
    Problem,
    ValidationProblem,
)
from connector_operator.models import NAME_MAX_LENGTH, NAME_PATTERN, Action, ConnectorSpec

JSON = "application/json"
EVENT_STREAM = "text/event-stream"
Responses = Mapping[int, tuple[str, type[BaseModel] | None]]

DENIED: Responses = {
    401: ("No valid bearer token: nothing was done.", Problem),
    403: ("The caller may not do this here: nothing was done.", Problem),
    503: ("The API server could not be reached: nothing was done; try again.", Problem),
}
NAMED: Responses = {
    404: ("No Connector of this name in the caller's namespace.", Problem),
    422: ("The name is not a valid Connector name.", ValidationProblem),
}
BODY: Responses = {
    400: ("The body is not JSON.", Problem),
    413: ("The body is larger than the gateway accepts.", Problem),
    415: ("The body is not application/json.", Problem),
    422: ("The payload (or the name) is invalid: one entry per field.", ValidationProblem),
}


@dataclass(frozen=True)
class Operation:
    id: str
    method: str
    path: str  # below the mount prefix
    verb: str  # what the caller needs on connectors, in the Kubernetes RBAC sense
    summary: str
    responses: Responses
    body: bool = False
    action: Action | None = None
    stream: bool = False
    tags: tuple[str, ...] = field(default=("connectors",))


def _actions() -> list[Operation]:
    said = {
        Action.START: "Start the Connector. A FAILED one cannot be started: stop it first.",
        Action.STOP: "Stop the Connector (FAILED ones too).",
        Action.FAIL: "Force the Connector into FAILED: from there only stop or delete.",
    }
    responses: Responses = {
        200: ("The Connector is there already.", ConnectorEntry),
        202: ("The action is set; the Connector is on its way.", ConnectorEntry),
        409: ("The Connector cannot take this action now (start when FAILED).", Problem),
        **NAMED,
        **DENIED,
    }
    return [
        Operation(
            id=f"{action.value}Connector{'' if method == 'PUT' else 'Legacy'}",
            method=method,
            path=f"/connectors/{{name}}/{action.value}",
            verb="patch",
            summary=said[action] + (" (GET: for older clients.)" if method == "GET" else ""),
            responses=responses,
            action=action,
        )
        for action in Action
        for method in ("PUT", "GET")
    ]


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "listConnectors", "GET", "/connectors", "list", "The caller's Connectors, by name.",
        {200: ("The caller's Connectors.", ConnectorList), **DENIED},
    ),
    Operation(
        "getConnector", "GET", "/connectors/{name}", "get", "One Connector.",
        {200: ("The Connector.", ConnectorEntry), **NAMED, **DENIED},
    ),
    Operation(
        "createConnector", "POST", "/connectors/{name}", "create",
        "Create a Connector from the payload; it starts up.",
        {201: ("Created; it starts up.", ConnectorEntry),
         409: ("A Connector of this name exists.", Problem), **BODY, **DENIED},
        body=True,
    ),
    Operation(
        "editConnector", "PUT", "/connectors/{name}", "update",
        "Replace the Connector's payload; it restarts with the new configuration.",
        {200: ("Edited; it restarts with the new configuration.", ConnectorEntry),
         404: NAMED[404], **BODY, **DENIED},
        body=True,
    ),
    Operation(
        "deleteConnector", "DELETE", "/connectors/{name}", "delete", "Delete the Connector.",
        {202: ("The Connector is being deleted.", Accepted), **NAMED, **DENIED},
    ),
    *_actions(),
    Operation(
        "watchConnectors", "GET", "/watch/connectors", "watch",
        "Live updates: a Server-Sent Events stream of the caller's Connectors. Each event "
        "`connector` carries a ConnectorEvent: first one ADDED per Connector, then every change.",
        {200: ("The stream (text/event-stream).", ConnectorEvent), **DENIED},
        stream=True,
    ),
)  # fmt: skip

NAME_PARAMETER = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "The Connector's name: a DNS label.",
    "schema": {"type": "string", "maxLength": NAME_MAX_LENGTH, "pattern": NAME_PATTERN},
}


def _schemas() -> tuple[dict[str, Any], dict[Any, dict[str, Any]]]:
    """Every model's schema under components, and the reference to each by model."""
    models: list[type[BaseModel]] = [
        ConnectorList, ConnectorEntry, ConnectorEvent, Problem, ValidationProblem, Accepted,
    ]  # fmt: skip
    keyed, top = models_json_schema(
        [(m, "serialization") for m in models] + [(ConnectorSpec, "validation")],
        ref_template="#/components/schemas/{model}",
    )
    refs = {model: schema for (model, _), schema in keyed.items()}
    return dict(top.get("$defs", {})), refs


def _operation(op: Operation, refs: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for code, (description, model) in sorted(op.responses.items()):
        shown: dict[str, Any] = {"description": description}
        if model is not None:
            kind = EVENT_STREAM if op.stream and code == 200 else JSON
            shown["content"] = {kind: {"schema": refs[model]}}
        responses[str(code)] = shown
    doc: dict[str, Any] = {
        "operationId": op.id,
        "summary": op.summary,
        "tags": list(op.tags),
        "responses": responses,
    }
    if "{name}" in op.path:
        doc["parameters"] = [NAME_PARAMETER]
    if op.body:
        doc["requestBody"] = {
            "required": True,
            "description": "The platform's payload: storage_type and storage_config.",
            "content": {JSON: {"schema": refs[ConnectorSpec]}},
        }
    return doc


def document(prefix: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API mounted at `prefix`."""
    schemas, refs = _schemas()
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(prefix + op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "connector-operator gateway",
            "version": version,
            "description": (
                "The platform's Connectors REST API, served over Connector resources. Every "
                "call needs `Authorization: Bearer <token>` (any token the cluster trusts) and "
                "acts in the caller's namespace, as Kubernetes RBAC allows. Credentials are "
                "never returned."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": paths,
    }
