"""The installation-wide settings of the `edc` profile, parsed from `CONNECTOR_OPERATOR_EDC_*`
environment variables; every error names its variable (pure: stdlib only)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from connector_operator.edc.table import DEFAULT_RELEASE, RELEASES, Release

PREFIX = "CONNECTOR_OPERATOR_EDC_"
HOST = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?"
SECRET_NAME = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"  # noqa: S105
CLIENT_ID_FIELDS = ("name", "namespace", "bpn", "did")
PER_CONNECTOR = ("schema", "database")
REQUIRED = ("PUBLIC_HOST", "STS_TOKEN_URL", "TRUSTED_ISSUERS", "BDRS_URL", "DATASOURCE_URL",
            "VAULT_URL")  # fmt: skip


class EdcSettingsError(ValueError):
    """An `edc` setting is missing or has a value the operator cannot use."""


@dataclass(frozen=True)
class EdcSettings:
    release: Release
    controlplane_image: str
    dataplane_image: str
    catalog: bool  # whether the control-plane image has the catalog API
    public_host: str
    ingress_class: str | None
    ingress_tls_secret: str | None  # a Secret of the Connector's namespace with the host's cert
    sts_token_url: str
    sts_client_id: str  # a template over CLIENT_ID_FIELDS
    sts_client_secret_alias: str
    trusted_issuers: tuple[str, ...]
    bdrs_url: str
    datasource_url: str  # jdbc:postgresql://host:port/database
    datasource_per_connector: str  # "schema" or "database"
    datasource_secret: str  # in the operator's namespace: keys `user` and `password`
    vault_url: str
    vault_token_secret: str  # in the operator's namespace: key `token`
    vault_folder: str  # each Connector's folder is <vault_folder>/<namespace>/<name>
    vault_secret_path: str  # the KV v2 mount, as EDC wants it: /v1/<mount>


def _get(env: Mapping[str, str], name: str) -> str:
    return env.get(PREFIX + name, "").strip()


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    raw = _get(env, name)
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not parts.netloc:
        raise EdcSettingsError(
            f"{PREFIX}{name}={raw!r} must be an absolute {' or '.join(schemes)} URL"
        )
    return raw.rstrip("/")


def _secret_name(env: Mapping[str, str], name: str, default: str) -> str:
    raw = _get(env, name) or default
    if len(raw) > 253 or re.fullmatch(SECRET_NAME, raw) is None:
        raise EdcSettingsError(f"{PREFIX}{name}={raw!r} must be the name of a Secret")
    return raw


def _optional_secret_name(env: Mapping[str, str], name: str) -> str | None:
    return _secret_name(env, name, "") if _get(env, name) else None


def _datasource(env: Mapping[str, str]) -> str:
    raw = _get(env, "DATASOURCE_URL")
    rest = raw.removeprefix("jdbc:")
    parts = urlsplit(rest)
    database = parts.path.strip("/")
    if (
        not raw.startswith("jdbc:postgresql://")
        or not parts.hostname
        or parts.query
        or not database
    ):
        raise EdcSettingsError(
            f"{PREFIX}DATASOURCE_URL={raw!r} must look like jdbc:postgresql://host:5432/database "
            "(no parameters: the operator adds the Connector's schema)"
        )
    return raw


def _client_id(env: Mapping[str, str]) -> str:
    raw = _get(env, "STS_CLIENT_ID") or "{bpn}"
    try:
        raw.format(**dict.fromkeys(CLIENT_ID_FIELDS, "x"))
    except (KeyError, IndexError, ValueError):
        raise EdcSettingsError(
            f"{PREFIX}STS_CLIENT_ID={raw!r} may use only the placeholders "
            + ", ".join(f"{{{f}}}" for f in CLIENT_ID_FIELDS)
        ) from None
    return raw


def _issuers(env: Mapping[str, str]) -> tuple[str, ...]:
    issuers = tuple(i.strip() for i in _get(env, "TRUSTED_ISSUERS").split(",") if i.strip())
    bad = [i for i in issuers if not i.startswith("did:")]
    if bad:
        raise EdcSettingsError(f"{PREFIX}TRUSTED_ISSUERS: {bad[0]!r} is not a DID (did:...)")
    return issuers


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = _get(env, name).lower() or default
    if raw not in choices:
        raise EdcSettingsError(f"{PREFIX}{name}={raw!r} must be one of {', '.join(choices)}")
    return raw


def from_env(env: Mapping[str, str]) -> EdcSettings:
    """Reads the `edc` settings; a missing or malformed one raises EdcSettingsError."""
    missing = [PREFIX + n for n in REQUIRED if not _get(env, n)]
    if missing:
        raise EdcSettingsError(
            f"the edc profile needs {', '.join(missing)} (or CONNECTOR_OPERATOR_PROFILE=generic)"
        )
    release = RELEASES[_choice(env, "RELEASE", tuple(RELEASES), DEFAULT_RELEASE)]
    host = _get(env, "PUBLIC_HOST").lower()
    if len(host) > 253 or re.fullmatch(HOST, host) is None:
        raise EdcSettingsError(
            f"{PREFIX}PUBLIC_HOST={host!r} must be a host name, e.g. dsp.example.com"
        )
    catalog = _choice(env, "CATALOG", ("true", "false"), str(release.catalog is not None).lower())
    folder = _get(env, "VAULT_FOLDER").strip("/") or "connectors"
    mount = _get(env, "VAULT_SECRET_PATH") or "/v1/secret"
    if not re.fullmatch(r"/v1/[A-Za-z0-9_-]+", mount):
        raise EdcSettingsError(f"{PREFIX}VAULT_SECRET_PATH={mount!r} must look like /v1/secret")
    return EdcSettings(
        release=release,
        controlplane_image=_get(env, "CONTROLPLANE_IMAGE") or release.controlplane_image,
        dataplane_image=_get(env, "DATAPLANE_IMAGE") or release.dataplane_image,
        catalog=catalog == "true" and release.catalog is not None,
        public_host=host,
        ingress_class=_get(env, "INGRESS_CLASS") or None,
        ingress_tls_secret=_optional_secret_name(env, "INGRESS_TLS_SECRET"),
        sts_token_url=_url(env, "STS_TOKEN_URL"),
        sts_client_id=_client_id(env),
        sts_client_secret_alias=_get(env, "STS_CLIENT_SECRET_ALIAS") or "sts-client-secret",
        trusted_issuers=_issuers(env),
        bdrs_url=_url(env, "BDRS_URL"),
        datasource_url=_datasource(env),
        datasource_per_connector=_choice(env, "DATASOURCE_PER_CONNECTOR", PER_CONNECTOR, "schema"),
        datasource_secret=_secret_name(env, "DATASOURCE_SECRET", "connector-operator-datasource"),
        vault_url=_url(env, "VAULT_URL"),
        vault_token_secret=_secret_name(env, "VAULT_TOKEN_SECRET", "connector-operator-vault"),
        vault_folder=folder,
        vault_secret_path=mount,
    )
