"""Session fixtures: one Kubernetes API server for the whole run, a fresh namespace per test.

`CONNECTOR_TEST_BACKEND` picks where the API server comes from; tests never care which:
- `local` (default): the local control plane of tests/cluster (etcd, kube-apiserver,
  kube-controller-manager, kube-scheduler and kwok as local processes);
- `kind`: a kind cluster (needs Docker); `OPERATOR_IMAGE` is loaded into it when set;
- `existing`: the cluster of `KUBECONFIG` as it is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

import controlplane  # noqa: E402 -- lives beside the go.mod files, not in a package

BACKEND = os.environ.get("CONNECTOR_TEST_BACKEND", "local")
KIND_CLUSTER = os.environ.get("KIND_CLUSTER_NAME", "connector-operator-test")


@dataclass
class Cluster:
    kubeconfig: Path
    backend: str
    plane: controlplane.ControlPlane | None = None  # only for the local backend

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> str:
        result = subprocess.run(
            ["kubectl", f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result.stdout + result.stderr


def _local(tmp: Path) -> Iterator[Cluster]:
    with controlplane.running(tmp / "control-plane") as plane:
        # A kubectl of the same version as the API server, built with it, comes first on PATH.
        os.environ["PATH"] = f"{plane.bin_dir}{os.pathsep}{os.environ['PATH']}"
        yield Cluster(plane.kubeconfig, "local", plane)


def _kind(tmp: Path) -> Iterator[Cluster]:
    if shutil.which("kind") is None:
        raise RuntimeError("CONNECTOR_TEST_BACKEND=kind needs the kind command (and Docker)")
    kubeconfig = tmp / "kind.kubeconfig"
    subprocess.run(
        ["kind", "create", "cluster", "--name", KIND_CLUSTER, "--kubeconfig", str(kubeconfig),
         "--wait", "180s"],
        check=True,
    )  # fmt: skip
    try:
        if image := os.environ.get("OPERATOR_IMAGE"):
            subprocess.run(
                ["kind", "load", "docker-image", image, "--name", KIND_CLUSTER], check=True
            )
        yield Cluster(kubeconfig, "kind")
    finally:
        subprocess.run(["kind", "delete", "cluster", "--name", KIND_CLUSTER], check=False)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    if BACKEND == "local":
        yield from _local(tmp)
    elif BACKEND == "kind":
        yield from _kind(tmp)
    elif BACKEND == "existing":
        yield Cluster(Path(os.environ["KUBECONFIG"]), "existing")
    else:
        raise RuntimeError(f"CONNECTOR_TEST_BACKEND={BACKEND!r}: use local, kind or existing")


@pytest.fixture(scope="session")
def api(cluster: Cluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace, deleted after the test (its objects with it)."""
    core = client.CoreV1Api(api)
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)
