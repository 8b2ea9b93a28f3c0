"""Who calls, in which namespace, and whether they may: TokenReview, the tenancy mapping, then a
SubjectAccessReview per call (I/O only through the `Reviewer` given; no client imported).

The API server decides both questions, so one RBAC governs kubectl and REST: a RoleBinding that
lets a team `create` connectors in its namespace lets it POST there, and nothing else does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from connector_operator.gateway.tenancy import Tenancy
from connector_operator.models import GROUP, PLURAL

BEARER = "bearer "


class UnauthenticatedError(Exception):
    """401: no token, or one the API server does not accept."""


class ForbiddenError(Exception):
    """403: an authenticated caller without a namespace, or without the permission."""


class Reviewer(Protocol):
    async def review(self, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Caller:
    username: str
    namespace: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, Sequence[str]] = field(default_factory=dict)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; UnauthenticatedError otherwise."""
    if authorization is None or not authorization[: len(BEARER)].lower() == BEARER:
        raise UnauthenticatedError("an Authorization: Bearer <token> header is required")
    token = authorization[len(BEARER) :].strip()
    if not token:
        raise UnauthenticatedError("the bearer token is empty")
    return token


def access_review_spec(caller: Caller, verb: str, name: str | None) -> dict[str, Any]:
    """The SubjectAccessReview spec for `verb` on connectors (one by name, or all) in the
    caller's namespace."""
    attributes = {"group": GROUP, "resource": PLURAL, "verb": verb, "namespace": caller.namespace}
    if name is not None:
        attributes["name"] = name
    spec: dict[str, Any] = {
        "user": caller.username,
        "groups": list(caller.groups),
        "resourceAttributes": attributes,
    }
    if caller.uid:
        spec["uid"] = caller.uid
    if caller.extra:
        spec["extra"] = {k: list(v) for k, v in caller.extra.items()}
    return spec


@dataclass(frozen=True)
class Access:
    reviewer: Reviewer
    tenancy: Tenancy
    audiences: tuple[str, ...] = ()

    async def caller(self, authorization: str | None) -> Caller:
        """The caller the token names, with their namespace (TokenReview, then the mapping)."""
        spec: dict[str, Any] = {"token": bearer_token(authorization)}
        if self.audiences:
            spec["audiences"] = list(self.audiences)
        status = await self.reviewer.review("TokenReview", spec)
        user = status.get("user") or {}
        if not status.get("authenticated") or not user.get("username"):
            # The API server's reason is not passed on: it can describe the token.
            raise UnauthenticatedError("the bearer token is not valid")
        if self.audiences and not set(status.get("audiences") or ()) & set(self.audiences):
            # An authenticator that ignored the audiences asked for answers with none: the
            # token was then checked for the API server's audience only, not for ours.
            raise UnauthenticatedError("the bearer token is not meant for this gateway")
        username, groups = str(user["username"]), tuple(user.get("groups") or ())
        namespace = self.tenancy.namespace_of(username, groups)
        if namespace is None:
            raise ForbiddenError(
                f"{username} has no namespace here: the gateway's tenancy mapping gives "
                "ServiceAccounts their own, and users or groups the one it names"
            )
        return Caller(
            username=username,
            namespace=namespace,
            uid=str(user.get("uid") or ""),
            groups=groups,
            extra=user.get("extra") or {},
        )

    async def allow(self, caller: Caller, verb: str, name: str | None = None) -> None:
        """Returns if the caller may `verb` connectors (that one) in its namespace."""
        status = await self.reviewer.review(
            "SubjectAccessReview", access_review_spec(caller, verb, name)
        )
        if not status.get("allowed") or status.get("denied"):
            what = f"connectors/{name}" if name else "connectors"
            raise ForbiddenError(
                f"{caller.username} may not {verb} {what} in namespace {caller.namespace}"
            )
