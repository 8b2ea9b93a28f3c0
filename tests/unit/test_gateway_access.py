"""Unit tests of the gateway's access decisions: the bearer header, the review specs it sends,
and what it makes of the API server's answers (the integration tests ask the real one)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from connector_operator.gateway.access import (
    Access,
    Caller,
    ForbiddenError,
    UnauthenticatedError,
    access_review_spec,
    bearer_token,
)
from connector_operator.gateway.tenancy import Tenancy


class Answers:
    """The API server's answers, given in advance; every review sent is kept."""

    def __init__(self, token: Mapping[str, Any], access: Mapping[str, Any]) -> None:
        self.answers = {"TokenReview": token, "SubjectAccessReview": access}
        self.sent: list[tuple[str, Mapping[str, Any]]] = []

    async def review(self, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        self.sent.append((kind, spec))
        return dict(self.answers[kind])


SA = {
    "authenticated": True,
    "user": {"username": "system:serviceaccount:team-a:ci", "uid": "u-1",
             "groups": ["system:serviceaccounts"]},
}  # fmt: skip


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer"])
def test_a_missing_or_other_authorization_is_unauthenticated(header: str | None) -> None:
    with pytest.raises(UnauthenticatedError):
        bearer_token(header)


def test_the_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer tok.en") == bearer_token("Bearer tok.en") == "tok.en"


def test_a_service_account_acts_in_its_own_namespace_and_is_asked_for_there() -> None:
    answers = Answers({**SA, "audiences": ["connector-gateway"]}, {"allowed": True})
    access = Access(answers, Tenancy(), audiences=("connector-gateway",))
    caller = asyncio.run(access.caller("Bearer t0k"))
    assert caller.namespace == "team-a"
    asyncio.run(access.allow(caller, "create", "orders"))
    assert answers.sent[0] == ("TokenReview", {"token": "t0k", "audiences": ["connector-gateway"]})
    kind, spec = answers.sent[1]
    assert kind == "SubjectAccessReview"
    assert spec["resourceAttributes"] == {
        "group": "dataspace.dev", "resource": "connectors", "verb": "create",
        "namespace": "team-a", "name": "orders",
    }  # fmt: skip
    assert spec["user"] == "system:serviceaccount:team-a:ci" and spec["uid"] == "u-1"


def test_a_token_checked_for_other_audiences_than_the_gateways_is_unauthenticated() -> None:
    for audiences in ([], ["https://kubernetes.default.svc"]):
        answers = Answers({**SA, "audiences": audiences}, {"allowed": True})
        access = Access(answers, Tenancy(), audiences=("connector-gateway",))
        with pytest.raises(UnauthenticatedError, match="not meant for this gateway"):
            asyncio.run(access.caller("Bearer t0k"))


@pytest.mark.parametrize(
    "status",
    [{"authenticated": False}, {"authenticated": True, "user": {}}, {}],
)
def test_a_token_the_api_server_does_not_accept_is_unauthenticated(
    status: dict[str, Any],
) -> None:
    with pytest.raises(UnauthenticatedError):
        asyncio.run(Access(Answers(status, {}), Tenancy()).caller("Bearer x"))


def test_a_user_without_a_namespace_is_forbidden_before_any_access_review() -> None:
    user = {"authenticated": True, "user": {"username": "oidc:bob", "groups": ["oidc:x"]}}
    answers = Answers(user, {"allowed": True})
    with pytest.raises(ForbiddenError, match="no namespace"):
        asyncio.run(Access(answers, Tenancy(users={"oidc:alice": "team-a"})).caller("Bearer x"))
    assert [kind for kind, _ in answers.sent] == ["TokenReview"]


@pytest.mark.parametrize("status", [{"allowed": False}, {"allowed": True, "denied": True}, {}])
def test_anything_but_allowed_is_forbidden(status: dict[str, Any]) -> None:
    caller = Caller("system:serviceaccount:team-a:ci", "team-a")
    with pytest.raises(ForbiddenError, match="may not list connectors in namespace team-a"):
        asyncio.run(Access(Answers(SA, status), Tenancy()).allow(caller, "list"))


def test_a_review_of_all_connectors_names_none() -> None:
    spec = access_review_spec(Caller("u", "ns", groups=("g",), extra={"k": ("v",)}), "list", None)
    assert "name" not in spec["resourceAttributes"]
    assert spec["groups"] == ["g"] and spec["extra"] == {"k": ["v"]} and "uid" not in spec
