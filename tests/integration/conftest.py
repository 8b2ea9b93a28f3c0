"""The operator under test: a real `python -m connector_operator` process per test, scoped to the
test's namespace and authenticated as the ServiceAccount of deploy/rbac.yaml (so every test
also proves that RBAC is enough), plus helpers that read what a user would read."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.conftest import ROOT, Cluster, controlplane
from tests.edc.installation import DB_PASSWORD, DB_USER, EdcInstallation, edc_env
from tests.edc.vault import Vault
from tests.integration.gateway import (
    GATEWAY_NAMESPACE,
    GATEWAY_SA,
    Gateway,
    Tenant,
    gateway_rbac,
    make_tenant,
)
from tests.operator_runtime import runtime_python
from tests.support import eventually

OPERATOR_NAMESPACE = "connector-operator-system"
OPERATOR_SA = "connector-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SA}"
GROUP_VERSION = "dataspace.dev/v1alpha1"


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", str(ROOT / "crds"))
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/connectors.dataspace.dev", "--timeout=60s"
    )


@pytest.fixture(scope="session")
def operator_kubeconfig(
    cluster: Cluster, api: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A kubeconfig with a token of the operator's ServiceAccount, bound by deploy/rbac.yaml."""
    cluster.kubectl("apply", "-f", str(ROOT / "deploy" / "namespace.yaml"))
    cluster.kubectl("apply", "-n", OPERATOR_NAMESPACE, "-f", str(ROOT / "deploy" / "rbac.yaml"))
    path = tmp_path_factory.mktemp("operator") / "kubeconfig"
    return service_account_kubeconfig(cluster, api, OPERATOR_NAMESPACE, OPERATOR_SA, path)


def service_account_kubeconfig(
    cluster: Cluster, api: client.ApiClient, namespace: str, name: str, path: Path
) -> Path:
    """Writes to `path` a kubeconfig with a token of the ServiceAccount `namespace`/`name`."""
    token = (
        client.CoreV1Api(api)
        .create_namespaced_service_account_token(
            name,
            namespace,
            client.AuthenticationV1TokenRequest(spec={"expirationSeconds": 6 * 3600}),
        )
        .status.token
    )
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    cluster_entry = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster_entry],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": "op", "context": {"cluster": cluster_entry["name"], "user": name}}],
        "current-context": "op",
    }
    path.write_text(json.dumps(config))
    return path


free_port = controlplane.free_port


@dataclass
class Operator:
    """One operator process; `start`, `kill` (SIGKILL) and `stop` (SIGTERM) like a user would."""

    kubeconfig: Path
    namespace: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    health_port: int = 0

    def start(self) -> Operator:
        self.metrics_port, self.health_port = free_port(), free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": str(ROOT / "operator"),
            "CONNECTOR_OPERATOR_NAMESPACES": self.namespace,
            "CONNECTOR_OPERATOR_LEADER_ELECTION": "false",
            "CONNECTOR_OPERATOR_METRICS_PORT": str(self.metrics_port),
            "CONNECTOR_OPERATOR_HEALTH_PORT": str(self.health_port),
            "CONNECTOR_OPERATOR_LOG_LEVEL": "DEBUG",
            "CONNECTOR_OPERATOR_PROFILE": "generic",
            "CONNECTOR_OPERATOR_PORTS": "http=8080",
            # The made-up credentials of most tests point at AWS, which this machine cannot
            # reach: storage checks are on where a test gives them a real peer (moto, Azurite).
            "CONNECTOR_OPERATOR_STORAGE_CHECK": "off",
            **self.env,
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)  # in a CI pod: the kubeconfig, not its own SA
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [runtime_python(), "-m", "connector_operator"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def health(self) -> tuple[int, str]:
        """The liveness endpoint's answer, as the kubelet would get it."""
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read().decode()
        except OSError as error:
            return 0, str(error)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())


@pytest.fixture
def start_operator(
    crd: None, operator_kubeconfig: Path, namespace: str, tmp_path: Path
) -> Iterator[Callable[..., Operator]]:
    """Starts operators scoped to the test's namespace; all are stopped after the test.

    Each has its own log (operator.log, operator-2.log, ...); `kubeconfig` runs one as another
    identity than the operator's ServiceAccount."""
    started: list[Operator] = []

    def start(kubeconfig: Path | None = None, **env: str) -> Operator:
        log = "operator.log" if not started else f"operator-{len(started) + 1}.log"
        op = Operator(kubeconfig or operator_kubeconfig, namespace, tmp_path / log, env)
        started.append(op.start())
        return op

    yield start
    for op in started:
        op.stop()


