"""The installation's profile, made once the replica leads: for `edc`, the vault token and the
database credentials read from Secrets in the operator's own namespace (I/O through kube).

A missing Secret or key stops the operator with a message naming it, as a malformed setting
does: a Connector must not start with half a configuration. The values are read at start; a
rotated vault token or password takes effect when the operator restarts.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from connector_operator.config import OperatorConfig
from connector_operator.edc import manifests as edc
from connector_operator.kube import Kube
from connector_operator.profiles import Edc, Generic, Profile
from connector_operator.vault import Folders, Vault


class InstallationError(RuntimeError):
    """A Secret the installation's settings name is missing or incomplete."""


async def _secret(kube: Kube, namespace: str, name: str, keys: tuple[str, ...]) -> dict[str, str]:
    body = await kube.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
    if body is None:
        raise InstallationError(f"Secret {namespace}/{name} does not exist")
    data: Mapping[str, str] = body.get("data") or {}
    missing = [k for k in keys if not data.get(k)]
    if missing:
        raise InstallationError(f"Secret {namespace}/{name} lacks the keys {', '.join(missing)}")
    try:
        return {k: base64.b64decode(data[k]).decode() for k in keys}
    except (ValueError, UnicodeDecodeError):
        raise InstallationError(
            f"Secret {namespace}/{name}: the keys {', '.join(keys)} must hold UTF-8 text"
        ) from None


async def profile_of(
    kube: Kube, cfg: OperatorConfig, hash_key: bytes
) -> tuple[Profile, Folders | None]:
    """The profile the Connectors are built with, and their vault folders (edc only)."""
    settings = cfg.edc
    if settings is None:
        return Generic(cfg, hash_key), None
    namespace = cfg.lease_namespace
    token = await _secret(kube, namespace, settings.vault_token_secret, ("token",))
    database = await _secret(kube, namespace, settings.datasource_secret, ("user", "password"))
    platform = {
        edc.VAULT_TOKEN: token["token"],
        edc.DB_USER: database["user"],
        edc.DB_PASSWORD: database["password"],
    }
    vault = Vault(settings.vault_url, settings.vault_secret_path, token["token"])
    folders = Folders(vault, settings.vault_folder, recheck_seconds=cfg.resync_seconds)
    return Edc(cfg, settings, platform, hash_key), folders
