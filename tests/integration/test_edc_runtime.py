"""The proof with the real runtime: the operator's two Deployments, booted.

For a Connector of each storage type the test takes the control-plane and data-plane
Deployments the operator wrote on the local control plane, resolves their environment
(literal values, `secretKeyRef`s read from the API server) and starts vanilla Eclipse EDC 0.14.0
runtimes (tests/edc/build.sh) as local processes with exactly that configuration. Only two
things change, as a cluster's network would do them: the Services' host names resolve to
loopback, and every port is moved to a free one, consistently (EDC's version API too, which the
operator leaves at its default). The vault is the test support's
KV v2 stand-in (no real Vault server can be built here), holding what the operator wrote.

What vanilla EDC proves: EDC-core keys, ports, paths, probes, the vault exchange and the
storage settings. Tractus-X-only keys (TX_*, TRACTUSX_*) are ignored by it; see the README.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import controlplane
from tests.edc import runtime
from tests.edc.installation import EdcInstallation
from tests.integration.conftest import (
    S3_CREDENTIALS,
    Connectors,
    Operator,
    connector,
    s3,
    secret_manifest,
)
from tests.support import eventually

pytestmark = pytest.mark.cluster
AZURE = {
    "container_name": "reports",
    "url": "http://127.0.0.1:10000/devstoreaccount1",
    "account_name_read": "readacct",
    "account_key_read": "a2V5LXJlYWQ=",
    "account_name_write": "writeacct",
    "account_key_write": "a2V5LXdyaXRl",
}


@pytest.fixture(scope="module")
def edc_jars() -> Path:
    """The runtimes' jars, gathered once into the cache (a failure fails the tests)."""
    return runtime.version_dir()


def resolved_env(connectors: Connectors, deployment: client.V1Deployment) -> dict[str, str]:
    """The container's environment as the kubelet would give it."""
    env: dict[str, str] = {}
    for var in deployment.spec.template.spec.containers[0].env:
        if var.value is not None:
            env[var.name] = var.value
            continue
        ref = var.value_from.secret_key_ref
        secret = connectors.core.read_namespaced_secret(ref.name, connectors.namespace)
        env[var.name] = base64.b64decode(secret.data[ref.key]).decode()
    return env


class Network:
    """The Services' host names on loopback and their ports moved to free ones."""

    def __init__(self, namespace: str, name: str) -> None:
        self.hosts = {f"edc-{name}-{p}.{namespace}.svc": p for p in ("cp", "dp")}
        self.ports: dict[tuple[str, int], int] = {}

    def port(self, plane: str, port: int) -> int:
        return self.ports.setdefault((plane, port), controlplane.free_port())

    def localize(self, plane: str, env: dict[str, str]) -> dict[str, str]:
        def url(match: re.Match[str]) -> str:
            return f"127.0.0.1:{self.port(self.hosts[match[1]], int(match[2]))}"

        pattern = re.compile("(" + "|".join(re.escape(h) for h in self.hosts) + r"):(\d+)")
        local = {}
        for key, value in env.items():
            if re.fullmatch(r"WEB_HTTP(_[A-Z]+)?_PORT", key):
                local[key] = str(self.port(plane, int(value)))
            elif value in self.hosts:  # a bare host name: EDC_HOSTNAME
                local[key] = "127.0.0.1"
            else:
                local[key] = pattern.sub(url, value)
        return local


