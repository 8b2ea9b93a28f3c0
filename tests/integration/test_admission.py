"""Bad input is refused by the API server itself (schema + CEL), with a message naming the
field, and nothing is stored: applied with kubectl, as a user would."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import S3_CREDENTIALS, Connectors, connector, s3

pytestmark = pytest.mark.cluster

AZURE = {
    "container_name": "invoices",
    "account_name_read": "acct",
    "account_key_read": "key-r",
    "account_name_write": "acct",
    "account_key_write": "key-w",
}

CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("unknown storage type", connector("bad", "GoogleCloud"), ["spec.storage_type", "GoogleCloud"]),
    (
        "missing required field",
        s3("bad", bucket_name=None),
        ["storage_config.bucket_name is required for storage_type AmazonS3"],
    ),
    (
        "field of another type",
        s3("bad", container_name="c"),
        ["storage_config.container_name is not a field of storage_type AmazonS3"],
    ),
    ("unknown field", s3("bad", colour="blue"), ["spec.storage_config.colour", "unknown field"]),
    (
        "non-empty HttpData config",
        connector("bad", "HttpData", region="eu"),
        ["storage_config.region must not be set", "HttpData"],
    ),
    ("malformed url", s3("bad", url="not a url"), ["storage_config.url must be an absolute http"]),
    ("url without http scheme", s3("bad", url="ftp://files.example"), ["storage_config.url"]),
    (
        "both credential modes",
        s3("bad", credentials_secret_ref={"name": "creds"}),
        ["storage_config.username_read and storage_config.credentials_secret_ref are exclusive"],
    ),
    (
        "neither credential mode",
        connector("bad", "AzureStorage", container_name="invoices"),
        ["storage_config.account_key_read is required for storage_type AzureStorage unless"],
    ),
    (
        "partial inline credentials",
        s3("bad", password_write=None),
        ["storage_config.password_write is required for storage_type AmazonS3"],
    ),
    (
        "a name that makes invalid child names",
        {**connector("x" * 54), "metadata": {"name": "x" * 54}},
        ["metadata.name must be a DNS label of at most 53 characters"],
    ),
    (
        "a name with a dot",
        {**connector("a.b"), "metadata": {"name": "a.b"}},
        ["metadata.name must be a DNS label"],
    ),
]


@pytest.mark.parametrize(("what", "manifest", "expected"), CASES, ids=[c[0] for c in CASES])
def test_invalid_connector_is_refused_naming_the_field(
    crd: None, connectors: Connectors, what: str, manifest: dict[str, Any], expected: list[str]
) -> None:
    out = connectors.apply(manifest, check=False)
    for text in expected:
        assert text in out, f"{what}: {text!r} not in {out!r}"
    assert connectors.kubectl("get", "connectors", "-o", "name").strip() == ""


@pytest.mark.parametrize(
    "manifest",
    [
        connector("http"),
        s3("s3-inline"),
        s3("s3-endpoint", url="https://minio.example:9000"),
        connector(
            "s3-ref", "AmazonS3", bucket_name="b", region="r", credentials_secret_ref={"name": "c"}
        ),
        connector("azure", "AzureStorage", **AZURE),
        connector(
            "azure-ref", "AzureStorage", container_name="c", credentials_secret_ref={"name": "c"}
        ),
    ],
    ids=lambda m: m["metadata"]["name"],
)
def test_valid_connectors_are_accepted(
    crd: None, connectors: Connectors, manifest: dict[str, Any]
) -> None:
    connectors.apply(manifest)
    stored = connectors.get(manifest["metadata"]["name"])
    assert stored["spec"]["storage_type"] == manifest["spec"]["storage_type"]
    assert stored["spec"]["storage_config"] == manifest["spec"]["storage_config"]


def test_seed_payload_is_a_spec(crd: None, connectors: Connectors) -> None:
    """The seed API's S3 body, as its page shows it, is a valid spec as it is."""
    payload = {
        "storage_type": "AmazonS3",
        "storage_config": {
            "bucket_name": "<bucket-name>",
            "region": "<region>",
            "url": "https://s3.example.com",
            **S3_CREDENTIALS,
        },
    }
    connectors.apply({"apiVersion": "dataspace.dev/v1alpha1", "kind": "Connector",
                      "metadata": {"name": "seed"}, "spec": payload})  # fmt: skip
    assert connectors.get("seed")["spec"] == payload
