"""Caches and permissions that scale with the Connectors, not with the cluster (issue 6): the
operator's memory with a thousand unrelated Secrets, paginated LISTs, RBAC of exactly the verbs
the code uses, and a namespace-scoped installation (deploy/namespaced/) without cluster-wide
reads."""

from __future__ import annotations

import base64
import concurrent.futures
import datetime
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.conftest import BACKEND, ROOT, Cluster, controlplane
from tests.edc.installation import EdcInstallation
from tests.integration.conftest import (
    OPERATOR_NAMESPACE,
    OPERATOR_SA,
    OPERATOR_USER,
    Connectors,
    Operator,
    api_server_with,
    connector,
    s3,
    secret_manifest,
    service_account_kubeconfig,
    settle,
)
from tests.integration.gateway import GATEWAY_NAMESPACE, GATEWAY_SA, Gateway, Tenant
from tests.support import eventually

GATEWAY_USER = f"system:serviceaccount:{GATEWAY_NAMESPACE}:{GATEWAY_SA}"
pytestmark = pytest.mark.cluster
reads_audit_log = pytest.mark.skipif(
    BACKEND != "local", reason="reads the local control plane's audit log"
)

DEPLOY = ROOT / "deploy"
NAMESPACED = DEPLOY / "namespaced"
MIB = 1024 * 1024
UNRELATED_LABEL = "test.dataspace.dev/unrelated"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
CREDENTIALS = {
    "username_read": "RBAC-READ-1a2b",
    "password_read": "RBAC-PASS-READ-3c4d",
    "username_write": "RBAC-WRITE-5e6f",
    "password_write": "RBAC-PASS-WRITE-7a8b",
}
Permission = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)


