"""Unit tests of what the gateway answers for each failure, and of when a start is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from connector_operator.gateway.access import ForbiddenError, UnauthenticatedError
from connector_operator.gateway.app import answer_for
from connector_operator.gateway.payload import FieldError, PayloadError
from connector_operator.gateway.routes import RefusedError, UnavailableError, start_refused
from connector_operator.kube import ApiError, ConflictError, NotFoundError, TransientError


def detail(response: web.Response) -> Any:
    assert response.content_type == "application/json"
    assert response.text is not None
    return json.loads(response.text)["detail"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (UnauthenticatedError("no token"), 401),
        (ForbiddenError("may not"), 403),
        (NotFoundError("no Connector x in namespace a"), 404),
        (RefusedError("x is FAILED"), 409),
        (ConflictError("PATCH /apis/...: 409 the object has been modified"), 409),
        (UnavailableError("loading"), 503),
        (web.HTTPUnsupportedMediaType(text="the body must be application/json"), 415),
        (web.HTTPRequestEntityTooLarge(max_size=10, actual_size=20), 413),
        (ApiError(403, "POST /apis/...: 403 forbidden"), 502),
    ],
)
def test_each_failure_has_its_status_and_a_json_detail(error: Exception, status: int) -> None:
    response = answer_for(error, "POST")
    assert response.status == status
    assert isinstance(detail(response), str)
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_an_api_server_that_did_not_answer_a_write_leaves_its_outcome_open() -> None:
    read = detail(answer_for(TransientError("GET ...: timed out"), "GET"))
    write = detail(answer_for(TransientError("PATCH ...: timed out"), "PATCH"))
    assert "nothing was done" in read and "may or may not" in write


def test_a_422_of_the_api_server_names_its_fields_and_never_its_message() -> None:
    error = ApiError(422, 'spec.storage_config.password_read: Invalid value: "s3cr3t"',
                     ("spec.storage_config.password_read",))  # fmt: skip
    shown = detail(answer_for(error, "POST"))
    assert shown == [{
        "loc": ["body", "storage_config", "password_read"],
        "msg": "the API server refused this field", "type": "value_error",
    }]  # fmt: skip
    assert "s3cr3t" not in json.dumps(shown)


def test_a_wrong_name_is_a_path_error() -> None:
    shown = detail(answer_for(PayloadError([FieldError("name", "must be a DNS label")]), "GET"))
    assert shown[0]["loc"] == ["path", "name"]


def connector(phase: str | None, action: str | None) -> dict[str, Any]:
    annotations = {"dataspace.dev/action": action} if action else {}
    return {"metadata": {"name": "x", "annotations": annotations},
            "status": {"phase": phase} if phase else {}}  # fmt: skip


@pytest.mark.parametrize(
    ("phase", "action", "refused"),
    [
        ("Failed", "fail", True),
        ("Running", "fail", True),  # the fail is on its way
        ("Failed", None, True),
        ("Stopped", "stop", False),  # stopped from FAILED: it may start again
        ("Running", "start", False),
        (None, None, False),
    ],
)
def test_a_start_is_refused_only_when_failed_or_failing(
    phase: str | None, action: str | None, refused: bool
) -> None:
    reason = start_refused(connector(phase, action))
    assert (reason is not None) == refused
    if reason is not None:
        assert "FAILED" in reason and "stop" in reason
