"""Which namespace a caller of the gateway acts in (pure: stdlib only).

Each caller acts in exactly one namespace, and sees and changes only the Connectors there:
- a ServiceAccount acts in its own namespace (`system:serviceaccount:<namespace>:<name>`);
- a user named in the mapping's `users` acts in that user's namespace;
- else a caller in exactly one group of the mapping's `groups` acts in that group's namespace
  (one in several such groups, of different namespaces, is refused: the mapping must say);
- anyone else has no namespace, and is refused.
Authorization is the API server's, per call (SubjectAccessReview); this only picks where.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

SERVICE_ACCOUNT = re.compile(r"system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):[^:]+")
NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class TenancyError(ValueError):
    """The mapping is malformed (the message names the entry)."""


@dataclass(frozen=True)
class Tenancy:
    users: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)

    def namespace_of(self, username: str, groups: Sequence[str]) -> str | None:
        """The caller's namespace, or None when the mapping gives it none (or several)."""
        if (account := SERVICE_ACCOUNT.fullmatch(username)) is not None:
            return account[1]
        if username in self.users:
            return self.users[username]
        found = {self.groups[g] for g in groups if g in self.groups}
        return found.pop() if len(found) == 1 else None


def parse(raw: str) -> Tenancy:
    """`{"users": {"alice@example.com": "team-a"}, "groups": {"team-b": "team-b"}}`; empty:
    ServiceAccounts only."""
    if not raw.strip():
        return Tenancy()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise TenancyError(f"the tenancy mapping is not JSON: {error}") from None
    if not isinstance(value, dict) or not set(value) <= {"users", "groups"}:
        raise TenancyError('the tenancy mapping must look like {"users": {...}, "groups": {...}}')
    parts: dict[str, dict[str, str]] = {}
    for part in ("users", "groups"):
        entries = value.get(part) or {}
        if not isinstance(entries, dict):
            raise TenancyError(f"the tenancy mapping's {part} must map names to namespaces")
        for who, namespace in entries.items():
            if not isinstance(namespace, str) or NAMESPACE.fullmatch(namespace) is None:
                raise TenancyError(f"the tenancy mapping's {part}[{who!r}] is not a namespace")
        parts[part] = dict(entries)
    return Tenancy(users=parts["users"], groups=parts["groups"])
