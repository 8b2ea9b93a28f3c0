"""Property-based tests of the gateway against its own served OpenAPI document (schemathesis):
whatever a client sends that the document allows, or nearly allows, the gateway never answers
5xx, and every answer matches the document (status code, content type, schema)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.gateway import Gateway, Tenant

pytestmark = pytest.mark.cluster

CHECKS: list[Any] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,  # every operation answers 401 without the token
]


def test_the_served_document_holds_for_every_answer(
    gateway: Gateway, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    made = gateway.call("POST", "/connectors/orders", a.editor,
                        {"storage_type": "HttpData", "storage_config": {}})  # fmt: skip
    assert made.status == 201, made
    base = f"http://127.0.0.1:{gateway.port}"
    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
    tried = []
    for result in schema.get_all_operations():
        operation = result.ok()
        # The live-update stream never ends by itself; the lifecycle test reads it.
        if operation.definition.raw.get("operationId") == "watchConnectors":
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)  # fmt: skip
            def holds(case: Any) -> None:
                case.call_and_validate(
                    base_url=base, headers={"Authorization": f"Bearer {a.editor}"}, checks=CHECKS
                )

            holds()
            tried.append((operation.label, mode.value))
    assert len(tried) == 2 * 11, tried  # every operation but the stream, both ways
