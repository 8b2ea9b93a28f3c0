"""Runtime profiles: what a Connector becomes, chosen per installation (no I/O: builders; the
edc profile draws random keys for a Connector that has none yet).

- `generic`: one Deployment of a configured image, the container contract of `resources`;
- `edc`: an Eclipse Tractus-X EDC control plane and data plane (`edc.manifests`), the data
  plane gated on the control plane, with generated keys and vault entries.

The reconcile path asks a profile for the planes (Deployments) it runs, the config hash of each,
the children to converge and the vault entries to keep; it does not know which profile it has.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from connector_operator import resources
from connector_operator.config import OperatorConfig
from connector_operator.edc import keys as edc_keys
from connector_operator.edc import manifests as edc
from connector_operator.edc.identity import Identity, identity_of
from connector_operator.edc.settings import EdcSettings
from connector_operator.edc.vault_entries import entries
from connector_operator.models import Connector


@dataclass(frozen=True)
class Inputs:
    """What a pass knows of a Connector beyond its spec: its credentials (values and digest,
    inline or from the referenced Secret) and the data its keys Secret holds (edc only)."""

    connector: Connector
    credentials: Mapping[str, str]
    credentials_digest: str
    keys: Mapping[str, str] = field(default_factory=dict)


class Profile(Protocol):
    @property
    def planes(self) -> tuple[str, ...]:
        """The Deployments, in start order."""

    @property
    def gates(self) -> Mapping[str, str]:
        """Plane -> the plane that must be Available before it starts."""

    @property
    def unique_names(self) -> bool:
        """Whether a Connector's name must be unique across namespaces."""

    def deployment_name(self, connector_name: str, plane: str) -> str: ...

    def keys_secret_name(self, connector_name: str) -> str | None: ...

    def keys(self, held: Mapping[str, str]) -> dict[str, str]: ...

    def hashes(self, inputs: Inputs) -> dict[str, str]: ...

    def children(
        self, inputs: Inputs, hashes: Mapping[str, str], replicas: Mapping[str, int | None]
    ) -> list[dict[str, Any]]: ...

    def vault_entries(self, inputs: Inputs) -> dict[str, str] | None: ...


@dataclass(frozen=True)
class Generic:
    """One Deployment (and its Secret and Service) per Connector."""

    operator: OperatorConfig
    hash_key: bytes
    planes: tuple[str, ...] = ("connector",)
    gates: Mapping[str, str] = field(default_factory=dict)
    unique_names: bool = False

    def deployment_name(self, connector_name: str, plane: str) -> str:
        return resources.child_name(connector_name)

    def keys_secret_name(self, connector_name: str) -> str | None:
        return None

    def keys(self, held: Mapping[str, str]) -> dict[str, str]:
        return {}

    def hashes(self, inputs: Inputs) -> dict[str, str]:
        digest = inputs.credentials_digest
        return {
            "connector": resources.config_hash(
                inputs.connector, digest, self.operator, self.hash_key
            )
        }

    def children(
        self, inputs: Inputs, hashes: Mapping[str, str], replicas: Mapping[str, int | None]
    ) -> list[dict[str, Any]]:
        connector = inputs.connector
        built = [
            resources.secret(connector, self.hash_key),
            resources.service(connector, self.operator),
            resources.deployment(
                connector, self.operator, hashes["connector"], replicas["connector"] or 0
            ),
        ]
        return [c for c in built if c is not None]

    def vault_entries(self, inputs: Inputs) -> dict[str, str] | None:
        return None


@dataclass(frozen=True)
class Edc:
    """An EDC control plane and data plane per Connector.

    `platform` holds the installation's secrets the pods need (vault token, database user and
    password), copied into each Connector's keys Secret.
    """

    operator: OperatorConfig
    settings: EdcSettings
    platform: Mapping[str, str]
    hash_key: bytes
    planes: tuple[str, ...] = edc.PLANES
    gates: Mapping[str, str] = field(default_factory=lambda: {edc.DATAPLANE: edc.CONTROLPLANE})
    unique_names: bool = True  # the DID and the public routes hold the name alone

    def deployment_name(self, connector_name: str, plane: str) -> str:
        return edc.deployment_name(connector_name, plane)

    def keys_secret_name(self, connector_name: str) -> str | None:
        return edc.keys_secret_name(connector_name)

    def keys(self, held: Mapping[str, str]) -> dict[str, str]:
        return edc_keys.complete(held) | dict(self.platform)

    def identity(self, connector: Connector) -> Identity:
        return identity_of(connector.metadata.namespace, connector.metadata.name, self.settings)

    def _deployment(self, inputs: Inputs, plane: str, replicas: int) -> dict[str, Any]:
        connector = inputs.connector
        identity = self.identity(connector)
        return edc.deployment(
            connector,
            self.settings,
            operator=self.operator,
            identity=identity,
            plane=plane,
            replicas=replicas,
        )

    def hashes(self, inputs: Inputs) -> dict[str, str]:
        return {
            plane: template_hash(self._deployment(inputs, plane, 0), _values(inputs), self.hash_key)
            for plane in self.planes
        }

    def children(
        self, inputs: Inputs, hashes: Mapping[str, str], replicas: Mapping[str, int | None]
    ) -> list[dict[str, Any]]:
        connector = inputs.connector
        built: list[dict[str, Any] | None] = [
            resources.secret(connector, self.hash_key),
            edc.keys_secret(connector, inputs.keys, self.hash_key),
        ]
        built += [edc.service(connector, self.settings, plane) for plane in self.planes]
        for plane in self.planes:
            count = replicas.get(plane)
            if count is not None:
                deployment = self._deployment(inputs, plane, count)
                built.append(with_hash(deployment, hashes[plane]))
        built.append(edc.ingress(connector, self.settings))
        return [c for c in built if c is not None]

    def vault_entries(self, inputs: Inputs) -> dict[str, str] | None:
        return entries(inputs.connector.spec.storage_type, inputs.credentials, inputs.keys)


def _values(inputs: Inputs) -> dict[tuple[str, str], str]:
    """Every secret value a pod may reference, by (Secret, key)."""
    connector = inputs.connector
    values = {(edc.keys_secret_name(connector.metadata.name), k): v for k, v in inputs.keys.items()}
    credentials = resources.credentials_secret_name(connector)
    if credentials is not None:
        values |= {(credentials, k): v for k, v in inputs.credentials.items()}
    return values


def template_hash(
    deployment: Mapping[str, Any], values: Mapping[tuple[str, str], str], key: bytes
) -> str:
    """The config hash of one Deployment: its pod template and the values of the Secret keys
    its containers reference (so a rotated value rolls exactly the planes that read it),
    keyed (see `resources.config_hash` for why)."""
    template = deployment["spec"]["template"]
    refs = sorted(
        (ref["name"], ref["key"])
        for container in template["spec"]["containers"]
        for env in container.get("env", [])
        if (ref := env.get("valueFrom", {}).get("secretKeyRef")) is not None
    )
    payload = {
        "template": template,
        "secrets": [
            [name, k, hashlib.sha256(values.get((name, k), "").encode()).hexdigest()]
            for name, k in refs
        ],
    }
    return hmac.new(key, resources.canonical(payload), hashlib.sha256).hexdigest()[:32]


def with_hash(deployment: dict[str, Any], hash_: str) -> dict[str, Any]:
    """The Deployment with its config hash on the pod template (which rolls the pods when it
    changes), stamped."""
    deployment["spec"]["template"]["metadata"]["annotations"][resources.CONFIG_HASH_ANNOTATION] = (
        hash_
    )
    return resources.stamped(deployment)
