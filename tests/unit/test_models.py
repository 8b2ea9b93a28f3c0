"""Unit tests of connector_operator.models: the seed payload, its rules, status and names."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from pydantic import ValidationError

from connector_operator.models import (
    CREDENTIAL_FIELDS,
    NAME_MAX_LENGTH,
    NAME_MESSAGE,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    SPEC_RULES,
    Connector,
    ConnectorSpec,
    ConnectorStatus,
    Phase,
    StorageConfig,
    StorageType,
    allowed_fields,
    broken_rules,
    is_http_url,
    validate_name,
)

S3_INLINE = {
    "bucket_name": "invoices",
    "region": "eu-central-1",
    "username_read": "AKIAREAD",
    "password_read": "read-secret",
    "username_write": "AKIAWRITE",
    "password_write": "write-secret",
}
AZURE_INLINE = {
    "container_name": "invoices",
    "account_name_read": "readaccount",
    "account_key_read": "read-key",
    "account_name_write": "writeaccount",
    "account_key_write": "write-key",
}
SECRET_REF = {"credentials_secret_ref": {"name": "storage-credentials"}}


def s3(**config: Any) -> dict[str, Any]:
    return {"storage_type": "AmazonS3", "storage_config": config}


def azure(**config: Any) -> dict[str, Any]:
    return {"storage_type": "AzureStorage", "storage_config": config}


def without(config: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in names}


# The seed page's examples, placeholders filled in: its "<url>" placeholder is no URL.
SEED_EXAMPLES = [
    {"storage_type": "HttpData", "storage_config": {}},
    {
        "storage_type": "AmazonS3",
        "storage_config": {
            "bucket_name": "<bucket-name>",
            "region": "<region>",
            "url": "https://s3.eu-central-1.amazonaws.com",
            "username_read": "<username-read>",
            "password_read": "<password-read>",
            "username_write": "<username-write>",
            "password_write": "<password-write>",
        },
    },
    {
        "storage_type": "AzureStorage",
        "storage_config": {
            "container_name": "<container-name>",
            "region": "<region>",
            "url": "https://account.blob.core.windows.net",
            "account_name_read": "<account-name-read>",
            "account_key_read": "<account-key-read>",
            "account_name_write": "<account-name-write>",
            "account_key_write": "<account-key-write>",
        },
    },
]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"storage_type": "HttpData"}, id="http-no-config"),
        pytest.param({"storage_type": "HttpData", "storage_config": {}}, id="http-empty-config"),
        pytest.param(s3(**S3_INLINE), id="s3-inline"),
        pytest.param(s3(**S3_INLINE, url="http://minio.storage:9000"), id="s3-inline-url"),
        pytest.param(s3(bucket_name="b", region="r", **SECRET_REF), id="s3-secret-ref"),
        pytest.param(
            s3(bucket_name="b", region="r", url="https://s3.example", **SECRET_REF),
            id="s3-secret-ref-url",
        ),
        pytest.param(azure(**AZURE_INLINE), id="azure-inline"),
        pytest.param(
            azure(**AZURE_INLINE, region="westeurope", url="https://a.blob.core.windows.net"),
            id="azure-inline-region-url",
        ),
        pytest.param(azure(container_name="c", **SECRET_REF), id="azure-secret-ref"),
        *(pytest.param(body, id=f"seed-{body['storage_type']}") for body in SEED_EXAMPLES),
    ],
)
def test_valid_spec_is_accepted_and_round_trips(payload: dict[str, Any]) -> None:
    spec = ConnectorSpec.model_validate(payload)

    dumped = spec.model_dump(mode="json", exclude_none=True)
    # Credentials dump masked: inline_credentials is the one way back to their values.
    dumped["storage_config"] = {**dumped.get("storage_config", {}), **spec.inline_credentials()}

    assert dumped == {"storage_config": {}, **payload}
    assert ConnectorSpec.model_validate(dumped) == spec


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param({"storage_type": "GoogleCloud"}, ["storage_type"], id="unknown-type"),
        pytest.param({"storage_config": {}}, ["storage_type"], id="no-type"),
        pytest.param(
            s3(**without(S3_INLINE, "bucket_name")),
            ["storage_config.bucket_name is required for storage_type AmazonS3"],
            id="s3-no-bucket",
        ),
        pytest.param(
            s3(**without(S3_INLINE, "region")),
            ["storage_config.region is required for storage_type AmazonS3"],
            id="s3-no-region",
        ),
        pytest.param(
            azure(**without(AZURE_INLINE, "container_name")),
            ["storage_config.container_name is required for storage_type AzureStorage"],
            id="azure-no-container",
        ),
        pytest.param(
            s3(**S3_INLINE, container_name="c"),
            ["storage_config.container_name is not a field of storage_type AmazonS3"],
            id="s3-with-azure-field",
        ),
        pytest.param(
            s3(**S3_INLINE, account_key_read="k"),
            ["storage_config.account_key_read is not a field of storage_type AmazonS3"],
            id="s3-with-azure-credential",
        ),
        pytest.param(
            azure(**AZURE_INLINE, bucket_name="b", username_read="u"),
            [
                "storage_config.bucket_name is not a field of storage_type AzureStorage",
                "storage_config.username_read is not a field of storage_type AzureStorage",
            ],
            id="azure-with-s3-fields",
        ),
        pytest.param(s3(**S3_INLINE, bucket="b"), ["storage_config.bucket"], id="unknown-field"),
        pytest.param(
            {"storage_type": "HttpData", "storage_config": {}, "replicas": 2},
            ["replicas"],
            id="unknown-spec-field",
        ),
        *(
            pytest.param(
                {"storage_type": "HttpData", "storage_config": config},
                [
                    f"storage_config.{name} must not be set: storage_config must be empty "
                    "for storage_type HttpData"
                ],
                id=f"http-with-{name}",
            )
            for config in [
                {"region": "r"},
                {"url": "https://x"},
                {"username_read": "u"},
                SECRET_REF,
            ]
            for name in config
        ),
        *(
            pytest.param(
                s3(**S3_INLINE, url=url),
                ["storage_config.url must be an absolute http or https URL"],
                id=f"url-{url}",
            )
            for url in ["not a url", "ftp://x", "http://", "https://:443", "/bucket", "s3.aws"]
        ),
        pytest.param(
            s3(**S3_INLINE, **SECRET_REF),
            [
                f"storage_config.{name} and storage_config.credentials_secret_ref are exclusive:"
                " give credentials inline or by Secret reference, not both"
                for name in CREDENTIAL_FIELDS[StorageType.AMAZON_S3]
            ],
            id="s3-both-modes",
        ),
        pytest.param(
            azure(container_name="c", account_key_write="k", **SECRET_REF),
            ["storage_config.account_key_write and storage_config.credentials_secret_ref"],
            id="azure-both-modes",
        ),
        pytest.param(
            s3(bucket_name="b", region="r"),
            [
                f"storage_config.{name} is required for storage_type AmazonS3 unless "
                "storage_config.credentials_secret_ref names a Secret"
                for name in CREDENTIAL_FIELDS[StorageType.AMAZON_S3]
            ],
            id="s3-neither-mode",
        ),
        pytest.param(
            azure(container_name="c"),
            [
                f"storage_config.{name} is required for storage_type AzureStorage unless "
                "storage_config.credentials_secret_ref names a Secret"
                for name in CREDENTIAL_FIELDS[StorageType.AZURE_STORAGE]
            ],
            id="azure-neither-mode",
        ),
        pytest.param(
            s3(**without(S3_INLINE, "password_write")),
            ["storage_config.password_write is required for storage_type AmazonS3 unless"],
            id="s3-partial-inline",
        ),
        pytest.param(
            azure(**without(AZURE_INLINE, "account_name_read", "account_key_read")),
            [
                "storage_config.account_name_read is required for storage_type AzureStorage",
                "storage_config.account_key_read is required for storage_type AzureStorage",
            ],
            id="azure-partial-inline",
        ),
        pytest.param(
            s3(**{**S3_INLINE, "bucket_name": ""}), ["storage_config.bucket_name"], id="empty"
        ),
        pytest.param(
            s3(**{**S3_INLINE, "region": "r" * 1025}), ["storage_config.region"], id="too-long"
        ),
        pytest.param(
            s3(**{**S3_INLINE, "password_read": ""}),
            ["storage_config.password_read"],
            id="empty-credential",
        ),
        pytest.param(
            azure(**{**AZURE_INLINE, "account_name_write": "a" * 1025}),
            ["storage_config.account_name_write"],
            id="too-long-credential",
        ),
        pytest.param(
            azure(container_name="c", credentials_secret_ref={"name": "Not_A_Name"}),
            ["storage_config.credentials_secret_ref.name"],
            id="bad-secret-name",
        ),
        pytest.param(
            azure(container_name="c", credentials_secret_ref={}),
            ["storage_config.credentials_secret_ref.name"],
            id="secret-ref-without-name",
        ),
    ],
)
def test_invalid_spec_is_refused_naming_the_field(
    payload: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(ValidationError) as caught:
        ConnectorSpec.model_validate(payload)

    for text in expected:
        assert text in str(caught.value)


def _valid_by_design(storage_type: StorageType, names: frozenset[str]) -> bool:
    """The README's field rules, written out independently of the rule table."""
    if not names <= allowed_fields(storage_type):
        return False
    if not set(REQUIRED_FIELDS[storage_type]) <= names:
        return False
    if storage_type is StorageType.HTTP_DATA:
        return True
    credentials = set(CREDENTIAL_FIELDS[storage_type])
    if "credentials_secret_ref" in names:
        return not credentials & names
    return credentials <= names