@pytest.fixture
def operator(start_operator: Callable[..., Operator]) -> Operator:
    return start_operator()


class Connectors:
    """What a user does and sees, through kubectl and the API (as the admin)."""

    def __init__(self, cluster: Cluster, api: client.ApiClient, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> str:
        return self.cluster.kubectl("-n", self.namespace, *args, check=check, stdin=stdin)

    def apply(
        self, manifest: dict[str, Any] | str, check: bool = True, server_side: bool = False
    ) -> str:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        mode = ["--server-side"] if server_side else []
        return self.kubectl("apply", *mode, "-f", "-", stdin=text, check=check)

    def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "dataspace.dev", "v1alpha1", self.namespace, "connectors", name
        )
        return result

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        conditions = self.status(name).get("conditions", [])
        return next((c for c in conditions if c["type"] == type_), None)

    def wait_phase(self, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status(name)
            generation = self.get(name)["metadata"]["generation"]
            if status.get("phase") == phase and status.get("observedGeneration") == generation:
                return status
            return None

        return eventually(reached, timeout, f"{name} to be {phase}")

    def annotate(self, name: str, action: str | None) -> str:
        """Sets (or with None removes) the action; returns the resourceVersion it made."""
        value = "dataspace.dev/action-" if action is None else f"dataspace.dev/action={action}"
        out = self.kubectl(
            "annotate", "--overwrite", f"connector/{name}", value,
            "-o", "jsonpath={.metadata.resourceVersion}",
        )  # fmt: skip
        return out.strip()

    def deployment(self, name: str) -> client.V1Deployment | None:
        try:
            return self.apps.read_namespaced_deployment(f"connector-{name}", self.namespace)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def pods(self, name: str) -> list[client.V1Pod]:
        selector = f"app.kubernetes.io/instance={name}"
        return list(self.core.list_namespaced_pod(self.namespace, label_selector=selector).items)

    def events(self, name: str) -> list[client.CoreV1Event]:
        selector = f"involvedObject.name={name},involvedObject.kind=Connector"
        return list(self.core.list_namespaced_event(self.namespace, field_selector=selector).items)

    def wait_event(self, name: str, type_: str, reason: str) -> None:
        """Events are posted right after the status they go with: wait, do not race them."""
        eventually(
            lambda: (type_, reason) in self.event_reasons(name),
            what=f"a {type_} event {reason} for {name}",
        )

    def event_reasons(self, name: str) -> list[tuple[str, str]]:
        events = sorted(self.events(name), key=lambda e: int(e.metadata.resource_version))
        return [(e.type, e.reason) for e in events]


@pytest.fixture
def connectors(cluster: Cluster, api: client.ApiClient, namespace: str) -> Connectors:
    return Connectors(cluster, api, namespace)


def connector(name: str, storage_type: str = "HttpData", **config: Any) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {"storage_type": storage_type, "storage_config": config},
    }


S3_CREDENTIALS = {
    "username_read": "AKIA-READ-9f2c1e",
    "password_read": "pw-read-Zq81xT0w",
    "username_write": "AKIA-WRITE-4b7d2a",
    "password_write": "pw-write-Lm55vR3k",
}


def s3(name: str, **overrides: Any) -> dict[str, Any]:
    config = {"bucket_name": "orders", "region": "eu-central-1", **S3_CREDENTIALS, **overrides}
    return connector(name, "AmazonS3", **{k: v for k, v in config.items() if v is not None})


def audit_writes(
    cluster: Cluster, namespace: str, user: str = OPERATOR_USER
) -> list[dict[str, Any]]:
    """The write requests `user` made in `namespace`, from the API server's audit log."""
    assert cluster.plane is not None, "the audit log is a feature of the local control plane"
    writes = []
    for line in cluster.plane.audit_log.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("stage") != "ResponseComplete" or entry["user"]["username"] != user:
            continue
        if entry.get("objectRef", {}).get("namespace") != namespace:
            continue
        writes.append(entry)
    return writes


