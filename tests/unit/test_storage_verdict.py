"""Unit tests of the storage verdicts: each error code, status and transport failure gets its
reason, and each message names the pair and the field, never a value."""

from __future__ import annotations

import pytest

from connector_operator.models import StorageType
from connector_operator.storage.verdict import (
    Pair,
    Reason,
    Transport,
    from_code,
    from_transport,
    reachable,
    region_of,
    shown,
)

S3, AZURE = StorageType.AMAZON_S3, StorageType.AZURE_STORAGE


@pytest.mark.parametrize(
    ("storage", "code", "status", "reason"),
    [
        (S3, "InvalidAccessKeyId", 403, Reason.INVALID_CREDENTIALS),
        (S3, "SignatureDoesNotMatch", 403, Reason.INVALID_CREDENTIALS),
        (S3, "AccessDenied", 403, Reason.ACCESS_DENIED),
        (S3, "NoSuchBucket", 404, Reason.BUCKET_NOT_FOUND),
        (S3, "", 404, Reason.BUCKET_NOT_FOUND),  # a HEAD has no body: the status tells
        (S3, "PermanentRedirect", 301, Reason.WRONG_REGION),
        (S3, "AuthorizationHeaderMalformed", 400, Reason.WRONG_REGION),
        (AZURE, "AuthenticationFailed", 403, Reason.INVALID_CREDENTIALS),  # Azure
        (AZURE, "AuthorizationFailure", 403, Reason.INVALID_CREDENTIALS),  # Azurite
        (AZURE, "AuthorizationPermissionMismatch", 403, Reason.ACCESS_DENIED),
        (AZURE, "ContainerNotFound", 404, Reason.CONTAINER_NOT_FOUND),
        (S3, "SomethingNew", 403, Reason.ACCESS_DENIED),
        (S3, "InternalError", 500, Reason.CHECK_FAILED),  # no reason covers it: Unknown
        (AZURE, "ServerBusy", 503, Reason.CHECK_FAILED),
    ],
)
def test_each_answer_has_its_reason(
    storage: StorageType, code: str, status: int, reason: Reason
) -> None:
    assert from_code(storage, Pair.READ, "list", code, status).reason is reason


def test_a_credentials_message_names_the_pair_and_its_fields() -> None:
    verdict = from_code(S3, Pair.WRITE, "write a probe object", "AccessDenied", 403)
    assert "write pair (username_write, password_write)" in verdict.message
    verdict = from_code(AZURE, Pair.READ, "list the container", "AuthenticationFailed", 403)
    assert "read pair (account_name_read, account_key_read)" in verdict.message


def test_an_endpoint_is_shown_without_a_user_part() -> None:
    assert shown("https://key:secret@s3.example.com:9000/x") == "https://s3.example.com:9000"
    assert shown("http://127.0.0.1/acct") == "http://127.0.0.1"
    assert from_transport("http://h", Transport.TLS).reason is Reason.TLS_ERROR
    assert from_transport("http://h", Transport.UNREACHABLE).reason is Reason.ENDPOINT_UNREACHABLE


@pytest.mark.parametrize(
    ("location", "region"), [(None, "us-east-1"), ("", "us-east-1"), ("EU", "eu-west-1"),
                             ("eu-central-1", "eu-central-1")],
)  # fmt: skip
def test_s3_locations_are_regions(location: str | None, region: str) -> None:
    assert region_of(location) == region


def test_reachable_says_what_was_proven() -> None:
    assert "write pair" in reachable(S3, writes=True).message
    assert "write pair" not in reachable(AZURE, writes=False).message
    assert reachable(S3, writes=False).reachable
