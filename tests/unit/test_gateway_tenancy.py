"""Unit tests of the gateway's tenancy: the one namespace each caller acts in."""

from __future__ import annotations

import pytest

from connector_operator.gateway.tenancy import Tenancy, TenancyError, parse

MAPPING = parse(
    '{"users": {"alice@example.com": "team-a"},'
    ' "groups": {"team-b-devs": "team-b", "team-c-devs": "team-c"}}'
)


def test_a_service_account_acts_in_its_own_namespace() -> None:
    assert MAPPING.namespace_of("system:serviceaccount:team-x:ci", []) == "team-x"


def test_a_mapped_user_acts_in_the_users_namespace_before_any_group() -> None:
    assert MAPPING.namespace_of("alice@example.com", ["team-b-devs"]) == "team-a"


def test_a_caller_in_one_mapped_group_acts_there() -> None:
    assert MAPPING.namespace_of("bob", ["everyone", "team-b-devs"]) == "team-b"


def test_a_caller_in_groups_of_two_namespaces_or_none_has_no_namespace() -> None:
    assert MAPPING.namespace_of("carol", ["team-b-devs", "team-c-devs"]) is None
    assert MAPPING.namespace_of("dave", ["everyone"]) is None
    assert Tenancy().namespace_of("alice@example.com", ["team-b-devs"]) is None


@pytest.mark.parametrize(
    "raw",
    ["not json", "[]", '{"teams": {}}', '{"users": ["alice"]}', '{"users": {"alice": "Team_A"}}',
     '{"groups": {"g": 3}}'],
)  # fmt: skip
def test_a_malformed_mapping_is_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(TenancyError, match="tenancy mapping"):
        parse(raw)


def test_an_empty_mapping_serves_service_accounts_only() -> None:
    assert parse("") == Tenancy()