def secret_manifest(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def api_server_with(cluster: Cluster, *flags: str) -> contextlib.AbstractContextManager[None]:
    """The local API server restarted with `flags` after its own (the last of a repeated
    flag wins), and restarted with its own alone afterwards."""
    return _restarted_with(cluster, "kube-apiserver", flags)


def controller_manager_with(
    cluster: Cluster, *flags: str
) -> contextlib.AbstractContextManager[None]:
    """The local controller manager restarted with `flags` after its own, and restarted with
    its own alone afterwards."""
    return _restarted_with(cluster, "kube-controller-manager", flags)


@contextlib.contextmanager
def _restarted_with(cluster: Cluster, component: str, flags: tuple[str, ...]) -> Iterator[None]:
    plane = cluster.plane
    assert plane is not None, f"restarts the local control plane's {component}"
    restart = {
        "kube-apiserver": plane.restart_apiserver,
        "kube-controller-manager": plane.restart_controller_manager,
    }[component]
    saved = plane.extra_args.get(component)
    plane.extra_args[component] = [*(saved or []), *flags]
    restart()
    try:
        yield
    finally:
        if saved is None:
            plane.extra_args.pop(component, None)
        else:
            plane.extra_args[component] = saved
        restart()


HOLD = "dataspace.dev/test-hold"  # a finalizer that keeps a pod Terminating


@contextlib.contextmanager
def pod_kept(connectors: Connectors, name: str) -> Iterator[str]:
    """The Connector's one pod stays (Terminating, once deleted) until the block ends: a stop
    lasts as Stopping. Yields the pod's name."""
    pods = eventually(lambda: connectors.pods(name) if len(connectors.pods(name)) == 1 else None)
    pod = pods[0].metadata.name
    finalizers = json.dumps({"metadata": {"finalizers": [HOLD]}})
    connectors.kubectl("patch", "pod", pod, "--type=merge", "-p", finalizers)
    try:
        yield pod
    finally:
        release = '[{"op": "remove", "path": "/metadata/finalizers"}]'
        connectors.kubectl("patch", "pod", pod, "--type=json", "-p", release, check=False)


def settle(seconds: float = 2.0) -> None:
    """Gives the operator time to do anything it would wrongly do (for negative checks)."""
    time.sleep(seconds)


@pytest.fixture
def edc(cluster: Cluster, namespace: str, operator_kubeconfig: Path) -> Iterator[EdcInstallation]:
    """An `edc` installation: a vault stand-in and, in the operator's namespace (made by
    `operator_kubeconfig`), the Secrets of its token and of the database credentials."""
    token = secrets.token_hex(16)
    vault = Vault(token)
    url = vault.start()
    manifests = [
        secret_manifest(f"vault-{namespace}", {"token": token}),
        secret_manifest(f"db-{namespace}", {"user": DB_USER, "password": DB_PASSWORD}),
    ]
    for manifest in manifests:
        cluster.kubectl(
            "apply", "-n", OPERATOR_NAMESPACE, "-f", "-", stdin=yaml.safe_dump(manifest)
        )
    try:
        yield EdcInstallation(vault, namespace, edc_env(url, namespace))
    finally:
        vault.stop()
        for manifest in manifests:
            name = manifest["metadata"]["name"]
            cluster.kubectl("delete", "-n", OPERATOR_NAMESPACE, "secret", name, check=False)


@pytest.fixture
def edc_operator(
    edc: EdcInstallation, start_operator: Callable[..., Operator]
) -> Callable[..., Operator]:
    """Starts operators of the `edc` profile (extra settings as keyword arguments)."""

    def start(**env: str) -> Operator:
        return start_operator(**{**edc.env, **env})

    return start


@pytest.fixture(scope="session")
def gateway_kubeconfig(
    cluster: Cluster, api: client.ApiClient, crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A kubeconfig with a token of the gateway's ServiceAccount, bound by
    deploy/gateway/rbac.yaml (so every gateway test also proves that RBAC is enough)."""
    gateway_rbac(cluster)
    path = tmp_path_factory.mktemp("gateway") / "kubeconfig"
    return service_account_kubeconfig(cluster, api, GATEWAY_NAMESPACE, GATEWAY_SA, path)


@pytest.fixture
def start_gateway(gateway_kubeconfig: Path, tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Starts gateways (settings as keyword arguments); all are stopped after the test."""
    started: list[Gateway] = []

    def start(prefix: str = "/api/v1", **env: str) -> Gateway:
        log = tmp_path / f"gateway-{len(started) + 1}.log"
        gateway = Gateway(gateway_kubeconfig, log, free_port(), prefix, env)
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def gateway(start_gateway: Callable[..., Gateway]) -> Gateway:
    return start_gateway()


@pytest.fixture
def tenants(
    cluster: Cluster, api: client.ApiClient, namespace: str
) -> Iterator[tuple[Tenant, Tenant]]:
    """Two tenant namespaces (the test's, and one more), each with an editor, a viewer and an
    account without a binding."""
    core = client.CoreV1Api(api)
    other = f"{namespace}-b"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        yield make_tenant(cluster, api, namespace), make_tenant(cluster, api, other)
    finally:
        core.delete_namespace(other)
