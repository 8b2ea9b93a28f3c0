"""The manifests of a Connector under the `edc` profile: a control-plane and a data-plane
Deployment and Service, the Secret of the Connector's keys and an optional Ingress (pure).

Every secret value reaches the pods through a `secretKeyRef`: the storage credentials from the
Connector's credentials Secret (the operator's or the user's), everything else from the
Connector's `-edc` Secret (generated keys, and copies of the installation's vault token and
database password, since a pod can only reference Secrets of its own namespace).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from connector_operator import resources
from connector_operator.config import OperatorConfig
from connector_operator.edc.identity import Identity, schema_of
from connector_operator.edc.settings import EdcSettings
from connector_operator.edc.table import Api
from connector_operator.models import Connector, StorageType

CONTROLPLANE, DATAPLANE = "controlplane", "dataplane"
PLANES = (CONTROLPLANE, DATAPLANE)
# Keys of the `-edc` Secret. The first five are generated once; the last three are copied.
MANAGEMENT_KEY = "management-api-key"
CATALOG_KEY = "catalog-api-key"
PROXY_KEY = "consumer-proxy-key"
SIGNER_KEY = "token-signer-private-key"
VERIFIER_KEY = "token-verifier-public-key"
GENERATED = (MANAGEMENT_KEY, CATALOG_KEY, PROXY_KEY, SIGNER_KEY, VERIFIER_KEY)
VAULT_TOKEN, DB_USER, DB_PASSWORD = "vault-token", "datasource-user", "datasource-password"
# What the data plane finds in the Connector's vault folder (see `vault_entries`).
SIGNER_ALIAS, VERIFIER_ALIAS = SIGNER_KEY, VERIFIER_KEY


def deployment_name(connector_name: str, plane: str) -> str:
    """At most 60 characters (a Connector's name has at most 53): a valid Service name too."""
    return f"edc-{connector_name}-{'cp' if plane == CONTROLPLANE else 'dp'}"


def keys_secret_name(connector_name: str) -> str:
    return f"edc-{connector_name}-keys"


def ingress_name(connector_name: str) -> str:
    return f"edc-{connector_name}"


def _host(connector: Connector, plane: str) -> str:
    """The plane's Service as other pods of the namespace reach it."""
    name = deployment_name(connector.metadata.name, plane)
    return f"{name}.{connector.metadata.namespace}.svc"


def _literal(env: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in env.items()]


def _from_secret(secret: str, keys: Mapping[str, str]) -> list[dict[str, Any]]:
    return [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": v}}}
        for k, v in keys.items()
    ]


def _web(apis: tuple[Api, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for api in apis:
        infix = f"_{api.env}" if api.env else ""
        env[f"WEB_HTTP{infix}_PORT"] = str(api.port)
        env[f"WEB_HTTP{infix}_PATH"] = api.path
    return env


def _shared(connector: Connector, settings: EdcSettings, identity: Identity) -> dict[str, str]:
    """The trust, store and vault settings both planes share (secret values excepted)."""
    namespace, name = connector.metadata.namespace, connector.metadata.name
    client_id = settings.sts_client_id.format(
        name=name, namespace=namespace, bpn=identity.bpn, did=identity.did
    )
    env = {
        "EDC_IAM_STS_OAUTH_TOKEN_URL": settings.sts_token_url,
        "EDC_IAM_STS_OAUTH_CLIENT_ID": client_id,
        "EDC_IAM_STS_OAUTH_CLIENT_SECRET_ALIAS": settings.sts_client_secret_alias,
    }
    for i, issuer in enumerate(settings.trusted_issuers):
        env[f"EDC_IAM_TRUSTED-ISSUER_{i}-ISSUER_ID"] = issuer
    env[settings.release.bdrs_url_env] = settings.bdrs_url
    env["EDC_DATASOURCE_DEFAULT_URL"] = datasource_url(connector, settings)
    env["EDC_SQL_SCHEMA_AUTOCREATE"] = "true"
    env |= {
        "EDC_VAULT_HASHICORP_URL": settings.vault_url,
        "EDC_VAULT_HASHICORP_TIMEOUT_SECONDS": "30",
        "EDC_VAULT_HASHICORP_HEALTH_CHECK_ENABLED": "true",
        "EDC_VAULT_HASHICORP_HEALTH_CHECK_STANDBY_OK": "false",
        "EDC_VAULT_HASHICORP_API_SECRET_PATH": settings.vault_secret_path,
        "EDC_VAULT_HASHICORP_API_HEALTH_CHECK_PATH": "/v1/sys/health",
        "EDC_VAULT_HASHICORP_FOLDER": vault_folder(
            settings.vault_folder, connector.metadata.namespace, connector.metadata.name
        ),
    }
    return env


def datasource_url(connector: Connector, settings: EdcSettings) -> str:
    schema = schema_of(connector.metadata.namespace, connector.metadata.name)
    if settings.datasource_per_connector == "database":
        base = settings.datasource_url.rsplit("/", 1)[0]
        return f"{base}/{schema}"
    return f"{settings.datasource_url}?currentSchema={schema}"


def vault_folder(prefix: str, namespace: str, name: str) -> str:
    """A Connector's vault folder, as the operator writes it and the runtime reads it."""
    return f"{prefix}/{namespace}/{name}"


# Env of both planes from the keys Secret's copies of the installation's secrets.
SHARED_SECRETS = {
    "EDC_DATASOURCE_DEFAULT_USER": DB_USER,
    "EDC_DATASOURCE_DEFAULT_PASSWORD": DB_PASSWORD,
    "EDC_VAULT_HASHICORP_TOKEN": VAULT_TOKEN,
}


def controlplane_env(
    connector: Connector, settings: EdcSettings, identity: Identity
) -> list[dict[str, Any]]:
    release = settings.release
    cp = _host(connector, CONTROLPLANE)
    control = release.api(CONTROLPLANE, "control")
    apis = _apis(settings, CONTROLPLANE)
    literal = {
        "EDC_HOSTNAME": cp,
        "EDC_PARTICIPANT_ID": identity.participant_id,
        "EDC_IAM_ISSUER_ID": identity.did,
        release.bpn_env: identity.bpn,
        **_web(apis),
        "WEB_HTTP_MANAGEMENT_AUTH_TYPE": "tokenbased",
        "EDC_CONTROL_ENDPOINT": f"http://{cp}:{control.port}{control.path}",
        "EDC_DSP_CALLBACK_ADDRESS": f"{identity.public_base}/cp/protocol"
        + release.api(CONTROLPLANE, "protocol").path,
        **_shared(connector, settings, identity),
    }
    secrets = {"WEB_HTTP_MANAGEMENT_AUTH_KEY": MANAGEMENT_KEY, **SHARED_SECRETS}
    if settings.catalog and release.catalog:
        secrets["WEB_HTTP_CATALOG_AUTH_KEY"] = CATALOG_KEY
    return _literal(literal) + _from_secret(keys_secret_name(connector.metadata.name), secrets)


def _storage(connector: Connector) -> tuple[dict[str, str], dict[str, str]]:
    """(literal env, env from the credentials Secret) of the storage payload: only what the
    runtime reads from its environment; the rest goes to the vault or to the management API."""
    spec = connector.spec
    config = spec.non_secret_fields()
    if spec.storage_type is StorageType.AMAZON_S3:
        literal = {"EDC_AWS_ENDPOINT_OVERRIDE": config["url"]} if "url" in config else {}
        return literal, {
            "AWS_ACCESS_KEY_ID": "username_read",
            "AWS_SECRET_ACCESS_KEY": "password_read",
        }
    if spec.storage_type is StorageType.AZURE_STORAGE and "url" in config:
        return {"EDC_BLOBSTORE_ENDPOINT_TEMPLATE": config["url"]}, {}
    return {}, {}


def dataplane_env(
    connector: Connector, settings: EdcSettings, identity: Identity
) -> list[dict[str, Any]]:
    release = settings.release
    cp, dp = _host(connector, CONTROLPLANE), _host(connector, DATAPLANE)
    cp_control, dp_control = release.api(CONTROLPLANE, "control"), release.api(DATAPLANE, "control")
    public = f"{identity.public_base}/dp/public{release.api(DATAPLANE, 'public').path}"
    participant = identity.bpn if release.dataplane_participant_id == "bpn" else identity.did
    storage, storage_secrets = _storage(connector)
    literal = {
        # The name the data plane registers under; EDC's default is localhost.
        "EDC_HOSTNAME": dp,
        "EDC_PARTICIPANT_ID": participant,
        "EDC_IAM_ISSUER_ID": identity.did,
        **_web(release.dataplane_apis),
        "EDC_CONTROL_ENDPOINT": f"http://{dp}:{dp_control.port}{dp_control.path}",
        "EDC_DPF_SELECTOR_URL": f"http://{cp}:{cp_control.port}{cp_control.path}/v1/dataplanes",
        "EDC_DATAPLANE_API_PUBLIC_BASEURL": public,
        "TX_EDC_DATAPLANE_TOKEN_EXPIRY": "300",
        "TX_EDC_DATAPLANE_TOKEN_EXPIRY_TOLERANCE": "10",
        "TX_EDC_DATAPLANE_TOKEN_REFRESH_ENDPOINT": f"{public}/token",
        "EDC_TRANSFER_PROXY_TOKEN_SIGNER_PRIVATEKEY_ALIAS": SIGNER_ALIAS,
        "EDC_TRANSFER_PROXY_TOKEN_VERIFIER_PUBLICKEY_ALIAS": VERIFIER_ALIAS,
        **_shared(connector, settings, identity),
        **storage,
    }
    keys = {"TX_EDC_DPF_CONSUMER_PROXY_AUTH_APIKEY": PROXY_KEY, **SHARED_SECRETS}
    env = _literal(literal) + _from_secret(keys_secret_name(connector.metadata.name), keys)
    credentials = resources.credentials_secret_name(connector)
    if storage_secrets and credentials is not None:
        env += _from_secret(credentials, storage_secrets)
    return env


def _apis(settings: EdcSettings, plane: str) -> tuple[Api, ...]:
    release = settings.release
    if plane == DATAPLANE:
        return release.dataplane_apis
    return release.controlplane_apis + (
        (release.catalog,) if settings.catalog and release.catalog else ()
    )


def _container(
    connector: Connector, settings: EdcSettings, operator: OperatorConfig, plane: str
) -> dict[str, Any]:
    release = settings.release
    probes = release.probes
    default = release.api(plane, "default")

    def probe(path: str) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": default.name},
            "initialDelaySeconds": probes.initial_delay_seconds,
            "periodSeconds": probes.period_seconds,
            "timeoutSeconds": probes.timeout_seconds,
            "failureThreshold": probes.failure_threshold,
        }

    ports = [
        {"name": a.name, "containerPort": a.port, "protocol": "TCP"} for a in _apis(settings, plane)
    ] + [{"name": "metrics", "containerPort": release.metrics_port, "protocol": "TCP"}]
    return {
        "name": plane,
        "image": settings.controlplane_image if plane == CONTROLPLANE else settings.dataplane_image,
        "imagePullPolicy": operator.image_pull_policy,
        "ports": ports,
        "resources": dict(operator.resources),
        "readinessProbe": probe(probes.readiness),
        "livenessProbe": probe(probes.liveness),
        **resources.restricted_container(),
    }


def deployment(
    connector: Connector,
    settings: EdcSettings,
    *,
    operator: OperatorConfig,
    identity: Identity,
    plane: str,
    replicas: int,
) -> dict[str, Any]:
    """The plane's Deployment, without its config hash (`with_hash` adds it)."""
    name = connector.metadata.name
    container = _container(connector, settings, operator, plane)
    build_env = controlplane_env if plane == CONTROLPLANE else dataplane_env
    container["env"] = build_env(connector, settings, identity)
    pod_labels = resources.labels(name) | {resources.COMPONENT_LABEL: plane}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": resources.child_metadata(connector, deployment_name(name, plane), plane),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector(name, plane)},
            "strategy": {"type": "Recreate"},
            "progressDeadlineSeconds": operator.progress_deadline_seconds,
            "revisionHistoryLimit": 3,
            "template": {
                "metadata": {"labels": pod_labels, "annotations": {}},
                "spec": resources.restricted_pod(container, settings.release.run_as),
            },
        },
    }


