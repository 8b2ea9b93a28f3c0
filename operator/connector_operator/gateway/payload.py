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

from connector_operator.gateway.schemas import ConnectorEntry, PlatformStatus
from connector_operator.models import (
    API_VERSION,
    KIND,
    NAME_MESSAGE,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    SPEC_RULES,
    ConnectorSpec,
    Phase,
    StorageConfig,
    StorageType,
    validate_name,
)

# What the platform's clients read in `status`.
PLATFORM_STATUS = {
    Phase.STARTING: PlatformStatus.STARTING,
    Phase.RUNNING: PlatformStatus.RUNNING,
    Phase.RESTARTING: PlatformStatus.RESTARTING,
    Phase.STOPPING: PlatformStatus.STOPPING,
    Phase.STOPPED: PlatformStatus.STOPPED,
    Phase.FAILED: PlatformStatus.FAILED,
}
# The storage_config fields that are not credentials, of any storage type.
SHOWN_FIELDS = frozenset(f for t in StorageType for f in REQUIRED_FIELDS[t] + OPTIONAL_FIELDS[t])


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


def check_name(name: str) -> None:
    """PayloadError unless `name` is a valid Connector name (admission's rule and message)."""
    try:
        validate_name(name)
    except ValueError:
        raise PayloadError([FieldError("name", NAME_MESSAGE)]) from None


def manifest(name: str, payload: object) -> dict[str, Any]:
    """The Connector a POST or PUT of `payload` to /connectors/`name` makes."""
    check_name(name)
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


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the gateway keeps of a Connector: enough for its entry, never a credential (the
    spec holds them when given inline). Idempotent, as a cache's transform must be."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    config = spec.get("storage_config") or {}
    return {
        "apiVersion": body.get("apiVersion", API_VERSION),
        "kind": body.get("kind", KIND),
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "deletionTimestamp")
            if k in meta
        },
        "spec": {
            "storage_type": spec.get("storage_type"),
            "storage_config": {k: v for k, v in config.items() if k in SHOWN_FIELDS},
        },
        "status": {k: status[k] for k in ("phase", "message") if k in status},
    }


def is_deleting(body: Mapping[str, Any]) -> bool:
    """Deleted, and held by a finalizer (the operator sets none; others may)."""
    return bool((body.get("metadata") or {}).get("deletionTimestamp"))


def status_of(body: Mapping[str, Any]) -> PlatformStatus:
    """The platform's word for where a Connector stands (STARTING until first reconciled,
    STOPPING once deleted while a finalizer holds it)."""
    if is_deleting(body):
        return PlatformStatus.STOPPING
    phase = (body.get("status") or {}).get("phase")
    try:
        return PLATFORM_STATUS[Phase(str(phase))]
    except ValueError:
        return PlatformStatus.STARTING


def entry(body: Mapping[str, Any], bpn: str | None = None) -> ConnectorEntry:
    """One Connector as the platform's dashboard reads it: never a credential."""
    spec = body.get("spec") or {}
    config = spec.get("storage_config") or {}
    return ConnectorEntry(
        status=status_of(body),
        storage_type=StorageType(str(spec.get("storage_type"))),
        bpn=bpn,
        bucket_name=config.get("bucket_name"),
        region=config.get("region"),
        azure_container_name=config.get("container_name"),
        message=(body.get("status") or {}).get("message"),
    )