def _config(names: frozenset[str]) -> StorageConfig:
    values: dict[str, Any] = dict.fromkeys(names, "v")
    if "url" in values:
        values["url"] = "https://storage.example"
    if "credentials_secret_ref" in values:
        values["credentials_secret_ref"] = {"name": "creds"}
    return StorageConfig.model_validate(values)


ALL_SUBSETS = [
    frozenset(combination)
    for size in range(len(StorageConfig.model_fields) + 1)
    for combination in itertools.combinations(StorageConfig.model_fields, size)
]


@pytest.mark.parametrize("storage_type", list(StorageType))
def test_rules_accept_exactly_the_designed_specs(storage_type: StorageType) -> None:
    wrong = [
        sorted(names)
        for names in ALL_SUBSETS
        if (not broken_rules(storage_type, _config(names))) != _valid_by_design(storage_type, names)
    ]

    assert wrong == []


def test_every_rule_both_holds_and_breaks_somewhere() -> None:
    configs = [*(_config(names) for names in ALL_SUBSETS), StorageConfig(url="ftp://x")]
    outcomes: dict[int, set[bool]] = {i: set() for i in range(len(SPEC_RULES))}
    for storage_type, config in itertools.product(StorageType, configs):
        for i, rule in enumerate(SPEC_RULES):
            outcomes[i].add(rule.holds(storage_type, config))

    assert [SPEC_RULES[i].rule for i, seen in outcomes.items() if seen != {True, False}] == []