def call(url: str, key: str | None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"x-api-key": key} if key else {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


@pytest.fixture
def runtimes(tmp_path: Path) -> Iterator[Callable[[str, dict[str, str]], runtime.Runtime]]:
    started: list[runtime.Runtime] = []

    def start(plane: str, env: dict[str, str]) -> runtime.Runtime:
        started.append(runtime.start(plane, env, tmp_path / f"{plane}.log"))
        return started[-1]

    yield start
    for process in reversed(started):
        process.stop()


S3_BY_REFERENCE = {"credentials_secret_ref": {"name": "bucket-s3"}, **dict.fromkeys(S3_CREDENTIALS)}
CASES = {
    "HttpData": lambda: connector("web"),
    "AmazonS3": lambda: s3("bucket", url="http://127.0.0.1:9000", **S3_BY_REFERENCE),
    "AzureStorage": lambda: connector("blob", "AzureStorage", **AZURE),
}


@pytest.mark.parametrize("storage_type", list(CASES))
def test_the_operators_deployments_boot_the_real_edc_runtime(  # noqa: PLR0917 -- fixtures
    storage_type: str,
    edc_jars: Path,
    edc: EdcInstallation,
    edc_operator: Callable[..., Operator],
    connectors: Connectors,
    runtimes: Callable[[str, dict[str, str]], runtime.Runtime],
) -> None:
    edc_operator()
    manifest = CASES[storage_type]()
    name = manifest["metadata"]["name"]
    if storage_type == "AmazonS3":
        connectors.apply(secret_manifest("bucket-s3", S3_CREDENTIALS))
    connectors.apply(manifest)
    connectors.wait_phase(name, "Running", timeout=120)
    apps, ns = connectors.apps, connectors.namespace
    cp = apps.read_namespaced_deployment(f"edc-{name}-cp", ns)
    dp = apps.read_namespaced_deployment(f"edc-{name}-dp", ns)
    network = Network(ns, name)
    cp_env = network.localize("cp", resolved_env(connectors, cp))
    # The one port the operator does not set: EDC's version API, on 7171 by default in every
    # control plane (each pod has its own; processes on one machine do not). Moved like the rest.
    cp_env |= {"WEB_HTTP_VERSION_PORT": str(network.port("cp", 7171)),
               "WEB_HTTP_VERSION_PATH": "/.well-known/api"}  # fmt: skip
    dp_env = network.localize("dp", resolved_env(connectors, dp))

    def readiness(plane: str, deployment: client.V1Deployment) -> str:
        probe = deployment.spec.template.spec.containers[0].readiness_probe.http_get
        ports = {
            p.name: p.container_port for p in deployment.spec.template.spec.containers[0].ports
        }
        return f"http://127.0.0.1:{network.port(plane, ports[probe.port])}{probe.path}"

    before_runtimes = len(edc.vault.requests)
    control = runtimes("controlplane", cp_env)
    control.wait_ready(readiness("cp", cp))
    data = runtimes("dataplane", dp_env)
    data.wait_ready(readiness("dp", dp))

    key = cp_env["WEB_HTTP_MANAGEMENT_AUTH_KEY"]
    management = f"http://127.0.0.1:{network.port('cp', 8081)}{cp_env['WEB_HTTP_MANAGEMENT_PATH']}"

    def registered() -> list[Any]:
        status, body = call(f"{management}/v3/dataplanes", key)
        assert status == 200, status
        # EDC names a source type as the platform names the storage type.
        return [d for d in body or [] if storage_type in d.get("allowedSourceTypes", [])]

    planes = eventually(registered, timeout=60, what="the data plane to register")
    assert len(planes) == 1, planes
    dp_control = f"127.0.0.1:{network.port('dp', 8084)}"
    assert dp_control in json.dumps(planes[0]), planes[0]  # it registered under its Service
    assert call(f"{management}/v3/dataplanes", "not-the-key")[0] == 401
    assert call(f"{management}/v3/dataplanes", None)[0] == 401
    assert data.alive() and control.alive()

    # The vault holds what the runtime reads, and follows a rotation.
    folder = edc.folder(name)
    assert {"token-signer-private-key", "token-verifier-public-key"} <= set(folder)
    if storage_type == "AmazonS3":
        assert (
            json.loads(folder["s3-write-credentials"]["content"])["accessKeyId"]
            == S3_CREDENTIALS["username_write"]
        )
        connectors.apply(
            secret_manifest("bucket-s3", {**S3_CREDENTIALS, "username_write": "AKIA-ROTATED"})
        )
        eventually(
            lambda: (
                json.loads(edc.folder(name)["s3-write-credentials"]["content"])["accessKeyId"]
                == "AKIA-ROTATED"
            ),
            what="the rotated write pair in the vault",
        )
    if storage_type == "AzureStorage":
        assert folder["readacct-key1"]["content"] == AZURE["account_key_read"]
        assert folder["writeacct-key1"]["content"] == AZURE["account_key_write"]
        connectors.apply(
            connector("blob", "AzureStorage", **{**AZURE, "account_key_write": "cm90YXRlZA=="})
        )
        eventually(
            lambda: edc.folder(name)["writeacct-key1"]["content"] == "cm90YXRlZA==",
            what="the rotated account key in the vault",
        )
    # The runtimes themselves talked to the vault with the token they were given (the operator
    # never looks its token up), in the Connector's folder (the data plane's AWS key lookup).
    theirs = [(r.method, r.path, r.status) for r in edc.vault.requests[before_runtimes:]]
    assert ("GET", "/v1/auth/token/lookup-self", 200) in theirs, theirs
    if storage_type == "AmazonS3":
        folder_reads = [
            p
            for m, p, _ in theirs
            if p.startswith(f"/v1/secret/data/connectors/{ns}/{name}/edc.aws")
        ]
        assert folder_reads, theirs