# -- the API server's audit log, reads included -------------------------------------------------
@pytest.fixture(scope="module")
def audited_reads(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The local control plane's audit policy records writes only. For this module's tests the
    API server runs with the same policy plus every request of the operator's and the gateway's
    users (reads included, at Metadata level); the usual policy is restored afterwards."""
    policy = controlplane.audit_policy((OPERATOR_USER, GATEWAY_USER))
    path = tmp_path_factory.mktemp("audit") / "audit-policy.yaml"
    path.write_text(policy)
    with api_server_with(cluster, f"--audit-policy-file={path}"):
        yield


@dataclass
class AuditWindow:
    """The audit log from the moment the window was opened on."""

    path: Path
    offset: int
    since: datetime.datetime

    @classmethod
    def open(cls, cluster: Cluster) -> AuditWindow:
        assert cluster.plane is not None
        path = cluster.plane.audit_log
        offset = path.stat().st_size if path.exists() else 0
        return cls(path, offset, datetime.datetime.now(datetime.UTC))

    def requests(self, user: str) -> list[dict[str, Any]]:
        """The requests `user` sent since the window opened, each once (a watch is logged when
        its response starts and again when it ends: the last record wins)."""
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        by_id: dict[str, dict[str, Any]] = {}
        for line in data[: data.rfind(b"\n") + 1].splitlines():
            entry = json.loads(line)
            if entry["user"]["username"] != user:
                continue
            received = datetime.datetime.fromisoformat(entry["requestReceivedTimestamp"])
            if received >= self.since:  # not a watch of an earlier process that ended now
                by_id[entry["auditID"]] = entry
        return list(by_id.values())


def _resource(entry: dict[str, Any]) -> str:
    ref = entry["objectRef"]
    return str(ref["resource"]) + (f"/{ref['subresource']}" if ref.get("subresource") else "")


# -- the operator, as a process ---------------------------------------------------------------
def _metrics(op: Operator) -> dict[str, float]:
    try:
        text = op.metrics()
    except OSError:
        return {}
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _wait_idle(op: Operator, running: int, timeout: float = 120.0) -> None:
    """Until the operator leads, holds `running` Connectors that are Running, has nothing queued
    and has finished no reconcile pass for the last two seconds."""
    deadline = time.monotonic() + timeout
    last: float | None = None
    while time.monotonic() < deadline:
        assert op.alive(), f"the operator exited:\n{op.logs()[-3000:]}"
        m = _metrics(op)
        passes = sum(v for k, v in m.items() if k.startswith("connector_operator_reconciles_total"))
        ready = (
            m.get("connector_operator_leader") == 1
            and m.get("connector_operator_queue_depth") == 0
            and m.get(
                f'connector_operator_connectors{{namespace="{op.namespace}",phase="Running"}}'
            )
            == running
            and passes >= running
        )
        if ready and passes == last:
            return
        last = passes if ready else None
        time.sleep(2)
    raise AssertionError(f"the operator did not become idle in {timeout}s: {_metrics(op)}")


def _status_bytes(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of /proc/<pid>/status: VmRSS (resident now), VmHWM (its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _measure(operator: Operator) -> tuple[int, int]:
    """(peak RSS once idle, the high-water mark) of a fresh operator over two Connectors; it is
    stopped after."""
    _wait_idle(operator, running=2)
    rss = _peak_rss(operator)
    assert operator.process is not None
    high_water = _status_bytes(operator.process.pid, "VmHWM")
    operator.stop()
    return rss, high_water


def _peak_rss(op: Operator, samples: int = 6, interval: float = 1.0) -> int:
    """The largest of a few RSS samples of an idle operator (`python -m connector_operator` is
    the process itself, not a wrapper)."""
    assert op.process is not None
    peak = 0
    for _ in range(samples):
        peak = max(peak, _status_bytes(op.process.pid))
        time.sleep(interval)
    return peak


def _create_unrelated_secrets(
    api: client.ApiClient, namespace: str, count: int, size: int, *, kubectl_applied: bool
) -> None:
    """`count` Secrets of `size` random bytes (nothing compresses), by 8 threads; each body is
    made when it is sent, so the test never holds more than a few of them. `kubectl_applied`:
    each also carries the annotation that a client-side `kubectl apply` writes, the whole
    manifest (its data included), as every Secret applied that way does."""
    core = client.CoreV1Api(api)

    def create(index: int) -> None:
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"unrelated-{index:04d}", "labels": {UNRELATED_LABEL: "true"}},
            "type": "Opaque",
            "data": {"blob": base64.b64encode(os.urandom(size)).decode()},
        }
        if kubectl_applied:
            body["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(body)}
        core.create_namespaced_secret(namespace, body)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, range(count)))


def _delete_unrelated_secrets(api: client.ApiClient, namespace: str) -> None:
    """One DELETE of the collection; its answer (every deleted Secret) is drained, not held."""
    response = client.CoreV1Api(api).delete_collection_namespaced_secret(
        namespace, label_selector=UNRELATED_LABEL, _preload_content=False
    )
    for _ in response.stream(65536):
        pass
    response.release_conn()


# -- RBAC ---------------------------------------------------------------------------------------
def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _permissions(rules: list[dict[str, Any]]) -> set[Permission]:
    for rule in rules:
        assert "resourceNames" not in rule, "a rule narrowed to names grants less than a verb"
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _bind(
    api: client.ApiClient, namespace: str, role: dict[str, Any], subject: dict[str, str]
) -> None:
    """Creates `role` in `namespace` and binds it to `subject`, a ServiceAccount."""
    rbac = client.RbacAuthorizationV1Api(api)
    name = role["metadata"]["name"]
    rbac.create_namespaced_role(namespace, {**role, "metadata": {"name": name}})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", **subject}],
        },
    )


def _allowed(
    api: client.ApiClient, user: str, verb: str, resource: str, namespace: str, *, group: str = ""
) -> bool:
    """What the API server's authorizer answers for `user` (a ServiceAccount), asked as admin."""
    sa_namespace = user.split(":")[2]
    review = client.AuthorizationV1Api(api).create_subject_access_review(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}",
                           "system:authenticated"],
                "resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                                       "namespace": namespace},
            },
        }
    )  # fmt: skip
    return bool(review.status.allowed)


def _config_hash(connectors: Connectors, name: str) -> str:
    """The config hash of the Connector's Deployment (the data plane's, under edc)."""
    deployment = connectors.deployment(name) or _data_plane(connectors, name)
    assert deployment is not None
    return str(deployment.spec.template.metadata.annotations["dataspace.dev/config-hash"])


