"""The platform's REST shapes, mapped to and from Connector resources (pure: models only).

A payload is checked by the same rules, with the same messages, as the API server's admission
(the CRD is generated from the same models), so a client gets one error per field whatever
door it uses; no message quotes a value (the payload holds credentials).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from connector_operator.models import (
    API_VERSION,
    KIND,
    NAME_MESSAGE,
    SPEC_RULES,
    ConnectorSpec,
    Phase,
    StorageConfig,
    StorageType,
    validate_name,
)

# What the platform's clients read in `status`.
PLATFORM_STATUS = {
    Phase.STARTING: "STARTING",
    Phase.RUNNING: "RUNNING",
    Phase.RESTARTING: "RESTARTING",
    Phase.STOPPING: "STOPPING",
    Phase.STOPPED: "STOPPED",
    Phase.FAILED: "FAILED",
}


@dataclass(frozen=True)
class FieldError:
    field: str  # a dotted path in the payload: storage_config.bucket_name, or name
    message: str


class PayloadError(ValueError):
    """A payload (or name) the platform refuses: 422 with one error per field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def _pydantic_errors(error: ValidationError, prefix: str) -> list[FieldError]:
    return [
        FieldError(".".join([prefix, *(str(p) for p in e["loc"])]).strip("."), e["msg"])
        for e in error.errors(include_input=False, include_url=False)
    ]


def spec_of(payload: object) -> ConnectorSpec:
    """The Connector spec a payload asks for; PayloadError names every field that is wrong."""
    if not isinstance(payload, Mapping):
        raise PayloadError([FieldError("body", "must be a JSON object")])
    errors: list[FieldError] = []
    unknown = sorted(set(payload) - {"storage_type", "storage_config"})
    errors += [FieldError(k, "is not a field of the payload") for k in unknown]
    try:
        storage_type = StorageType(str(payload.get("storage_type")))
    except ValueError:
        allowed = ", ".join(t.value for t in StorageType)
        errors.append(FieldError("storage_type", f"must be one of {allowed}"))
        raise PayloadError(errors) from None
    try:
        config = StorageConfig.model_validate(payload.get("storage_config") or {})
    except ValidationError as error:
        raise PayloadError(errors + _pydantic_errors(error, "storage_config")) from None
    errors += [
        FieldError(rule.field_path.lstrip("."), rule.message_for(storage_type))
        for rule in SPEC_RULES
        if not rule.holds(storage_type, config)
    ]
    if errors:
        raise PayloadError(errors)
    return ConnectorSpec(storage_type=storage_type, storage_config=config)


def manifest(name: str, payload: object) -> dict[str, Any]:
    """The Connector a POST or PUT of `payload` to /connectors/`name` makes."""
    try:
        validate_name(name)
    except ValueError:
        raise PayloadError([FieldError("name", NAME_MESSAGE)]) from None
    if not isinstance(payload, Mapping):
        raise PayloadError([FieldError("body", "must be a JSON object")])
    spec_of(payload)  # the payload is valid: it becomes the spec verbatim
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {
            "storage_type": payload["storage_type"],
            "storage_config": dict(payload.get("storage_config") or {}),
        },
    }


def status_of(body: Mapping[str, Any]) -> str:
    """The platform's word for where a Connector stands (STARTING until first reconciled)."""
    phase = (body.get("status") or {}).get("phase")
    try:
        return PLATFORM_STATUS[Phase(str(phase))]
    except ValueError:
        return PLATFORM_STATUS[Phase.STARTING]


def entry(body: Mapping[str, Any], bpn: str | None = None) -> dict[str, Any]:
    """One Connector as the platform's dashboard reads it: never a credential."""
    spec = ConnectorSpec.model_validate(body.get("spec") or {})
    config = spec.non_secret_fields()
    shown: dict[str, Any] = {"status": status_of(body), "storageType": spec.storage_type.value}
    if bpn is not None:
        shown["bpn"] = bpn
    for field, key in (("bucket_name", "bucketName"), ("region", "region"),
                       ("container_name", "azureContainerName")):  # fmt: skip
        if field in config:
            shown[key] = config[field]
    return shown
