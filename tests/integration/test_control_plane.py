"""The local control plane is a real Kubernetes: workloads, garbage collection, auth, CEL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.utils import parse_quantity

from tests.conftest import BACKEND, Cluster, controlplane
from tests.support import eventually

pytestmark = pytest.mark.cluster
local_only = pytest.mark.skipif(
    BACKEND != "local", reason="inspects the processes of the local control plane"
)


def test_api_server_reports_its_real_version(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("get", "--raw=/version"))
    build_dir = controlplane.binaries(build=False).name
    if BACKEND == "local":
        assert build_dir.startswith(f"k8s-{version['gitVersion']}-")
    assert version["gitVersion"].startswith("v1.")
    assert version["gitTreeState"] == "clean"


def test_deployment_becomes_available(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="web", image="example.invalid/web")]
                    ),
                ),
            ),
        ),
    )

    def available() -> bool:
        status = apps.read_namespaced_deployment_status("web", namespace).status
        conditions = {c.type: c.status for c in status.conditions or []}
        return status.available_replicas == 2 and conditions.get("Available") == "True"

    eventually(available, what="Deployment web Available with 2 replicas")
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Running"
        assert pod.spec.node_name
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"


def test_deleting_an_owner_deletes_its_dependents(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    reference = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="dependent", owner_references=[reference])
        ),
    )
    core.delete_namespaced_config_map("owner", namespace)

    def dependent_gone() -> bool:
        names = [c.metadata.name for c in core.list_namespaced_config_map(namespace).items]
        return "dependent" not in names

    eventually(dependent_gone, what="the garbage collector to delete the dependent")


def test_service_account_token_authenticates_and_rbac_limits_it(
    api: client.ApiClient, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="configmap-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
            ],
        ),
    )
    token = core.create_namespaced_service_account_token(
        "reader", namespace, client.AuthenticationV1TokenRequest(spec={"audiences": []})
    ).status.token
    admin = json.loads(cluster.kubectl("config", "view", "--raw", "-o", "json"))
    reader = {
        **admin,
        "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [
            {"name": "r", "context": {"cluster": admin["clusters"][0]["name"], "user": "reader"}}
        ],
        "current-context": "r",
    }
    kubeconfig = tmp_path / "reader.kubeconfig"
    kubeconfig.write_text(json.dumps(reader))

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", f"--kubeconfig={kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=False,
        )

    whoami = kubectl("auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    user = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
    assert user == f"system:serviceaccount:{namespace}:reader"
    allowed = kubectl("get", "configmaps", "-n", namespace)
    assert allowed.returncode == 0, allowed.stderr
    denied = kubectl("get", "secrets", "-n", namespace)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert f'User "system:serviceaccount:{namespace}:reader" cannot list resource "secrets"' in (
        denied.stderr
    )


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.cel.example.com}
spec:
  group: cel.example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              min: {type: integer}
              max: {type: integer}
            x-kubernetes-validations:
            - rule: self.min <= self.max
              message: spec.min must not exceed spec.max
"""


def test_crd_cel_rule_refuses_an_invalid_object(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=CRD)
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.cel.example.com", "--timeout=60s"
    )
    try:
        good = (
            "apiVersion: cel.example.com/v1\nkind: Widget\n"
            "metadata: {name: good}\nspec: {min: 1, max: 2}\n"
        )
        cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=good)
        bad = good.replace("good", "bad").replace("max: 2", "max: 0")
        out = cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=bad, check=False)
        assert "spec.min must not exceed spec.max" in out
        assert "bad" not in cluster.kubectl("get", "widgets", "-n", namespace, "-o", "name")
    finally:
        cluster.kubectl("delete", "crd", "widgets.cel.example.com", "--wait=false")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes; /proc tells the state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


@local_only
def test_teardown_leaves_no_process_port_or_directory(tmp_path: Path) -> None:
    workdir = tmp_path / "second"
    with controlplane.running(workdir) as plane:
        pids, ports = plane.pids(), dict(plane.ports)
        assert len(pids) == 5
        assert all(_alive(pid) for pid in pids)
        assert _listening(ports["apiserver"])
        # A component that dies is noticed, and named with its log.
        plane.components["kube-scheduler"].process.kill()  # type: ignore[union-attr]
        time.sleep(0.5)
        with pytest.raises(controlplane.ControlPlaneError, match="kube-scheduler exited"):
            plane.check_alive()
    assert not any(_alive(pid) for pid in pids)
    assert not any(_listening(port) for port in ports.values())
    # The fixture's own directory is removed by its owner; running() removes only what it made.
    with controlplane.running() as plane:
        made = plane.workdir
        pids = plane.pids()
    assert not made.exists()
    assert not any(_alive(pid) for pid in pids)


