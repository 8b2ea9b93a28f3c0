"""What the operator makes of an API server's refusal: its type says what to do about it (wait
and retry, read again, report to the user), and its message says what was refused."""

from __future__ import annotations

import json

import pytest

from connector_operator.kube import (
    ApiError,
    ConflictError,
    NotFoundError,
    TransientError,
    status_error,
)

PATH = "/apis/apps/v1/namespaces/team-a/deployments/connector-orders"


def answer(message: str, **details: object) -> bytes:
    return json.dumps({"kind": "Status", "message": message, "details": details}).encode()


@pytest.mark.parametrize(
    ("status", "kind"),
    [(404, NotFoundError), (409, ConflictError), (429, TransientError), (500, TransientError),
     (503, TransientError), (0, TransientError), (403, ApiError), (422, ApiError)],
)  # fmt: skip
def test_each_status_is_the_error_it_stands_for(status: int, kind: type[Exception]) -> None:
    error = status_error(status, answer("no"), "PATCH", PATH)
    assert type(error) is kind
    assert str(error) == f"PATCH {PATH}: {status} no"


def test_a_refused_field_is_named() -> None:
    causes = [{"field": "spec.replicas", "message": "must be >= 0"}, {"message": "no field"}]
    error = status_error(422, answer("invalid", causes=causes), "PATCH", PATH)
    assert isinstance(error, ApiError)
    assert (error.status, error.fields) == (422, ("spec.replicas",))


@pytest.mark.parametrize("raw", [b"<html>bad gateway</html>", b"", None, b"[1, 2]"])
def test_an_answer_that_is_no_status_still_names_the_request(raw: bytes | None) -> None:
    error = status_error(502, raw, "GET", PATH)
    assert isinstance(error, TransientError)
    assert str(error) == f"GET {PATH}: 502"
