"""The gateway's configuration, parsed from CONNECTOR_GATEWAY_* variables (pure: stdlib only)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from connector_operator.gateway import tenancy
from connector_operator.gateway.tenancy import Tenancy, TenancyError

PREFIX = "CONNECTOR_GATEWAY_"
MOUNT = re.compile(r"(/[A-Za-z0-9._~-]+)*")


class GatewaySettingsError(ValueError):
    """A CONNECTOR_GATEWAY_* variable has a value the gateway cannot use; the message names it."""


@dataclass(frozen=True)
class GatewaySettings:
    host: str = "0.0.0.0"  # noqa: S104 -- in a pod the gateway serves its Service
    port: int = 8443
    # The API's mount point: "" serves /connectors, "/api/v1" serves /api/v1/connectors.
    prefix: str = ""
    tenancy: Tenancy = field(default_factory=Tenancy)
    # TokenReview audiences a token must carry; empty: the API server's own audiences.
    audiences: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024  # a payload is well under 4 KiB
    # A live-update stream checks its caller's token and permission again this often, and ends
    # when either is gone: a revoked RoleBinding closes open streams too.
    stream_recheck_seconds: float = 60.0
    stream_keepalive_seconds: float = 15.0
    tls_cert_file: str | None = None  # both set: HTTPS (bearer tokens must not travel in clear)
    tls_key_file: str | None = None
    namespaces: tuple[str, ...] = ()  # the operator's scope: empty means all namespaces
    edc_profile: bool = True  # entries carry the BPN the edc runtime is given
    log_level: str = "INFO"


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(PREFIX + name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise GatewaySettingsError(f"{PREFIX}{name} must be an integer from {low} to {high}")
    return int(raw)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise GatewaySettingsError(f"{PREFIX}{name} must be a number of seconds from 0 to 3600")
    return value


def _words(raw: str | None) -> tuple[str, ...]:
    return tuple(w for w in (raw or "").replace(",", " ").split() if w)


def from_env(env: Mapping[str, str]) -> GatewaySettings:
    """Settings from the environment; GatewaySettingsError names the first bad variable."""
    prefix = env.get(PREFIX + "PREFIX", "").rstrip("/")
    if MOUNT.fullmatch(prefix) is None:
        raise GatewaySettingsError(f"{PREFIX}PREFIX must be a path such as /api/v1")
    try:
        mapping = tenancy.parse(env.get(PREFIX + "TENANCY", ""))
    except TenancyError as error:
        raise GatewaySettingsError(f"{PREFIX}TENANCY: {error}") from None
    cert, key = env.get(PREFIX + "TLS_CERT_FILE") or None, env.get(PREFIX + "TLS_KEY_FILE") or None
    if (cert is None) != (key is None):
        raise GatewaySettingsError(f"{PREFIX}TLS_CERT_FILE and {PREFIX}TLS_KEY_FILE go together")
    profile = (env.get("CONNECTOR_OPERATOR_PROFILE") or "edc").strip().lower()
    if profile not in ("edc", "generic"):
        raise GatewaySettingsError("CONNECTOR_OPERATOR_PROFILE must be edc or generic")
    level = env.get(PREFIX + "LOG_LEVEL", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise GatewaySettingsError(f"{PREFIX}LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    return GatewaySettings(
        host=env.get(PREFIX + "HOST", GatewaySettings.host),
        port=_int(env, "PORT", GatewaySettings.port, 1, 65535),
        prefix=prefix,
        tenancy=mapping,
        audiences=_words(env.get(PREFIX + "AUDIENCES")),
        max_body_bytes=_int(env, "MAX_BODY_BYTES", GatewaySettings.max_body_bytes, 1024, 1 << 20),
        stream_recheck_seconds=_seconds(
            env, "STREAM_RECHECK_SECONDS", GatewaySettings.stream_recheck_seconds
        ),
        stream_keepalive_seconds=_seconds(
            env, "STREAM_KEEPALIVE_SECONDS", GatewaySettings.stream_keepalive_seconds
        ),
        tls_cert_file=cert,
        tls_key_file=key,
        namespaces=_words(env.get("CONNECTOR_OPERATOR_NAMESPACES")),
        edc_profile=profile == "edc",
        log_level=level,
    )
