"""The operator's configuration, parsed from environment variables (pure: stdlib only)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector_operator.edc import settings as edc_settings
from connector_operator.edc.settings import EdcSettings, EdcSettingsError
from connector_operator.storage.settings import Mode, StorageCheckSettings

DEFAULT_IMAGE = "ghcr.io/dataspace-dev/connector:0.1.0"
PREFIX = "CONNECTOR_OPERATOR_"
PORT_NAME = r"[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?"  # an IANA service name, as Kubernetes wants
DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN = rf"{DNS_LABEL}(\.{DNS_LABEL})*"  # what Kubernetes wants of a Secret's name


class ConfigError(ValueError):
    """A configuration variable has a value the operator cannot use; the message names it."""


@dataclass(frozen=True)
class Port:
    name: str
    number: int


@dataclass(frozen=True)
class Probe:
    """An HTTP probe on one of the configured ports."""

    path: str
    port: str
    initial_delay_seconds: int = 5
    period_seconds: int = 10


PROFILES = ("edc", "generic")


@dataclass(frozen=True)
class OperatorConfig:
    edc: EdcSettings | None = None  # the edc profile's settings; None: the generic profile
    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    ports: tuple[Port, ...] = ()
    resources: Mapping[str, Any] = field(
        default_factory=lambda: {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        }
    )
    readiness_probe: Probe | None = None
    liveness_probe: Probe | None = None
    progress_deadline_seconds: int = 600
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    log_level: str = "INFO"
    log_format: str = "json"
    metrics_port: int = 8080
    health_port: int = 8081
    leader_election: bool = True
    lease_name: str = "connector-operator"
    lease_namespace: str = "connector-operator-system"
    lease_duration_seconds: int = 15
    # A leader that has not renewed for this long stops writing and exits: shorter than the
    # lease duration, so it has stopped before a standby may take the Lease.
    renew_deadline_seconds: int = 10
    retry_period_seconds: int = 2
    resync_seconds: int = 600  # every Connector is looked at again this often (jittered)
    workers: int = 4
    watch_grace_seconds: int = 60
    # The Secret, in lease_namespace (the operator's own), that holds the key of config hashes.
    hash_key_secret: str = "connector-operator-hash-key"  # noqa: S105 -- a name, not a secret
    storage_check: StorageCheckSettings = field(default_factory=StorageCheckSettings)

    @property
    def profile(self) -> str:
        return "generic" if self.edc is None else "edc"

    def fingerprint(self) -> dict[str, Any]:
        """What of this configuration shapes a Connector's pod (part of its config hash)."""
        return {
            "image": self.image,
            "imagePullPolicy": self.image_pull_policy,
            "ports": [[p.name, p.number] for p in self.ports],
            "resources": self.resources,
            "readiness": _probe_key(self.readiness_probe),
            "liveness": _probe_key(self.liveness_probe),
        }


def _probe_key(probe: Probe | None) -> list[Any] | None:
    if probe is None:
        return None
    return [probe.path, probe.port, probe.initial_delay_seconds, probe.period_seconds]