def _data_plane(connectors: Connectors, name: str) -> Any:
    apps = connectors.apps
    return apps.read_namespaced_deployment(f"edc-{name}-dp", connectors.namespace)


def _s3_ref(name: str, secret: str) -> dict[str, Any]:
    return connector(
        name, "AmazonS3", bucket_name="orders", region="eu-central-1",
        credentials_secret_ref={"name": secret},
    )  # fmt: skip


def _azure(name: str) -> dict[str, Any]:
    return connector(
        name, "AzureStorage", container_name="invoices",
        url="https://invoicesexample.blob.core.windows.net",
        account_name_read="invoicesexample", account_key_read="read-key-example",
        account_name_write="invoicesexample", account_key_write="write-key-example",
    )  # fmt: skip


# -- the tests ----------------------------------------------------------------------------------
@reads_audit_log
@pytest.mark.parametrize("kubectl_applied", [False, True], ids=["created", "kubectl-applied"])
def test_unrelated_secrets_do_not_grow_the_operator(
    audited_reads: None,
    start_operator: Callable[..., Operator],
    connectors: Connectors,
    api: client.ApiClient,
    kubectl_applied: bool,
) -> None:
    """1,000 Secrets of 100 KiB in the very namespace the operator watches (it sees them, so it
    must not hold them) cost it less than 10 MiB, also when each was applied by `kubectl apply`
    and so carries its data a second time, in an annotation (metadata). Both measurements are
    of a fresh process over the same converged Connectors, idle, as the peak of a few RSS
    samples; the LISTs that read the Secrets are paginated."""
    cluster, namespace = connectors.cluster, connectors.namespace
    connectors.apply(s3("mem-s3"))
    connectors.apply(connector("mem-http"))
    first = start_operator()
    connectors.wait_phase("mem-s3", "Running")
    connectors.wait_phase("mem-http", "Running")
    _wait_idle(first, running=2)
    first.stop()

    baseline, baseline_high_water = _measure(start_operator())

    try:
        started = time.monotonic()
        _create_unrelated_secrets(
            api, namespace, count=1000, size=100 * 1024, kubectl_applied=kubectl_applied
        )
        print(f"created 1,000 Secrets of 100 KiB in {time.monotonic() - started:.0f}s")
        window = AuditWindow.open(cluster)
        measured, high_water = _measure(start_operator())
    finally:
        _delete_unrelated_secrets(api, namespace)

    growth = measured - baseline
    print(
        f"operator RSS: {baseline / MIB:.1f} MiB without, {measured / MIB:.1f} MiB with 1,000 "
        f"unrelated Secrets of 100 KiB: {growth / MIB:+.1f} MiB (high-water marks, VmHWM: "
        f"{baseline_high_water / MIB:.1f} and {high_water / MIB:.1f} MiB)"
    )
    assert growth < 10 * MIB, f"the operator grew by {growth / MIB:.1f} MiB (budget 10 MiB)"

    lists = [
        e["requestURI"]
        for e in window.requests(OPERATOR_USER)
        if e["verb"] == "list"
        and e["objectRef"].get("resource") == "secrets"
        and e["objectRef"].get("namespace") == namespace
    ]
    print("the operator's Secret LISTs:", *lists, sep="\n  ")
    assert lists, "the operator listed no Secrets"
    assert all("limit=" in uri for uri in lists), f"an unpaginated LIST: {lists}"
    assert any("continue=" in uri for uri in lists), "1,001 Secrets span more than one page"


def _used(
    window: AuditWindow, user: str
) -> tuple[set[Permission], list[str], list[str], list[str]]:
    """The permissions `user` used in the window, read from the audit log (see the operator's
    test below for what counts), with the refused requests, the discovery requests and the
    resources created by server-side apply."""
    used: set[Permission] = set()
    refused, discovery, applied_new = [], [], []
    for entry in window.requests(user):
        code = entry["responseStatus"]["code"]
        if "objectRef" not in entry:
            discovery.append(entry["requestURI"])
            continue
        if code == 403:
            refused.append(f"{entry['verb']} {entry['requestURI']}")
        if code == 403 or code >= 500:
            continue  # a 404 or 409 was authorized: the permission was used
        verbs = {entry["verb"]}
        if (entry["verb"], code) == ("patch", 201):  # a server-side apply that created
            verbs.add("create")
            applied_new.append(_resource(entry))
        used |= {(entry["objectRef"].get("apiGroup", ""), _resource(entry), v) for v in verbs}
    return used, refused, discovery, applied_new


