"""Builders of what a Connector becomes: its Secret, Deployment and Service manifests, and the
hash of its effective configuration (pure: models, config)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from connector_operator.config import OperatorConfig, Probe
from connector_operator.models import (
    API_VERSION,
    CREDENTIAL_FIELDS,
    GROUP,
    KIND,
    Connector,
)

MANAGER = "connector-operator"
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
APPLIED_ANNOTATION = f"{GROUP}/applied"
CONTAINER = "connector"
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
COMPONENT_LABEL = "app.kubernetes.io/component"
RUN_AS = 65532  # the conventional "nonroot" user of distroless images


def child_name(connector_name: str) -> str:
    """Every child shares one name: a valid DNS-1035 label for any valid Connector name."""
    return f"connector-{connector_name}"


def labels(connector_name: str) -> dict[str, str]:
    return {
        NAME_LABEL: "connector",
        INSTANCE_LABEL: connector_name,
        MANAGED_BY_LABEL: MANAGER,
    }


def selector(connector_name: str) -> dict[str, str]:
    return {NAME_LABEL: "connector", INSTANCE_LABEL: connector_name}


def owner_reference(connector: Connector) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": connector.metadata.name,
        "uid": connector.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def env_name(field: str) -> str:
    return f"CONNECTOR_STORAGE_{field.upper()}"


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def digest(value: object) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()[:32]


def config_hash(
    connector: Connector, credentials_digest: str, operator: OperatorConfig, key: bytes
) -> str:
    """Fingerprints everything that shapes the pod: an edit, a rotated Secret or a new
    operator image all change it, and the pod template carries it so the pod rolls.

    `credentials_digest` stands for the credential values (inline or from the referenced
    Secret). Anyone who may read pods reads this hash, and all else that goes into it can be
    read too (the spec, the operator's settings): were it a plain digest, a weak password could
    be guessed offline by hashing candidates. So it is an HMAC under `key`, the installation's
    secret hash key.
    """
    spec = connector.spec
    payload = {
        "storageType": spec.storage_type.value,
        "config": spec.non_secret_fields(),
        "credentialsSecret": credentials_secret_name(connector),
        "credentials": credentials_digest,
        "operator": operator.fingerprint(),
    }
    return hmac.new(key, canonical(payload), hashlib.sha256).hexdigest()[:32]


def credentials_digest(values: Mapping[str, str | bytes]) -> str:
    """A digest of credential values, mixed with their keys, for change detection. Unkeyed, so
    it is held in memory only: what leaves the operator is `config_hash`, keyed."""
    return digest({k: v.decode() if isinstance(v, bytes) else v for k, v in sorted(values.items())})


def credentials_secret_name(connector: Connector) -> str | None:
    """The Secret the pod reads credentials from: the user's, or the operator's own."""
    if not CREDENTIAL_FIELDS[connector.spec.storage_type]:
        return None
    return connector.spec.credentials_secret_name() or child_name(connector.metadata.name)


def child_metadata(
    connector: Connector, name: str | None = None, component: str | None = None
) -> dict[str, Any]:
    """Metadata of a child: its name (the generic profile's one name by default), the
    Connector's labels (and `component`'s) and the controller ownerReference."""
    child_labels = labels(connector.metadata.name)
    if component is not None:
        child_labels[COMPONENT_LABEL] = component
    return {
        "name": name or child_name(connector.metadata.name),
        "namespace": connector.metadata.namespace,
        "labels": child_labels,
        "ownerReferences": [owner_reference(connector)],
    }


def stamped(manifest: dict[str, Any], key: bytes | None = None) -> dict[str, Any]:
    """Marks a manifest with a digest of itself, so that a converged object is recognised
    from its annotation and not written again. A manifest holding credentials is stamped with
    an HMAC under `key`: an annotation is read by more people than the data it sits beside."""
    stamp = (
        digest(manifest)
        if key is None
        else hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()[:32]
    )
    manifest["metadata"].setdefault("annotations", {})[APPLIED_ANNOTATION] = stamp
    return manifest


def secret(connector: Connector, key: bytes) -> dict[str, Any] | None:
    """The operator's Secret of inline credentials, stamped under the installation's `key`;
    None in reference mode or for HttpData."""
    values = connector.spec.inline_credentials()
    if not values:
        return None
    data = {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())}
    return stamped(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": child_metadata(connector),
            "type": "Opaque",
            "data": data,
        },
        key,
    )


def restricted_container() -> dict[str, Any]:
    """The restricted security of every connector container, and its writable /tmp."""
    return {
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
        },
        # A read-only root file system still needs somewhere to write temporary files.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 -- an emptyDir
    }


def restricted_pod(container: Mapping[str, Any], run_as: int) -> dict[str, Any]:
    """A pod spec of one container, as non-root `run_as`, without a ServiceAccount token, with
    the emptyDir that `restricted_container` mounts at /tmp."""
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": run_as,
            "runAsGroup": run_as,
            "fsGroup": run_as,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [dict(container)],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def _probe(probe: Probe | None) -> dict[str, Any] | None:
    if probe is None:
        return None
    return {
        "httpGet": {"path": probe.path, "port": probe.port},
        "initialDelaySeconds": probe.initial_delay_seconds,
        "periodSeconds": probe.period_seconds,
    }


def _env(connector: Connector) -> list[dict[str, Any]]:
    spec = connector.spec
    env: list[dict[str, Any]] = [
        {"name": "CONNECTOR_NAME", "value": connector.metadata.name},
        {"name": "CONNECTOR_STORAGE_TYPE", "value": spec.storage_type.value},
    ]
    env += [{"name": env_name(k), "value": v} for k, v in sorted(spec.non_secret_fields().items())]
    secret_name = credentials_secret_name(connector)
    env += [
        {
            "name": env_name(field),
            "valueFrom": {"secretKeyRef": {"name": secret_name, "key": field}},
        }
        for field in CREDENTIAL_FIELDS[spec.storage_type]
    ]
    return env


def deployment(
    connector: Connector, operator: OperatorConfig, hash_: str, replicas: int
) -> dict[str, Any]:
    name = connector.metadata.name
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": operator.image,
        "imagePullPolicy": operator.image_pull_policy,
        "env": _env(connector),
        "resources": dict(operator.resources),
        **restricted_container(),
    }
    if operator.ports:
        container["ports"] = [
            {"name": p.name, "containerPort": p.number, "protocol": "TCP"} for p in operator.ports
        ]
    for key, probe in (
        ("readinessProbe", operator.readiness_probe),
        ("livenessProbe", operator.liveness_probe),
    ):
        if (built := _probe(probe)) is not None:
            container[key] = built
    return stamped(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": child_metadata(connector),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector(name)},
                "strategy": {"type": "Recreate"},
                "progressDeadlineSeconds": operator.progress_deadline_seconds,
                "revisionHistoryLimit": 3,
                "template": {
                    "metadata": {
                        "labels": labels(name),
                        "annotations": {CONFIG_HASH_ANNOTATION: hash_},
                    },
                    "spec": restricted_pod(container, RUN_AS),
                },
            },
        }
    )


def service(connector: Connector, operator: OperatorConfig) -> dict[str, Any] | None:
    """A ClusterIP Service over the configured ports; None when no port is configured."""
    if not operator.ports:
        return None
    return stamped(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": child_metadata(connector),
            "spec": {
                "type": "ClusterIP",
                "selector": selector(connector.metadata.name),
                "ports": [
                    {"name": p.name, "port": p.number, "targetPort": p.name, "protocol": "TCP"}
                    for p in operator.ports
                ],
            },
        }
    )


def stamp_of(manifest: Mapping[str, Any]) -> str | None:
    """The applied stamp an object carries (None when the operator did not write it)."""
    annotations = manifest.get("metadata", {}).get("annotations") or {}
    stamp = annotations.get(APPLIED_ANNOTATION)
    return stamp if isinstance(stamp, str) else None