def selector(connector_name: str, plane: str) -> dict[str, str]:
    return resources.selector(connector_name) | {resources.COMPONENT_LABEL: plane}


def service(connector: Connector, settings: EdcSettings, plane: str) -> dict[str, Any]:
    name = connector.metadata.name
    ports = [(a.name, a.port) for a in _apis(settings, plane)]
    ports.append(("metrics", settings.release.metrics_port))
    return resources.stamped(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": resources.child_metadata(connector, deployment_name(name, plane), plane),
            "spec": {
                "type": "ClusterIP",
                "selector": selector(name, plane),
                "ports": [
                    {"name": p, "port": n, "targetPort": p, "protocol": "TCP"} for p, n in ports
                ],
            },
        }
    )


def keys_secret(connector: Connector, data: Mapping[str, str], key: bytes) -> dict[str, Any]:
    """The `-edc` Secret: generated keys and copies of the installation's secrets."""
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())}
    return resources.stamped(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": resources.child_metadata(
                connector, keys_secret_name(connector.metadata.name)
            ),
            "type": "Opaque",
            "data": encoded,
        },
        key,
    )


def ingress(connector: Connector, settings: EdcSettings) -> dict[str, Any] | None:
    """Routes /connectors/<name>/{cp/protocol, cp/management, dp/public} of the public host to
    the planes' ports, the prefix stripped (ingress-nginx annotations): the DSP address is
    https://<host>/connectors/<name>/cp/protocol/api/v1/dsp."""
    if settings.ingress_class is None:
        return None
    name = connector.metadata.name
    routes = (
        ("cp/protocol", CONTROLPLANE, "protocol"),
        ("cp/management", CONTROLPLANE, "management"),
        ("dp/public", DATAPLANE, "public"),
    )
    paths = [
        {
            "path": f"/connectors/{name}/{prefix}(/|$)(.*)",
            "pathType": "ImplementationSpecific",
            "backend": {"service": {"name": deployment_name(name, plane), "port": {"name": port}}},
        }
        for prefix, plane, port in routes
    ]
    metadata = resources.child_metadata(connector, ingress_name(name))
    metadata["annotations"] = {
        "nginx.ingress.kubernetes.io/use-regex": "true",
        "nginx.ingress.kubernetes.io/rewrite-target": "/$2",
    }
    host = settings.public_host.split(":")[0]
    spec: dict[str, Any] = {
        "ingressClassName": settings.ingress_class,
        "rules": [{"host": host, "http": {"paths": paths}}],
    }
    if settings.ingress_tls_secret is not None:
        spec["tls"] = [{"hosts": [host], "secretName": settings.ingress_tls_secret}]
    return resources.stamped(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": metadata,
            "spec": spec,
        }
    )