def test_every_message_names_its_field() -> None:
    for rule in SPEC_RULES:
        field = rule.field_path.removeprefix(".")
        for storage_type in StorageType:
            assert rule.message_for(storage_type).startswith(field), rule.rule


def test_all_broken_rules_are_reported_at_once() -> None:
    payload = azure(bucket_name="b", url="ftp://x")

    with pytest.raises(ValidationError) as caught:
        ConnectorSpec.model_validate(payload)

    message = str(caught.value)
    for field in ["bucket_name", "container_name", "account_key_write", "url"]:
        assert f"storage_config.{field} " in message


def test_field_tables_cover_storage_config() -> None:
    for storage_type in StorageType:
        tables = (
            REQUIRED_FIELDS[storage_type],
            OPTIONAL_FIELDS[storage_type],
            CREDENTIAL_FIELDS[storage_type],
        )
        names = [name for table in tables for name in table]
        assert len(names) == len(set(names)), storage_type
        assert set(names) <= set(StorageConfig.model_fields)
    everywhere = set().union(*(allowed_fields(t) for t in StorageType))
    assert everywhere == set(StorageConfig.model_fields)
    assert allowed_fields(StorageType.HTTP_DATA) == frozenset()


@pytest.mark.parametrize(
    ("payload", "inline", "secret", "plain", "credentials"),
    [
        ({"storage_type": "HttpData"}, False, None, {}, {}),
        (
            s3(**S3_INLINE, url="https://s3.example"),
            True,
            None,
            {"bucket_name": "invoices", "region": "eu-central-1", "url": "https://s3.example"},
            without(S3_INLINE, "bucket_name", "region"),
        ),
        (
            azure(container_name="c", region="r", **SECRET_REF),
            False,
            "storage-credentials",
            {"container_name": "c", "region": "r"},
            {},
        ),
    ],
)
def test_spec_helpers_split_plain_values_from_credentials(
    payload: dict[str, Any],
    inline: bool,
    secret: str | None,
    plain: dict[str, str],
    credentials: dict[str, str],
) -> None:
    spec = ConnectorSpec.model_validate(payload)

    assert spec.credentials_inline() is inline
    assert spec.credentials_secret_name() == secret
    assert spec.non_secret_fields() == plain
    assert spec.inline_credentials() == credentials


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("http://x", True),
        ("https://s3.eu-central-1.amazonaws.com", True),
        ("HTTPS://Storage.Example/path?q=1", True),
        ("http://[::1]:9000/bucket", True),
        ("http://user:password@minio:9000", True),
        ("http://minio:99999", True),
        ("not a url", False),
        ("ftp://x", False),
        ("http://", False),
        ("http:///path", False),
        ("http:x", False),
        ("/absolute/path", False),
        ("http://:80", False),
        ("http://host:port", False),
        ("http://a b", False),
        (" http://x", False),
        ("http://x\n", False),
        ("http://[::1", False),
    ],
)
def test_is_http_url(url: str, valid: bool) -> None:
    assert is_http_url(url) is valid