# Used only where Deployments do not count their terminating pods (before Kubernetes 1.35):
# tests/integration/test_stop_pods.py runs the operator with these rights on such a cluster,
# where a stop is finished only once their watches have listed the pods.
OLDER_CLUSTERS_ONLY = {
    ("", "pods", "list"), ("", "pods", "watch"),
    ("apps", "replicasets", "list"), ("apps", "replicasets", "watch"),
}  # fmt: skip


@reads_audit_log
def test_rbac_grants_exactly_the_verbs_the_operator_uses(
    audited_reads: None,
    edc: EdcInstallation,
    edc_operator: Callable[..., Operator],
    connectors: Connectors,
    api: client.ApiClient,
) -> None:
    """Every (apiGroup, resource, verb) of deploy/rbac.yaml's ClusterRole and leader-election
    Role is used by one scenario that walks every path (leader election, the hash key's Secret,
    the edc profile with its Ingress and the installation's Secrets, inline and referenced
    credentials and a rotation, HttpData, a stop), and nothing else is, but for the pods' and
    ReplicaSets' watches of an older cluster (`OLDER_CLUSTERS_ONLY`). The generic profile uses a
    subset: the same kinds, without the Ingress.

    "Used" is read from the API server's audit log: every request of the operator's user during
    the test that the API server authorized, in any namespace (a 404 too: the get before a child
    is created, which finds nothing, is authorized first). The audit log records the request's
    verb: get, list, watch (a LIST with watch=true), create (POST), update (PUT), patch (PATCH,
    server-side apply included). A server-side apply that creates its object is recorded as verb
    "patch" with responseStatus.code 201 (seen here for the first apply of each child), and the
    API server authorizes it twice: "patch" for the request, then "create" for the object it
    makes (k8s.io/apiserver endpoints/handlers/patch.go, createAuthorizerAttributes).
    So a 201 "patch" uses both create and patch. Requests without an objectRef (discovery) need
    no rule of ours: every authenticated user may make them.
    """
    cluster, namespace = connectors.cluster, connectors.namespace
    docs = _documents((DEPLOY / "rbac.yaml").read_text())
    cluster_role = _find(docs, "ClusterRole", "connector-operator")
    lease_role = _find(docs, "Role", "connector-operator-leader-election")
    granted = _permissions(cluster_role["rules"]) | _permissions(lease_role["rules"])
    _bind(api, namespace, lease_role, {"name": OPERATOR_SA, "namespace": OPERATOR_NAMESPACE})
    eventually(
        lambda: _allowed(
            api, OPERATOR_USER, "create", "leases", namespace, group="coordination.k8s.io"
        ),
        what="the lease Role to take effect",
    )
    connectors.apply(secret_manifest("rbac-creds", CREDENTIALS))

    window = AuditWindow.open(cluster)
    # The operator's own namespace is the test's: the Lease, the hash key and the installation's
    # Secrets live there.
    connectors.apply(secret_manifest(f"vault-{namespace}", {"token": edc.vault.token}))
    connectors.apply(secret_manifest(f"db-{namespace}", {"user": "edc", "password": "pw"}))
    op = edc_operator(
        CONNECTOR_OPERATOR_LEADER_ELECTION="true", CONNECTOR_OPERATOR_LEASE_NAMESPACE=namespace
    )
    connectors.apply(s3("rbac-inline"))
    connectors.apply(_s3_ref("rbac-ref", "rbac-creds"))
    connectors.apply(connector("rbac-http"))
    for name in ("rbac-inline", "rbac-ref", "rbac-http"):
        connectors.wait_phase(name, "Running")
    before = _config_hash(connectors, "rbac-ref")
    connectors.apply(secret_manifest("rbac-creds", {**CREDENTIALS, "password_read": "rotated"}))
    eventually(lambda: _config_hash(connectors, "rbac-ref") != before, what="the pod to roll")
    connectors.annotate("rbac-http", "stop")
    connectors.wait_phase("rbac-http", "Stopped")
    settle(3)  # a Lease renewal (every 2s) at the least
    op.stop()

    used, refused, discovery, applied_new = _used(window, OPERATOR_USER)
    print("used:", *sorted(used), sep="\n  ")
    print("created by server-side apply (audited as patch, 201):", sorted(set(applied_new)))
    if discovery:
        print("discovery requests (not ours to grant):", *sorted(set(discovery)), sep="\n  ")
    assert not refused, f"the API server refused the operator: {refused}"
    assert used == granted - OLDER_CLUSTERS_ONLY, (
        f"used but not granted: {sorted(used - granted)}; "
        f"granted but never used: {sorted(granted - used - OLDER_CLUSTERS_ONLY)}"
    )


