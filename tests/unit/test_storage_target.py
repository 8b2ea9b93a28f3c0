"""Unit tests of connector_operator.storage.target: what a check calls, made from the spec and
the resolved credentials, and what identifies it (a rotated key asks for a new check)."""

from __future__ import annotations

from typing import Any

import pytest

from connector_operator.models import ConnectorSpec
from connector_operator.storage.target import (
    AzureTarget,
    S3Target,
    Target,
    endpoint_of,
    endpoint_shown,
    fingerprint,
    target_of,
)
from connector_operator.storage.verdict import Pair, Transport, from_transport

S3_KEYS = {
    "username_read": "AKIAREADER0000000000",
    "password_read": "reader-secret-access-key",
    "username_write": "AKIAWRITER0000000000",
    "password_write": "writer-secret-access-key",
}
AZURE_KEYS = {
    "account_name_read": "reader",
    "account_key_read": "cmVhZGVyLWtleQ==",
    "account_name_write": "writer",
    "account_key_write": "d3JpdGVyLWtleQ==",
}


def spec(storage_type: str, **config: Any) -> ConnectorSpec:
    return ConnectorSpec.model_validate({"storage_type": storage_type, "storage_config": config})


def made(spec: ConnectorSpec, credentials: dict[str, str]) -> Target:
    target = target_of(spec, credentials)
    assert target is not None
    return target


S3_SPEC = spec("AmazonS3", bucket_name="orders", region="eu-central-1", **S3_KEYS)
AZURE_SPEC = spec("AzureStorage", container_name="reports", **AZURE_KEYS)


def test_an_s3_target_has_the_bucket_region_endpoint_and_both_pairs() -> None:
    target = made(S3_SPEC, S3_KEYS)

    assert target == S3Target(
        bucket="orders",
        region="eu-central-1",
        url=None,
        read=("AKIAREADER0000000000", "reader-secret-access-key"),
        write=("AKIAWRITER0000000000", "writer-secret-access-key"),
    )
    assert endpoint_of(target) == "https://s3.eu-central-1.amazonaws.com"


def test_an_azure_target_defaults_to_the_read_accounts_blob_endpoint() -> None:
    target = target_of(AZURE_SPEC, AZURE_KEYS)

    assert isinstance(target, AzureTarget)
    assert target.read == ("reader", "cmVhZGVyLWtleQ==")
    assert endpoint_of(target) == "https://reader.blob.core.windows.net"


def test_a_message_names_azures_default_endpoint_without_the_account_name() -> None:
    target = target_of(AZURE_SPEC, AZURE_KEYS)
    assert target is not None

    for pair in Pair:
        named = endpoint_shown(target, pair)
        assert "reader" not in named and "writer" not in named
        assert f"<account_name_{pair}>" in named
    unreachable = from_transport(endpoint_shown(target), Transport.UNREACHABLE)
    assert "reader" not in unreachable.message


def test_a_message_names_the_field_an_endpoint_comes_from() -> None:
    with_url = spec("AzureStorage", container_name="c", url="http://u:p@127.0.0.1:10000/acct",
                    **AZURE_KEYS)  # fmt: skip
    s3 = target_of(S3_SPEC, S3_KEYS)
    assert s3 is not None

    assert endpoint_shown(made(with_url, AZURE_KEYS)) == "http://127.0.0.1:10000 (`url`)"
    assert endpoint_shown(s3) == "https://s3.eu-central-1.amazonaws.com (the default for `region`)"


def test_a_url_is_the_endpoint() -> None:
    with_url = spec("AzureStorage", container_name="c", url="http://127.0.0.1:10000/acct",
                    **AZURE_KEYS)  # fmt: skip

    assert endpoint_of(made(with_url, AZURE_KEYS)) == "http://127.0.0.1:10000/acct"


def test_http_data_has_nothing_to_check() -> None:
    assert target_of(spec("HttpData"), {}) is None


def test_a_missing_credential_gives_no_target() -> None:
    partial = {k: v for k, v in S3_KEYS.items() if k != "password_write"}

    assert target_of(S3_SPEC, partial) is None


@pytest.mark.parametrize("storage", [(S3_SPEC, S3_KEYS), (AZURE_SPEC, AZURE_KEYS)])
def test_a_target_shows_no_credential(storage: tuple[ConnectorSpec, dict[str, str]]) -> None:
    target = target_of(*storage)

    shown = f"{target!r} {target!s}"
    assert not any(value in shown for value in storage[1].values())


def test_a_rotated_key_or_an_edited_field_is_another_target() -> None:
    rotated = {**S3_KEYS, "password_read": "rotated-secret-access-key"}
    moved = spec("AmazonS3", bucket_name="orders", region="eu-west-1", **S3_KEYS)
    same = fingerprint(made(S3_SPEC, S3_KEYS))

    assert fingerprint(made(S3_SPEC, dict(S3_KEYS))) == same
    assert fingerprint(made(S3_SPEC, rotated)) != same
    assert fingerprint(made(moved, S3_KEYS)) != same
