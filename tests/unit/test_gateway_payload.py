"""Unit tests of the gateway's REST shapes: the seed's payloads become Connectors verbatim,
a wrong one is refused field by field with admission's messages, and an entry shows what the
platform's dashboard reads and never a credential."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector_operator.gateway.payload import PayloadError, entry, manifest, slim, spec_of
from connector_operator.models import SPEC_RULES, Connector, StorageType

S3 = {
    "storage_type": "AmazonS3",
    "storage_config": {
        "bucket_name": "orders", "region": "eu-central-1", "url": "https://s3.example.com",
        "username_read": "AKIA-R", "password_read": "pw-read-1",
        "username_write": "AKIA-W", "password_write": "pw-write-1",
    },
}  # fmt: skip
AZURE = {
    "storage_type": "AzureStorage",
    "storage_config": {
        "container_name": "reports", "region": "westeurope",
        "url": "https://acct.blob.core.windows.net",
        "account_name_read": "readacct", "account_key_read": "key-read-1",
        "account_name_write": "writeacct", "account_key_write": "key-write-1",
    },
}  # fmt: skip
HTTP: dict[str, Any] = {"storage_type": "HttpData", "storage_config": {}}
SECRETS = ("pw-read-1", "pw-write-1", "key-read-1", "key-write-1", "AKIA-R", "readacct")


@pytest.mark.parametrize("payload", [HTTP, S3, AZURE], ids=["HttpData", "AmazonS3", "AzureStorage"])
def test_the_seeds_payloads_become_connectors_verbatim(payload: dict[str, Any]) -> None:
    made = manifest("orders", payload)
    assert made["metadata"] == {"name": "orders"} and made["spec"] == payload
    Connector.model_validate({**made, "metadata": {"name": "orders", "namespace": "ns"}})


def errors_of(name: str, payload: object) -> dict[str, str]:
    with pytest.raises(PayloadError) as refused:
        manifest(name, payload)
    return {e.field: e.message for e in refused.value.errors}


def admission_message(field: str, storage_type: StorageType) -> str:
    rule = next(
        r
        for r in SPEC_RULES
        if r.field_path == f".storage_config.{field}"
        and not r.holds(storage_type, spec_of(S3).storage_config.model_copy(update={field: None}))
    )
    return rule.message_for(storage_type)  # fmt: skip


def test_a_missing_field_is_named_with_admissions_message() -> None:
    config = {k: v for k, v in S3["storage_config"].items() if k != "bucket_name"}
    errors = errors_of("orders", {**S3, "storage_config": config})
    assert errors == {
        "storage_config.bucket_name": admission_message("bucket_name", StorageType.AMAZON_S3)
    }


def test_every_wrong_field_is_named_at_once() -> None:
    payload = {"storage_type": "AmazonS3", "storage_config": {"container_name": "x"}, "extra": 1}
    errors = errors_of("orders", payload)
    assert {"extra", "storage_config.bucket_name", "storage_config.region",
            "storage_config.container_name"} <= set(errors)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "payload", "field"),
    [
        ("orders", ["not", "an", "object"], "body"),
        ("orders", {"storage_type": "FTP"}, "storage_type"),
        ("orders", {"storage_type": "HttpData", "storage_config": {"bucket_name": 3}},
         "storage_config.bucket_name"),
        ("Orders_1", HTTP, "name"),
        ("x" * 54, HTTP, "name"),
    ],
)  # fmt: skip
def test_malformed_input_is_named(name: str, payload: object, field: str) -> None:
    assert field in errors_of(name, payload)


@pytest.mark.parametrize(
    "wrong",
    [
        {"url": "pw-read-1", "bucket_name": None},  # a rule's error
        {"password_read": "pw-read-1" * 200},  # too long: the schema's error
        {"username_read": ["AKIA-R"], "password_write": {"pw-write-1": 1}},  # wrong types
    ],
    ids=["rule", "length", "type"],
)
def test_no_error_quotes_a_credential(wrong: dict[str, Any]) -> None:
    config = {**S3["storage_config"], **wrong}
    with pytest.raises(PayloadError) as refused:
        manifest("orders", {**S3, "storage_config": config})
    assert refused.value.errors
    assert not any(secret in str(refused.value) for secret in SECRETS)


def stored(payload: dict[str, Any], phase: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {**manifest("orders", payload)}
    if phase is not None:
        body["status"] = {"phase": phase}
    return body


def shown(body: dict[str, Any], bpn: str | None = None) -> dict[str, Any]:
    """The entry as the gateway sends it."""
    return entry(body, bpn).model_dump(mode="json", exclude_none=True)


def test_an_entry_shows_the_dashboards_fields_and_no_credential() -> None:
    assert shown(stored(S3, "Running"), "BPNL000000000001") == {
        "status": "RUNNING", "storageType": "AmazonS3", "bpn": "BPNL000000000001",
        "bucketName": "orders", "region": "eu-central-1",
    }  # fmt: skip
    assert shown(stored(AZURE, "Restarting")) == {
        "status": "RESTARTING", "storageType": "AzureStorage",
        "region": "westeurope", "azureContainerName": "reports",
    }  # fmt: skip
    text = json.dumps([shown(stored(p, "Failed")) for p in (S3, AZURE)])
    assert not any(secret in text for secret in SECRETS)


@pytest.mark.parametrize("payload", [HTTP, S3, AZURE], ids=["HttpData", "AmazonS3", "AzureStorage"])
def test_what_the_gateway_keeps_has_no_credential_and_the_same_entry(
    payload: dict[str, Any],
) -> None:
    body = {**stored(payload, "Running"), "metadata": {"name": "orders", "namespace": "ns"}}
    kept = slim(body)
    assert not any(secret in json.dumps(kept) for secret in SECRETS)
    assert slim(kept) == kept  # a cache transform must be idempotent
    assert shown(kept) == shown(body)


@pytest.mark.parametrize(
    ("phase", "word"),
    [(None, "STARTING"), ("Starting", "STARTING"), ("Running", "RUNNING"),
     ("Stopping", "STOPPING"), ("Stopped", "STOPPED"), ("Failed", "FAILED")],
)  # fmt: skip
def test_the_platforms_words_for_each_phase(phase: str | None, word: str) -> None:
    assert shown(stored(HTTP, phase))["status"] == word