def _render_namespaced(cluster: Cluster) -> list[dict[str, Any]]:
    return _documents(cluster.kubectl("kustomize", str(NAMESPACED)))


def test_the_namespaced_installation_is_deploy_without_cluster_wide_rights(
    cluster: Cluster,
) -> None:
    """deploy/namespaced/ grants per watched namespace what deploy/'s ClusterRole grants, keeps
    its ServiceAccount, leader election and Deployment, and has no cluster-scoped RBAC; the files
    it must copy (kustomize loads nothing from above an overlay inside it) have not drifted."""
    for copied in ("namespace.yaml", "operator.yaml"):
        assert (NAMESPACED / "operator" / copied).read_text() == (DEPLOY / copied).read_text(), (
            f"deploy/namespaced/operator/{copied} is no longer a copy of deploy/{copied}"
        )
    deploy = _documents((DEPLOY / "rbac.yaml").read_text())
    rendered = _render_namespaced(cluster)
    assert not {d["kind"] for d in rendered} & {"ClusterRole", "ClusterRoleBinding"}

    subject = {"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": OPERATOR_NAMESPACE}
    watched = sorted(
        d["metadata"]["namespace"]
        for d in rendered
        if d["kind"] == "Role" and d["metadata"]["name"] == "connector-operator"
    )
    assert watched, "no namespace is watched"
    for ns in watched:
        [role] = [d for d in rendered if d["kind"] == "Role" and d["metadata"] == {
            "name": "connector-operator", "namespace": ns}]  # fmt: skip
        assert role["rules"] == _find(deploy, "ClusterRole", "connector-operator")["rules"]
        [binding] = [
            d for d in rendered
            if d["kind"] == "RoleBinding" and d["metadata"]["namespace"] == ns
            and d["roleRef"]["name"] == "connector-operator"
        ]  # fmt: skip
        assert binding["subjects"] == [subject]
    lease = _find(rendered, "Role", "connector-operator-leader-election")
    assert lease["metadata"]["namespace"] == OPERATOR_NAMESPACE
    assert lease["rules"] == _find(deploy, "Role", "connector-operator-leader-election")["rules"]
    key = _find(rendered, "Role", "connector-operator-hash-key")
    assert key["metadata"]["namespace"] == OPERATOR_NAMESPACE
    for name in ("connector-operator-leader-election", "connector-operator-hash-key"):
        binding = _find(rendered, "RoleBinding", name)
        assert binding["subjects"] == [subject] and binding["roleRef"]["name"] == name
    _find(rendered, "ServiceAccount", OPERATOR_SA)

    deployment = _find(rendered, "Deployment", "connector-operator")
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert sorted(env["CONNECTOR_OPERATOR_NAMESPACES"]["value"].split(",")) == watched


