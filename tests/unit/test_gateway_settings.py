"""Unit tests of the gateway's settings and its OpenAPI document."""

from __future__ import annotations

import pytest

from connector_operator.gateway.openapi import OPERATIONS, document
from connector_operator.gateway.settings import GatewaySettingsError, from_env


def test_defaults_serve_at_the_root_for_service_accounts() -> None:
    settings = from_env({})
    assert settings.prefix == "" and settings.port == 8443 and settings.edc_profile
    assert settings.tenancy.namespace_of("system:serviceaccount:a:b", ()) == "a"


def test_every_setting_is_read() -> None:
    settings = from_env({
        "CONNECTOR_GATEWAY_PREFIX": "/api/v1/",
        "CONNECTOR_GATEWAY_PORT": "9000",
        "CONNECTOR_GATEWAY_TENANCY": '{"groups": {"oidc:team-b": "team-b"}}',
        "CONNECTOR_GATEWAY_AUDIENCES": "connector-gateway, other",
        "CONNECTOR_GATEWAY_MAX_BODY_BYTES": "2048",
        "CONNECTOR_GATEWAY_STREAM_RECHECK_SECONDS": "1.5",
        "CONNECTOR_OPERATOR_PROFILE": "generic",
        "CONNECTOR_OPERATOR_NAMESPACES": "a,b",
    })  # fmt: skip
    assert settings.prefix == "/api/v1" and settings.port == 9000
    assert settings.tenancy.namespace_of("oidc:carol", ["oidc:team-b"]) == "team-b"
    assert settings.audiences == ("connector-gateway", "other")
    assert settings.max_body_bytes == 2048 and settings.stream_recheck_seconds == 1.5
    assert not settings.edc_profile and settings.namespaces == ("a", "b")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONNECTOR_GATEWAY_PREFIX", "api v1"),
        ("CONNECTOR_GATEWAY_PORT", "0"),
        ("CONNECTOR_GATEWAY_PORT", "http"),
        ("CONNECTOR_GATEWAY_TENANCY", "{"),
        ("CONNECTOR_GATEWAY_TENANCY", '{"users": {"alice": "Not A Namespace"}}'),
        ("CONNECTOR_GATEWAY_MAX_BODY_BYTES", "10"),
        ("CONNECTOR_GATEWAY_STREAM_RECHECK_SECONDS", "-1"),
        ("CONNECTOR_GATEWAY_TLS_CERT_FILE", "/tls.crt"),
        ("CONNECTOR_GATEWAY_LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_setting_is_named(name: str, value: str) -> None:
    with pytest.raises(GatewaySettingsError, match=name):
        from_env({name: value})


def test_the_document_has_every_operation_under_the_prefix_and_every_reference_resolves() -> None:
    doc = document("/api/v1", "1.0")
    served = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert served == {(op.method, "/api/v1" + op.path) for op in OPERATIONS}
    text = str(doc)
    schemas = doc["components"]["schemas"]
    for name in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in schemas, name
    assert "writeOnly" in str(schemas["StorageConfig"])  # credentials are write-only
