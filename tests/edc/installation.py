"""An installation of the `edc` profile for the tests: the operator's `edc` settings and a
view of a Connector's vault folder in the vault stand-in (tests/edc/vault.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.edc.vault import Vault

PUBLIC_HOST = "dataspace.test"
DB_USER, DB_PASSWORD = "edc", "db-password-7Hq2"


@dataclass
class EdcInstallation:
    vault: Vault
    namespace: str
    env: dict[str, str] = field(default_factory=dict)

    def folder(self, name: str) -> dict[str, Any]:
        """The Connector's vault folder: alias -> stored data."""
        prefix = f"connectors/{self.namespace}/{name}/"
        entries = self.vault.entries()
        return {p.removeprefix(prefix): d for p, d in entries.items() if p.startswith(prefix)}


def edc_env(vault_url: str, namespace: str, **overrides: str) -> dict[str, str]:
    """The operator's environment for the `edc` profile; the Secrets are named after the
    test's namespace, so that tests running at once do not share them."""
    env = {
        "PROFILE": "edc",
        "EDC_PUBLIC_HOST": PUBLIC_HOST,
        "EDC_INGRESS_CLASS": "nginx",
        "EDC_STS_TOKEN_URL": f"https://sts.{PUBLIC_HOST}/token",
        "EDC_TRUSTED_ISSUERS": f"did:web:issuer.{PUBLIC_HOST}",
        "EDC_BDRS_URL": f"https://bdrs.{PUBLIC_HOST}/api/v1",
        "EDC_DATASOURCE_URL": "jdbc:postgresql://postgres.example:5432/edc",
        "EDC_VAULT_URL": vault_url,
        "EDC_VAULT_TOKEN_SECRET": f"vault-{namespace}",
        "EDC_DATASOURCE_SECRET": f"db-{namespace}",
        **overrides,
    }
    return {f"CONNECTOR_OPERATOR_{k}": v for k, v in env.items()}