def test_a_namespace_scoped_installation_needs_no_cluster_wide_reads(
    start_operator: Callable[..., Operator],
    connectors: Connectors,
    api: client.ApiClient,
    tmp_path: Path,
) -> None:
    """An operator whose ServiceAccount holds only deploy/namespaced/'s Roles, all bound in the
    test's namespace (the one it watches, and its lease and hash key namespace), runs and stops
    a Connector of each kind; that ServiceAccount cannot read Secrets anywhere else."""
    cluster, namespace = connectors.cluster, connectors.namespace
    account = "scoped-operator"
    user = f"system:serviceaccount:{namespace}:{account}"
    client.CoreV1Api(api).create_namespaced_service_account(
        namespace, {"metadata": {"name": account}}
    )
    roles = [d for d in _render_namespaced(cluster) if d["kind"] == "Role"]
    assert {r["metadata"]["name"] for r in roles} == {
        "connector-operator", "connector-operator-leader-election", "connector-operator-hash-key"
    }  # fmt: skip
    for role in roles:
        _bind(api, namespace, role, {"name": account, "namespace": namespace})
    eventually(
        lambda: (
            _allowed(api, user, "create", "leases", namespace, group="coordination.k8s.io")
            and _allowed(api, user, "list", "secrets", namespace)
        ),
        what="the Roles to take effect",
    )

    kubeconfig = service_account_kubeconfig(
        cluster, api, namespace, account, tmp_path / "scoped.kubeconfig"
    )
    op = start_operator(
        kubeconfig,
        CONNECTOR_OPERATOR_LEADER_ELECTION="true",
        CONNECTOR_OPERATOR_LEASE_NAMESPACE=namespace,
    )
    connectors.apply(secret_manifest("scoped-creds", CREDENTIALS))
    kinds = {
        "scoped-s3": s3("scoped-s3"),
        "scoped-s3-ref": _s3_ref("scoped-s3-ref", "scoped-creds"),
        "scoped-azure": _azure("scoped-azure"),
        "scoped-http": connector("scoped-http"),
    }
    for manifest in kinds.values():
        connectors.apply(manifest)
    for name in kinds:
        connectors.wait_phase(name, "Running")
    for name in kinds:
        connectors.annotate(name, "stop")
    for name in kinds:
        connectors.wait_phase(name, "Stopped")
    assert op.alive()
    op.stop()
    assert "forbidden" not in op.logs().lower(), "the operator was refused something"

    for verb in ("list", "watch", "get"):
        assert not _allowed(api, user, verb, "secrets", ""), f"{verb} Secrets cluster-wide"
        for other in ("default", "kube-system", OPERATOR_NAMESPACE):
            assert not _allowed(api, user, verb, "secrets", other), f"{verb} Secrets in {other}"
    # The same, as the ServiceAccount itself would find out.
    scoped = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    for attempt in (
        lambda: scoped.list_secret_for_all_namespaces(limit=1),
        lambda: scoped.list_namespaced_secret("default", limit=1),
    ):
        with pytest.raises(client.ApiException) as refused:
            attempt()
        assert refused.value.status == 403


@reads_audit_log
def test_rbac_grants_exactly_the_verbs_the_gateway_uses(
    audited_reads: None,
    start_gateway: Callable[..., Gateway],
    tenants: tuple[Tenant, Tenant],
    connectors: Connectors,
) -> None:
    """Every (apiGroup, resource, verb) of deploy/gateway/rbac.yaml's ClusterRole is used by a
    walk through every endpoint, and nothing else is (the audit log, as for the operator)."""
    granted = _permissions(
        _find(_documents((DEPLOY / "gateway" / "rbac.yaml").read_text()), "ClusterRole",
              "connector-gateway")["rules"]
    )  # fmt: skip
    a, _ = tenants
    window = AuditWindow.open(connectors.cluster)
    gateway = start_gateway()
    payload = {"storage_type": "HttpData", "storage_config": {}}
    assert gateway.call("POST", "/connectors/rbac", a.editor, payload).status == 201
    assert gateway.call("PUT", "/connectors/rbac", a.editor, payload).status == 200
    # start reads the Connector first (get): it is refused when FAILED
    assert gateway.call("PUT", "/connectors/rbac/start", a.editor).status in (200, 202)
    assert gateway.call("GET", "/connectors", a.viewer).status == 200
    assert gateway.call("DELETE", "/connectors/rbac", a.editor).status == 202
    gateway.stop()  # its watches end, and are audited
    used, refused, _, _ = _used(window, GATEWAY_USER)
    print("used:", *sorted(used), sep="\n  ")
    assert not refused, f"the API server refused the gateway: {refused}"
    assert used == granted, (
        f"used but not granted: {sorted(used - granted)}; "
        f"granted but never used: {sorted(granted - used)}"
    )