@local_only
def test_a_component_that_fails_to_start_reports_its_log(tmp_path: Path) -> None:
    bad = {"kube-apiserver": ["--no-such-flag=1"]}
    with (
        pytest.raises(controlplane.ControlPlaneError) as error,
        controlplane.running(tmp_path / "bad", extra_args=bad),
    ):
        pass
    assert "kube-apiserver exited" in str(error.value)
    assert "no-such-flag" in str(error.value)


@local_only
def test_interrupted_run_leaves_no_process(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) on `controlplane.py run` and SIGKILL of its parent both clean up."""
    workdir = tmp_path / "interrupted"
    script = Path(controlplane.__file__)
    proc = subprocess.Popen(
        [sys.executable, str(script), "run", "--dir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once ready
    assert line.startswith("export KUBECONFIG=")
    children = _children(proc.pid)
    assert len(children) == 5
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    eventually(lambda: not any(_alive(pid) for pid in children), 30, "components to exit")
    assert not workdir.exists()

    killed = subprocess.Popen(
        [sys.executable, str(script), "run", "--dir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert killed.stdout is not None
    assert killed.stdout.readline().startswith("export KUBECONFIG=")
    children = _children(killed.pid)
    killed.kill()  # no chance to clean up: the components die with their parent
    killed.wait()
    eventually(lambda: not any(_alive(pid) for pid in children), 30, "orphans to exit")


def _children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=True
    )
    return [int(p) for p in out.stdout.split()]


@local_only
def test_the_node_holds_thousands_of_pods_by_default(cluster: Cluster) -> None:
    """A Connector per pod at 100m CPU: the default node takes 5,000 of them (a stock kwok node
    stops at 110 pods)."""
    [node] = json.loads(cluster.kubectl("get", "nodes", "-o", "json"))["items"]
    allocatable = node["status"]["allocatable"]
    assert parse_quantity(allocatable["pods"]) >= 5000
    assert parse_quantity(allocatable["cpu"]) >= 5000 * parse_quantity("100m")


@local_only
def test_sizing_sets_the_nodes_capacity_and_the_controllers_client_limits(
    tmp_path: Path,
) -> None:
    sizing = controlplane.Sizing(
        node_pods=3, controller_manager_qps=150, controller_manager_burst=300, scheduler_qps=75
    )
    with controlplane.running(tmp_path / "sized", sizing=sizing) as plane:
        kcm = Path(f"/proc/{plane.components['kube-controller-manager'].process.pid}/cmdline")  # type: ignore[union-attr]
        scheduler = Path(f"/proc/{plane.components['kube-scheduler'].process.pid}/cmdline")  # type: ignore[union-attr]
        assert {"--kube-api-qps=150", "--kube-api-burst=300"} <= set(
            kcm.read_bytes().decode().split("\0")
        )
        assert "--kube-api-qps=75" in scheduler.read_bytes().decode().split("\0")
        kubectl = controlplane.binaries(build=False) / "kubectl"
        env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}

        def run(*args: str) -> str:
            return subprocess.run(
                [str(kubectl), *args], env=env, check=True, capture_output=True, text=True
            ).stdout

        run("create", "deployment", "four", "--image=example.invalid/web", "--replicas=4")

        def phases() -> list[str] | None:
            out = run("get", "pods", "-l", "app=four", "-o", "jsonpath={.items[*].status.phase}")
            found = sorted(out.split())
            return found if found.count("Running") == 3 and len(found) == 4 else None

        # Three pods fit on the node; the fourth stays Pending, unschedulable.
        assert eventually(phases, what="3 of 4 pods Running") == [
            "Pending", "Running", "Running", "Running",
        ]  # fmt: skip
    assert sizing.report()["scheduler_burst"] == "100 (upstream default)"
