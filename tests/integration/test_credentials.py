"""Credentials: both modes, Secret rotation, and no credential value anywhere but Secrets."""

from __future__ import annotations

import base64
import functools
import hashlib
import json

import pytest
from kubernetes import client

from connector_operator import resources
from connector_operator.config import from_env
from connector_operator.models import Connector
from tests.integration.conftest import (
    Connectors,
    Operator,
    connector,
    s3,
    secret_manifest,
)
from tests.support import eventually

pytestmark = pytest.mark.cluster

REF_CREDENTIALS = {
    "username_read": "REFUSER-READ-77aa",
    "password_read": "REFPASS-READ-88bb",
    "username_write": "REFUSER-WRITE-99cc",
    "password_write": "REFPASS-WRITE-00dd",
}


def s3_ref(name: str, secret: str) -> dict[str, object]:
    return connector(
        name, "AmazonS3", bucket_name="orders", region="eu-central-1",
        credentials_secret_ref={"name": secret},
    )  # fmt: skip


def _config_hash(connectors: Connectors, name: str) -> str:
    deployment = connectors.deployment(name)
    assert deployment is not None
    return str(deployment.spec.template.metadata.annotations["dataspace.dev/config-hash"])


def test_reference_mode_waits_for_the_secret_then_runs(
    operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(s3_ref("refd", "refd-creds"))

    def stalled() -> dict[str, object] | None:
        status = connectors.status("refd")
        stalled = {c["type"]: c for c in status.get("conditions", [])}.get("Stalled")
        return stalled if stalled and stalled["reason"] == "SecretNotFound" else None

    condition = eventually(stalled, what="Stalled SecretNotFound")
    assert "refd-creds" in str(condition["message"])
    assert connectors.deployment("refd") is None, "nothing runs without its credentials"
    connectors.wait_event("refd", "Warning", "SecretNotFound")

    connectors.apply(secret_manifest("refd-creds", REF_CREDENTIALS))
    status = connectors.wait_phase("refd", "Running")
    assert [c["type"] for c in status["conditions"]] == ["Ready"]
    deployment = connectors.deployment("refd")
    assert deployment is not None
    env = {e.name: e for e in deployment.spec.template.spec.containers[0].env}
    for key in REF_CREDENTIALS:
        ref = env[f"CONNECTOR_STORAGE_{key.upper()}"].value_from.secret_key_ref
        assert (ref.name, ref.key) == ("refd-creds", key)
    # The user's Secret is theirs: the operator neither copies nor owns it.
    names = [
        s.metadata.name for s in connectors.core.list_namespaced_secret(connectors.namespace).items
    ]
    assert "connector-refd" not in names


def test_rotating_the_referenced_secret_rolls_the_pod(
    operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(secret_manifest("rot-creds", REF_CREDENTIALS))
    connectors.apply(s3_ref("rot", "rot-creds"))
    connectors.wait_phase("rot", "Running")
    before_hash = _config_hash(connectors, "rot")
    old_pods = {p.metadata.name for p in connectors.pods("rot")}
    connectors.apply(secret_manifest("rot-creds", {**REF_CREDENTIALS, "password_read": "NEW-9z"}))
    eventually(lambda: _config_hash(connectors, "rot") != before_hash, what="the hash to change")
    eventually(
        lambda: {p.metadata.name for p in connectors.pods("rot")} - old_pods, what="a new pod"
    )
    connectors.wait_phase("rot", "Running")


def test_inline_credentials_live_only_in_the_operators_secret(
    operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(s3("inl"))
    connectors.wait_phase("inl", "Running")
    deployment = connectors.deployment("inl")
    assert deployment is not None
    env = deployment.spec.template.spec.containers[0].env
    literal = {e.name: e.value for e in env if e.value is not None}
    assert literal == {
        "CONNECTOR_NAME": "inl",
        "CONNECTOR_STORAGE_TYPE": "AmazonS3",
        "CONNECTOR_STORAGE_BUCKET_NAME": "orders",
        "CONNECTOR_STORAGE_REGION": "eu-central-1",
    }
    refs = {e.name: e.value_from.secret_key_ref.name for e in env if e.value_from}
    assert set(refs.values()) == {"connector-inl"}
    assert len(refs) == 4


SECRET_VALUES = [
    "pw-read-Zq81xT0w",  # from S3_CREDENTIALS (inline)
    "pw-write-Lm55vR3k",
    "AZKEY-READ-31f0e9",
    "AZKEY-WRITE-c4d21b",
    "REFPASS-READ-88bb",
    "REFPASS-WRITE-00dd",
]


def test_no_credential_value_leaks(
    operator: Operator, connectors: Connectors, api: client.ApiClient
) -> None:
    # Server-side apply: client-side `kubectl apply` would itself copy inline credentials into
    # its last-applied-configuration annotation (the README says so); here every annotation
    # found is one the operator, Kopf or the API server wrote.
    apply = functools.partial(connectors.apply, server_side=True)
    apply(s3("leak-s3"))
    apply(
        connector(
            "leak-az", "AzureStorage", container_name="c",
            account_name_read="acct", account_key_read="AZKEY-READ-31f0e9",
            account_name_write="acct", account_key_write="AZKEY-WRITE-c4d21b",
        )
    )  # fmt: skip
    apply(secret_manifest("leak-creds", REF_CREDENTIALS))
    apply(s3_ref("leak-ref", "leak-creds"))
    for name in ("leak-s3", "leak-az", "leak-ref"):
        connectors.wait_phase(name, "Running")
    # A lifecycle's worth of logs, events and status: edit, stop, fail, refused start, bad action.
    apply(s3("leak-s3", region="us-east-1"))
    connectors.wait_phase("leak-s3", "Running")
    for name, action in (("leak-az", "stop"), ("leak-ref", "fail")):
        connectors.annotate(name, action)
    connectors.wait_phase("leak-az", "Stopped")
    connectors.wait_phase("leak-ref", "Failed")
    connectors.annotate("leak-ref", "start")
    connectors.annotate("leak-s3", "bogus")
    eventually(lambda: connectors.status("leak-s3").get("action", {}).get("requested") == "bogus")

    ns = connectors.namespace
    places = {
        "operator log (DEBUG)": operator.logs(),
        "metrics": operator.metrics(),
        "events": json.dumps(
            api.sanitize_for_serialization(connectors.core.list_namespaced_event(ns))
        ),
    }
    for name in ("leak-s3", "leak-az", "leak-ref"):
        body = connectors.get(name)
        places[f"{name} status"] = json.dumps(body.get("status"))
        places[f"{name} annotations"] = json.dumps(body["metadata"].get("annotations"))
        deployment = api.sanitize_for_serialization(connectors.deployment(name))
        places[f"{name} Deployment"] = json.dumps(deployment)
    for kind, items in (
        ("Secret", connectors.core.list_namespaced_secret(ns).items),
        ("Service", connectors.core.list_namespaced_service(ns).items),
        ("Pod", connectors.core.list_namespaced_pod(ns).items),
    ):
        for item in items:
            places[f"{kind} {item.metadata.name} annotations"] = json.dumps(
                item.metadata.annotations
            )
    assert "reconciled" in places["operator log (DEBUG)"], "the log must be at DEBUG level"
    for where, text in places.items():
        for value in SECRET_VALUES:
            encoded = base64.b64encode(value.encode()).decode()
            assert value not in text, f"credential {value!r} found in {where}"
            assert encoded not in text, f"credential {value!r} (base64) found in {where}"


def test_the_config_hash_cannot_be_recomputed_without_the_installations_key(
    operator: Operator, connectors: Connectors
) -> None:
    """Anyone who may read pods reads the config hash; knowing the spec and guessing the
    credentials must not be enough to confirm a guess: only the key in the operator's Secret
    reproduces it."""
    connectors.apply(s3("keyed"), server_side=True)
    connectors.wait_phase("keyed", "Running")
    seen = _config_hash(connectors, "keyed")
    assert connectors.status("keyed")["configHash"] == seen

    secret = connectors.core.read_namespaced_secret(
        "connector-operator-hash-key", "connector-operator-system"
    )
    key = base64.b64decode(secret.data["key"])
    model = Connector.model_validate(connectors.get("keyed"))
    digest = resources.credentials_digest(model.spec.inline_credentials())
    settings = from_env(
        {"CONNECTOR_OPERATOR_PORTS": "http=8080", "CONNECTOR_OPERATOR_PROFILE": "generic"}
    )  # as the fixture runs it
    assert resources.config_hash(model, digest, settings, key) == seen
    assert resources.config_hash(model, digest, settings, bytes(len(key))) != seen
    unkeyed = hashlib.sha256(
        json.dumps(
            {
                "storageType": "AmazonS3",
                "config": model.spec.non_secret_fields(),
                "credentialsSecret": "connector-keyed",
                "credentials": digest,
                "operator": settings.fingerprint(),
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
    ).hexdigest()[:32]
    assert unkeyed != seen