def _int(
    env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = env.get(PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{PREFIX}{name}={raw!r} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{PREFIX}{name}={raw!r} must be at most {maximum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(PREFIX + name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{PREFIX}{name}={raw!r} must be true or false")


def _ports(raw: str) -> tuple[Port, ...]:
    """`http=8080,management=8181` -> ports named for the Service and the probes."""
    ports: list[Port] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, number = item.partition("=")
        name, number = name.strip().lower(), number.strip()
        valid_name = re.fullmatch(PORT_NAME, name) is not None and not name.isdigit()
        if not sep or not number.isdigit() or not 0 < int(number) < 65536 or not valid_name:
            raise ConfigError(
                f"{PREFIX}PORTS item {item!r} must be name=number, e.g. http=8080: a name of at "
                "most 15 lowercase letters, digits and '-' with a letter, a port from 1 to 65535"
            )
        ports.append(Port(name, int(number)))
    if len({p.name for p in ports}) != len(ports):
        raise ConfigError(f"{PREFIX}PORTS names a port twice: {raw!r}")
    return tuple(ports)


def _probe(env: Mapping[str, str], name: str, ports: tuple[Port, ...]) -> Probe | None:
    """`/health` on the first port, or `/health@management` on a named one."""
    raw = env.get(PREFIX + name, "").strip()
    if not raw:
        return None
    path, _, port = raw.partition("@")
    if not path.startswith("/"):
        raise ConfigError(f"{PREFIX}{name}={raw!r}: the path must start with '/'")
    names = [p.name for p in ports]
    if not names:
        raise ConfigError(f"{PREFIX}{name} needs {PREFIX}PORTS to name the port it probes")
    port = port.lower() or names[0]
    if port not in names:
        raise ConfigError(f"{PREFIX}{name}={raw!r}: port {port!r} is not in {PREFIX}PORTS")
    return Probe(path=path, port=port)


def _dns_subdomain(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(PREFIX + name) or default
    if len(raw) > 253 or re.fullmatch(DNS_SUBDOMAIN, raw) is None:
        raise ConfigError(
            f"{PREFIX}{name}={raw!r} must be a DNS subdomain, as a Secret's name: at most 253 "
            "lowercase letters, digits, '-' and '.', each part between dots starting and ending "
            "with a letter or digit"
        )
    return raw


def _lease_timing(env: Mapping[str, str], defaults: OperatorConfig) -> tuple[int, int, int]:
    """(lease duration, renew deadline, retry period), each shorter than the one before."""
    duration = _int(env, "LEASE_DURATION_SECONDS", defaults.lease_duration_seconds, minimum=2)
    deadline = _int(
        env, "RENEW_DEADLINE_SECONDS", min(defaults.renew_deadline_seconds, duration - 1), 1
    )
    retry = _int(env, "RETRY_PERIOD_SECONDS", min(defaults.retry_period_seconds, deadline), 1)
    if deadline >= duration:
        raise ConfigError(
            f"{PREFIX}RENEW_DEADLINE_SECONDS={deadline} must be shorter than "
            f"{PREFIX}LEASE_DURATION_SECONDS={duration}: a leader must stop before a standby "
            "may take over"
        )
    if retry > deadline:
        raise ConfigError(
            f"{PREFIX}RETRY_PERIOD_SECONDS={retry} must not exceed "
            f"{PREFIX}RENEW_DEADLINE_SECONDS={deadline}"
        )
    return duration, deadline, retry


def _resources(raw: str | None) -> Mapping[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{PREFIX}RESOURCES is not JSON: {error}") from None
    if not isinstance(value, dict) or not set(value) <= {"requests", "limits"}:
        raise ConfigError(
            f'{PREFIX}RESOURCES must look like {{"requests": {{...}}, "limits": {{...}}}}'
        )
    return value


def _storage_check(env: Mapping[str, str]) -> StorageCheckSettings:
    defaults = StorageCheckSettings()
    mode = (env.get(PREFIX + "STORAGE_CHECK") or defaults.mode.value).strip().lower()
    if mode not in {m.value for m in Mode}:
        raise ConfigError(
            f"{PREFIX}STORAGE_CHECK={mode!r} must be one of {', '.join(m.value for m in Mode)}"
        )
    return StorageCheckSettings(
        mode=Mode(mode),
        interval_seconds=_int(
            env, "STORAGE_CHECK_INTERVAL_SECONDS", defaults.interval_seconds, minimum=1
        ),
        write=_bool(env, "STORAGE_CHECK_WRITE", defaults.write),
        concurrency=_int(env, "STORAGE_CHECK_CONCURRENCY", defaults.concurrency, minimum=1),
        timeout_seconds=_int(
            env, "STORAGE_CHECK_TIMEOUT_SECONDS", defaults.timeout_seconds, minimum=1, maximum=120
        ),
    )


def from_env(env: Mapping[str, str]) -> OperatorConfig:
    """Reads every `CONNECTOR_OPERATOR_*` variable; unset ones keep their defaults."""
    defaults = OperatorConfig()
    profile = (env.get(PREFIX + "PROFILE") or "edc").strip().lower()
    if profile not in PROFILES:
        raise ConfigError(f"{PREFIX}PROFILE={profile!r} must be one of {', '.join(PROFILES)}")
    try:
        edc = edc_settings.from_env(env) if profile == "edc" else None
    except EdcSettingsError as error:
        raise ConfigError(str(error)) from None
    ports = _ports(env.get(PREFIX + "PORTS", ""))
    log_format = (env.get(PREFIX + "LOG_FORMAT") or defaults.log_format).lower()
    if log_format not in ("json", "text"):
        raise ConfigError(f"{PREFIX}LOG_FORMAT={log_format!r} must be json or text")
    log_level = (env.get(PREFIX + "LOG_LEVEL") or defaults.log_level).upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{PREFIX}LOG_LEVEL={log_level!r} must be DEBUG, INFO, WARNING or ERROR")
    namespaces = tuple(
        ns.strip() for ns in env.get(PREFIX + "NAMESPACES", "").split(",") if ns.strip()
    )
    metrics_port = _int(env, "METRICS_PORT", defaults.metrics_port, maximum=65535)
    health_port = _int(env, "HEALTH_PORT", defaults.health_port, maximum=65535)
    if metrics_port and metrics_port == health_port:
        raise ConfigError(f"{PREFIX}METRICS_PORT and {PREFIX}HEALTH_PORT must differ")
    lease = _lease_timing(env, defaults)
    return OperatorConfig(
        edc=edc,
        image=env.get(PREFIX + "IMAGE") or defaults.image,
        image_pull_policy=env.get(PREFIX + "IMAGE_PULL_POLICY") or defaults.image_pull_policy,
        ports=ports,
        resources=_resources(env.get(PREFIX + "RESOURCES")) or defaults.resources,
        readiness_probe=_probe(env, "READINESS_PROBE", ports),
        liveness_probe=_probe(env, "LIVENESS_PROBE", ports),
        progress_deadline_seconds=_int(env, "PROGRESS_DEADLINE_SECONDS", 600, minimum=1),
        namespaces=namespaces,
        log_level=log_level,
        log_format=log_format,
        metrics_port=metrics_port,
        health_port=health_port,
        leader_election=_bool(env, "LEADER_ELECTION", defaults.leader_election),
        lease_name=env.get(PREFIX + "LEASE_NAME") or defaults.lease_name,
        lease_namespace=env.get(PREFIX + "LEASE_NAMESPACE") or defaults.lease_namespace,
        lease_duration_seconds=lease[0],
        renew_deadline_seconds=lease[1],
        retry_period_seconds=lease[2],
        resync_seconds=_int(env, "RESYNC_SECONDS", defaults.resync_seconds, minimum=10),
        workers=_int(env, "WORKERS", defaults.workers, minimum=1),
        watch_grace_seconds=_int(
            env, "WATCH_GRACE_SECONDS", defaults.watch_grace_seconds, minimum=1
        ),
        hash_key_secret=_dns_subdomain(env, "HASH_KEY_SECRET", defaults.hash_key_secret),
        storage_check=_storage_check(env),
    )