@pytest.mark.parametrize("name", ["a", "0", "my-connector", "a--b", "1abc", "x" * NAME_MAX_LENGTH])
def test_valid_name(name: str) -> None:
    validate_name(name)


@pytest.mark.parametrize(
    "name",
    ["", "-a", "a-", "A", "a_b", "a.b", "ab\n", "é", "x" * (NAME_MAX_LENGTH + 1)],
)
def test_invalid_name(name: str) -> None:
    with pytest.raises(ValueError, match=r"metadata\.name must be a DNS label") as caught:
        validate_name(name)

    assert str(caught.value) == NAME_MESSAGE


def test_child_names_fit_a_dns_label() -> None:
    assert len("connector-" + "x" * NAME_MAX_LENGTH) == 63


STATUS: dict[str, Any] = {
    "phase": "Running",
    "observedGeneration": 3,
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Running",
            "message": "The Connector is running.",
            "lastTransitionTime": "2026-01-02T03:04:05Z",
            "observedGeneration": 3,
        }
    ],
    "action": {"requested": "start", "accepted": True, "message": "Started."},
    "configHash": "sha256:abc",
    "message": "The Connector is running.",
}


def test_status_round_trips_in_camel_case() -> None:
    status = ConnectorStatus.model_validate({**STATUS, "kopf": {"progress": {}}})

    assert status.phase is Phase.RUNNING
    assert status.conditions[0].last_transition_time == "2026-01-02T03:04:05Z"
    assert status.model_dump(mode="json", by_alias=True, exclude_none=True) == STATUS


def test_status_built_by_field_name_dumps_camel_case() -> None:
    status = ConnectorStatus(phase=Phase.STOPPED, observed_generation=1, config_hash="h")

    assert status.model_dump(mode="json", by_alias=True, exclude_none=True) == {
        "phase": "Stopped",
        "observedGeneration": 1,
        "conditions": [],
        "configHash": "h",
    }


def test_status_refuses_an_unknown_condition_status() -> None:
    condition = {**STATUS["conditions"][0], "status": "Maybe"}

    with pytest.raises(ValidationError, match=r"conditions\.0\.status"):
        ConnectorStatus.model_validate({"conditions": [condition]})


def _body(**overrides: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dataspace.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {
            "name": "demo",
            "namespace": "team-a",
            "uid": "0b1c2d3e-0000-4000-8000-000000000000",
            "generation": 2,
            "resourceVersion": "1234",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {"dataspace.dev/action": "stop"},
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": s3(**S3_INLINE),
        **overrides,
    }


def test_connector_parses_a_raw_kubernetes_object() -> None:
    connector = Connector.model_validate(_body(status=STATUS))

    assert connector.metadata.name == "demo"
    assert connector.metadata.namespace == "team-a"
    assert connector.metadata.generation == 2
    assert connector.metadata.resource_version == "1234"
    assert connector.metadata.annotations == {"dataspace.dev/action": "stop"}
    assert connector.metadata.deletion_timestamp is None
    assert connector.spec.storage_type is StorageType.AMAZON_S3
    assert connector.status.phase is Phase.RUNNING


def test_connector_without_status_gets_an_empty_one() -> None:
    connector = Connector.model_validate(_body())

    assert connector.status == ConnectorStatus()


def test_connector_with_invalid_spec_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"storage_config\.region is required"):
        Connector.model_validate(_body(spec=s3(**without(S3_INLINE, "region"))))


# Values no other text of these tests contains, so that finding one means it leaked.
S3_SECRETS = {
    "username_read": "AKIA-LEAK-7Q2LX",
    "password_read": "leak/Xk29+qLmZpT8vWn3e",
    "username_write": "AKIA-LEAK-5H8JD",
    "password_write": "leak/Pq71+aBcDeF0gHiJk",
}
AZURE_SECRETS = {
    "account_name_read": "leakrdacct4k2",
    "account_key_read": "leakRdKey0mN3bV6cX9zQ1wE4r==",
    "account_name_write": "leakwracct9m7",
    "account_key_write": "leakWrKey7tY2uI5oP8aS1dF4g==",
}
INLINE_SPECS = [
    pytest.param(s3(bucket_name="b", region="r", **S3_SECRETS), S3_SECRETS, id="s3"),
    pytest.param(azure(container_name="c", **AZURE_SECRETS), AZURE_SECRETS, id="azure"),
]


@pytest.mark.parametrize(("spec", "credentials"), INLINE_SPECS)
def test_no_repr_str_or_dump_shows_a_credential(
    spec: dict[str, Any], credentials: dict[str, str]
) -> None:
    connector = Connector.model_validate(_body(spec=spec))
    dumped = connector.model_dump(mode="json")
    shown = [
        repr(connector),
        str(connector),
        f"{connector.spec.storage_config!r} {connector.spec.storage_config}",
        str(connector.model_dump()),
        json.dumps(dumped),
        connector.model_dump_json(),
    ]

    leaks = [
        (text[:40], value) for text in shown for value in credentials.values() if value in text
    ]
    assert leaks == []
    assert {dumped["spec"]["storage_config"][name] for name in credentials} == {"**********"}
    assert connector.spec.inline_credentials() == credentials


def test_every_credential_field_is_masked() -> None:
    names = {name for fields in CREDENTIAL_FIELDS.values() for name in fields}
    config = StorageConfig.model_validate(dict.fromkeys(names, "leak-value"))

    assert set(config.model_dump(mode="json", exclude_none=True).values()) == {"**********"}


@pytest.mark.parametrize(("spec", "credentials"), INLINE_SPECS)
@pytest.mark.parametrize(
    "change",
    [{"region": "r" * 1025}, {"url": "ftp://x"}, {"colour": "blue"}],
    ids=["field-error", "rule-error", "unknown-field"],
)
def test_a_validation_error_quotes_no_credential(
    spec: dict[str, Any], credentials: dict[str, str], change: dict[str, str]
) -> None:
    broken = {**spec, "storage_config": {**spec["storage_config"], **change}}
    texts = []
    for model, body in ((Connector, _body(spec=broken)), (ConnectorSpec, broken)):
        with pytest.raises(ValidationError) as caught:
            model.model_validate(body)
        texts.append(str(caught.value))

    assert [value for text in texts for value in credentials.values() if value in text] == []
    # pydantic shortens what it quotes, so a value cut in two would escape the check above.
    assert [text for text in texts if "input_value" in text] == []


def test_a_too_long_credential_is_not_quoted_in_the_error() -> None:
    secret = "leak-" + "x" * 1100

    with pytest.raises(ValidationError) as in_connector:
        Connector.model_validate(_body(spec=s3(**{**S3_INLINE, "password_read": secret})))
    with pytest.raises(ValidationError) as in_config:
        StorageConfig.model_validate({"password_read": secret})

    assert "storage_config.password_read" in str(in_connector.value)
    assert "leak-" not in str(in_connector.value)
    assert "leak-" not in str(in_config.value)
