"""The Helm chart (deploy/helm/connector-operator) with the real helm (tests/helm): it lints, its
schema refuses bad values naming them, every value reaches the operator as a variable its own
parser accepts, it installs into a namespace that enforces the restricted Pod Security Standard,
upgrades, and uninstalls leaving the CRD and so the Connectors; and it grants and runs what
deploy/ (kustomize) does.

The CRD is cluster-scoped, shared by every test of a control plane: the install tests take it
from the `crd` fixture (crds/, as every other test does), so helm finds it present and skips
the chart's crds/ (which tests/unit/test_helm_chart.py holds to crds/'s content). helm thus
never creates, changes nor deletes it here, and the install test asserts exactly that. Every
other cluster-scoped object a release makes is named after the release, one per test."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from connector_operator import config
from connector_operator.gateway import settings as gateway_settings
from tests.conftest import ROOT, Cluster
from tests.helm.cli import CHART, Helm, documents
from tests.integration.conftest import Connectors, connector

pytestmark = pytest.mark.cluster

OPERATOR_NAMESPACE = "connector-operator-system"
RULES = CHART / "files" / "prometheus-rules.yaml"
DASHBOARD = CHART / "files" / "dashboard.json"
# Every setting away from its default (and the optional parts on).
EVERYTHING: dict[str, Any] = {
    "profile": "generic",
    "watchNamespaces": ["team-a", "team-b"],
    "workers": 8,
    "resyncSeconds": 1_000_000,  # a values file reads it as a float: no exponent may reach env
    "watchGraceSeconds": 30,
    "hashKeySecret": "hash-key",
    "logging": {"level": "DEBUG", "format": "text"},
    "leaderElection": {
        "leaseName": "lease",
        "leaseDurationSeconds": 20,
        "renewDeadlineSeconds": 12,
        "retryPeriodSeconds": 3,
    },
    "health": {"port": 9091},
    "metrics": {
        "port": 9090,
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True},
    },
    "dashboard": {"enabled": True},
    "connectors": {
        "image": "registry.example.com/connector:1.0",
        "imagePullPolicy": "Always",
        "ports": [{"name": "http", "port": 8080}, {"name": "management", "port": 8181}],
        "resources": {"requests": {"cpu": "200m"}, "limits": {"memory": "1Gi"}},
        "readinessProbe": "/ready@management",
        "livenessProbe": "/live",
        "progressDeadlineSeconds": 300,
    },
    "storageCheck": {
        "mode": "enforce",
        "intervalSeconds": 60,
        "write": False,
        "concurrency": 2,
        "timeoutSeconds": 10,
    },
    "gateway": {
        "enabled": True,
        "prefix": "/dataspace",
        "tenancy": {"users": {"alice@example.com": "team-a"}, "groups": {}},
        "audiences": ["connector-gateway", "platform"],
        "port": 9443,
        "maxBodyBytes": 1_048_576,
        "streamRecheckSeconds": 0.5,
        "streamKeepaliveSeconds": 5,
        "logLevel": "WARNING",
    },
}


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm without a cluster: lint and template."""
    return Helm(tmp_path_factory.mktemp("helm"))


@pytest.fixture
def cluster_helm(cluster: Cluster, crd: None, tmp_path: Path) -> Helm:
    """helm against the test cluster, the CRD already there (see the module's docstring)."""
    return Helm(tmp_path / "helm", cluster.kubeconfig)


@pytest.fixture
def restricted(cluster: Cluster, namespace: str) -> str:
    """The test's namespace, enforcing (and warning about) the restricted standard."""
    cluster.kubectl(
        "label", "namespace", namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
        "pod-security.kubernetes.io/warn=restricted",
        "pod-security.kubernetes.io/warn-version=latest",
    )  # fmt: skip
    return namespace


def values_file(path: Path, values: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(values))
    return str(path)


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {[d['kind'] for d in docs]}"
    return found[0]


def container_env(deployment: dict[str, Any]) -> dict[str, str]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


# --- helm lint and the schema ----------------------------------------------------------------


def test_the_chart_lints(helm: Helm, tmp_path: Path) -> None:
    everything = values_file(tmp_path / "everything.yaml", EVERYTHING)
    for args in ([], ["--strict"], ["--strict", "-f", everything]):
        out = helm.run("lint", str(CHART), *args).stdout
        assert "1 chart(s) linted, 0 chart(s) failed" in out, out


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("storageCheck.mode=sometimes", "/storageCheck/mode"),
        ("storageCheck.timeoutSeconds=121", "/storageCheck/timeoutSeconds"),
        ("storageCheck.write=maybe", "/storageCheck/write"),
        ("workers=0", "/workers"),
        ("resyncSeconds=5", "/resyncSeconds"),
        ("profile=edc2", "/profile"),
        ("replicaCount=0", "/replicaCount"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("logging.level=TRACE", "/logging/level"),
        ("metrics.port=70000", "/metrics/port"),
        ("watchNamespaces={Team_A}", "/watchNamespaces/0"),
        ("connectors.ports[0].name=HTTP,connectors.ports[0].port=80", "/connectors/ports/0/name"),
        ("connectors.readinessProbe=health", "/connectors/readinessProbe"),
        ("edc.datasourceUrl=postgres://db/edc", "/edc/datasourceUrl"),
        ("edc.datasourcePerConnector=table", "/edc/datasourcePerConnector"),
        ("edc.publicHost=", "/edc/publicHost"),  # required by the edc profile
        ("edc.trustedIssuers={https://issuer}", "/edc/trustedIssuers/0"),
        ("gateway.maxBodyBytes=10", "/gateway/maxBodyBytes"),
        ("metrics.serviceMonitor.interval=often", "/metrics/serviceMonitor/interval"),
        ("storagecheck.mode=off", "additional properties 'storagecheck' not allowed"),
        # Two replicas would both reconcile.
        ("leaderElection.enabled=false", "/replicaCount"),
        # Across two fields: the template says it.
        ("leaderElection.leaseDurationSeconds=5,leaderElection.renewDeadlineSeconds=5",
         "renewDeadlineSeconds must be shorter than leaderElection.leaseDurationSeconds"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_naming_the_field(helm: Helm, setting: str, named: str) -> None:
    result = helm.run("template", "r", str(CHART), "--set", setting, check=False)
    assert result.returncode != 0, f"{setting} was accepted"
    assert named in result.stderr, result.stderr


def test_every_value_reaches_the_operator_as_a_variable_it_accepts(
    helm: Helm, tmp_path: Path
) -> None:
    """Rendered with every setting changed, the Deployments' environments are what the
    operator's and the gateway's own parsers read back as those settings."""
    docs = helm.template("-f", values_file(tmp_path / "v.yaml", EVERYTHING), namespace="ops")
    operator = find(docs, "Deployment", "connector-operator")
    env = container_env(operator)
    cfg = config.from_env({**env, "CONNECTOR_OPERATOR_LEASE_NAMESPACE": "ops"})
    assert (cfg.profile, cfg.namespaces, cfg.workers) == ("generic", ("team-a", "team-b"), 8)
    assert (cfg.resync_seconds, cfg.watch_grace_seconds) == (1_000_000, 30)
    assert (cfg.hash_key_secret, cfg.log_level, cfg.log_format) == ("hash-key", "DEBUG", "text")
    assert cfg.leader_election
    assert (cfg.lease_name, cfg.lease_namespace) == ("lease", "ops")
    timing = (cfg.lease_duration_seconds, cfg.renew_deadline_seconds, cfg.retry_period_seconds)
    assert timing == (20, 12, 3)
    assert (cfg.metrics_port, cfg.health_port) == (9090, 9091)
    assert (cfg.image, cfg.image_pull_policy) == ("registry.example.com/connector:1.0", "Always")
    assert [(p.name, p.number) for p in cfg.ports] == [("http", 8080), ("management", 8181)]
    assert cfg.resources == {"requests": {"cpu": "200m"}, "limits": {"memory": "1Gi"}}
    assert cfg.readiness_probe is not None and cfg.liveness_probe is not None
    assert (cfg.readiness_probe.path, cfg.readiness_probe.port) == ("/ready", "management")
    assert (cfg.liveness_probe.path, cfg.liveness_probe.port) == ("/live", "http")
    assert cfg.progress_deadline_seconds == 300
    check = cfg.storage_check
    assert (check.mode.value, check.interval_seconds, check.write) == ("enforce", 60, False)
    assert (check.concurrency, check.timeout_seconds) == (2, 10)
    assert not any(name.startswith("CONNECTOR_OPERATOR_EDC_") for name in env)
    ports = operator["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert {p["name"]: p["containerPort"] for p in ports} == {"metrics": 9090, "health": 9091}

    gateway_env = container_env(find(docs, "Deployment", "connector-operator-gateway"))
    gateway = gateway_settings.from_env(gateway_env)
    assert (gateway.prefix, gateway.port) == ("/dataspace", 9443)
    assert gateway.audiences == ("connector-gateway", "platform")
    assert gateway.tenancy.namespace_of("alice@example.com", []) == "team-a"
    assert (gateway.max_body_bytes, gateway.log_level) == (1_048_576, "WARNING")
    assert (gateway.stream_recheck_seconds, gateway.stream_keepalive_seconds) == (0.5, 5)
    assert gateway.tls_cert_file and gateway.tls_key_file
    assert (gateway.namespaces, gateway.edc_profile) == (("team-a", "team-b"), False)

    # The optional parts: the rules and the dashboard are the chart's files, the ServiceMonitor
    # scrapes the metrics Service, and watched namespaces get Roles instead of a ClusterRole.
    rule = find(docs, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    dashboard = find(docs, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["connector-operator.json"]) == json.loads(
        DASHBOARD.read_text()
    )
    monitor, service = (
        find(docs, "ServiceMonitor"),
        find(docs, "Service", "connector-operator-metrics"),
    )
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert [(p["name"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("metrics", "metrics")
    ]
    operator_roles = [
        d
        for d in docs
        if d["kind"] in ("ClusterRole", "Role") and d["metadata"]["name"] == "connector-operator"
    ]
    assert sorted((d["kind"], d["metadata"]["namespace"]) for d in operator_roles) == [
        ("Role", "team-a"),
        ("Role", "team-b"),
    ]


# --- install, upgrade, uninstall --------------------------------------------------------------


def release_name(namespace: str) -> str:
    """Holds the chart's name, so its objects are named after the release alone."""
    return f"connector-operator-{namespace}"


def installed(cluster: Cluster, helm: Helm, release: str, namespace: str) -> list[dict[str, Any]]:
    """Each object of the release's manifest as the API server has it (AssertionError if one
    is missing)."""
    manifest = documents(helm.run("get", "manifest", release, "--namespace", namespace).stdout)
    assert manifest, "the release has no objects"
    found = []
    for doc in manifest:
        ns = doc["metadata"].get("namespace")
        scope = ["--namespace", ns] if ns else []
        out = cluster.kubectl("get", *scope, doc["kind"], doc["metadata"]["name"], "-o", "json")
        found.append(json.loads(out))
    return found


def gone(cluster: Cluster, objects: list[dict[str, Any]]) -> list[str]:
    """Those of `objects` that the API server still has."""
    left = []
    for obj in objects:
        ns = obj["metadata"].get("namespace")
        scope = ["--namespace", ns] if ns else []
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        out = cluster.kubectl(
            "get", *scope, obj["kind"], obj["metadata"]["name"], "--ignore-not-found", "-o", "name"
        )
        if out.strip():
            left.append(name)
    return left


def pod_security_refusals(api: client.ApiClient, namespace: str) -> list[str]:
    """FailedCreate events: how a ReplicaSet reports pods that admission (PSA) refused."""
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    return [f"{e.involved_object.name}: {e.message}" for e in events if e.reason == "FailedCreate"]


def pods_of(api: client.ApiClient, namespace: str, deployment: dict[str, Any]) -> list[Any]:
    selector = ",".join(
        f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items()
    )
    return list(client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items)


@pytest.fixture
def crd_as_found(cluster: Cluster) -> Iterator[dict[str, Any]]:
    """The CRD before the test; after it, it must be the same object, unchanged."""
    before = json.loads(cluster.kubectl("get", "crd", "connectors.dataspace.dev", "-o", "json"))
    yield before
    after = json.loads(cluster.kubectl("get", "crd", "connectors.dataspace.dev", "-o", "json"))
    assert after["metadata"]["uid"] == before["metadata"]["uid"], "the CRD was recreated"
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], (
        "helm changed the CRD"
    )


def test_install_upgrade_and_uninstall_in_a_restricted_namespace(  # noqa: PLR0917 -- fixtures
    cluster: Cluster,
    api: client.ApiClient,
    cluster_helm: Helm,
    restricted: str,
    connectors: Connectors,
    crd_as_found: dict[str, Any],
) -> None:
    namespace, release = restricted, release_name(restricted)
    out = cluster_helm.run(
        "install", release, str(CHART), "--namespace", namespace, "--wait", "--timeout", "120s"
    )
    assert "PodSecurity" not in out.stderr, out.stderr  # the warn label's answer: nothing

    objects = installed(cluster, cluster_helm, release, namespace)
    assert sorted(o["kind"] for o in objects) == [
        "ClusterRole", "ClusterRoleBinding", "Deployment", "PodDisruptionBudget", "Role",
        "RoleBinding", "Service", "ServiceAccount"]  # fmt: skip
    deployment = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["status"].get("availableReplicas") == 2, deployment["status"]
    pods = pods_of(api, namespace, deployment)
    assert len(pods) == 2 and all(p.status.phase == "Running" for p in pods)
    assert not pod_security_refusals(api, namespace)
    assert find(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert container_env(deployment)["CONNECTOR_OPERATOR_PROFILE"] == "edc"
    assert "CONNECTOR_OPERATOR_STORAGE_CHECK" not in container_env(deployment)

    connectors.apply(connector("kept"))
    checks = "storageCheck.mode=enforce,storageCheck.intervalSeconds=90"
    cluster_helm.run("upgrade", release, str(CHART), "--namespace", namespace, "--reuse-values",
                     "--set", checks, "--wait", "--timeout", "120s")  # fmt: skip
    upgraded = find(installed(cluster, cluster_helm, release, namespace), "Deployment")
    env = container_env(upgraded)
    assert env["CONNECTOR_OPERATOR_STORAGE_CHECK"] == "enforce"
    assert env["CONNECTOR_OPERATOR_STORAGE_CHECK_INTERVAL_SECONDS"] == "90"
    assert upgraded["metadata"]["generation"] > deployment["metadata"]["generation"]
    replica_sets = client.AppsV1Api(api).list_namespaced_replica_set(namespace).items
    assert len(replica_sets) == 2, "the upgrade did not roll the pods"
    assert not pod_security_refusals(api, namespace)

    cluster_helm.run("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "120s")
    assert not gone(cluster, objects)
    assert not cluster_helm.run("list", "--namespace", namespace, "-q").stdout.strip()
    # The CRD stays (crd_as_found checks it is the same, unchanged), and with it the Connectors.
    assert connectors.get("kept")["spec"]["storage_type"] == "HttpData"


# Stand-ins for the Prometheus Operator's CRDs (not installed here): they check the shape the
# chart relies on and keep every other field.
MONITORING_CRDS = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors,
          singular: servicemonitor}
  scope: Namespaced
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
              x-kubernetes-preserve-unknown-fields: true
              required: [selector, endpoints]
              properties:
                endpoints:
                  type: array
                  items:
                    type: object
                    x-kubernetes-preserve-unknown-fields: true
                    required: [port]
                    properties: {port: {type: string}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: prometheusrules.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: PrometheusRule, listKind: PrometheusRuleList, plural: prometheusrules,
          singular: prometheusrule}
  scope: Namespaced
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
              required: [groups]
              properties:
                groups:
                  type: array
                  minItems: 1
                  items:
                    type: object
                    x-kubernetes-preserve-unknown-fields: true
                    required: [name, rules]
                    properties:
                      name: {type: string}
                      rules:
                        type: array
                        minItems: 1
                        items:
                          type: object
                          x-kubernetes-preserve-unknown-fields: true
                          required: [expr]
                          properties:
                            alert: {type: string}
                            record: {type: string}
                            expr: {x-kubernetes-int-or-string: true}
"""


@pytest.fixture(scope="session")
def monitoring_crds(cluster: Cluster) -> None:
    """The stand-ins, created only where no such CRD exists (a real cluster keeps its own)."""
    for crd in documents(MONITORING_CRDS):
        name = crd["metadata"]["name"]
        if not cluster.kubectl("get", "crd", name, "--ignore-not-found", "-o", "name").strip():
            cluster.kubectl("create", "-f", "-", stdin=json.dumps(crd))
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


def test_everything_enabled_installs_and_uninstalls_in_a_restricted_namespace(  # noqa: PLR0917 -- fixtures
    cluster: Cluster,
    api: client.ApiClient,
    cluster_helm: Helm,
    restricted: str,
    monitoring_crds: None,
    crd_as_found: dict[str, Any],
    tmp_path: Path,
) -> None:
    """The gateway (and its tenant roles), the ServiceMonitor, the PrometheusRule, the dashboard
    and the Roles of a watched namespace: the API server takes each of them."""
    namespace, release = restricted, release_name(restricted)
    values = copy.deepcopy(EVERYTHING)
    values["watchNamespaces"] = [namespace]
    values["gateway"]["tenantRoles"] = {
        "viewer": f"{namespace}-viewer",
        "editor": f"{namespace}-editor",
    }
    values_path = values_file(tmp_path / "values.yaml", values)
    out = cluster_helm.run("install", release, str(CHART), "--namespace", namespace,
                           "-f", values_path, "--wait", "--timeout", "120s")  # fmt: skip
    assert "PodSecurity" not in out.stderr, out.stderr

    objects = installed(cluster, cluster_helm, release, namespace)
    kinds = {o["kind"] for o in objects}
    assert {"ServiceMonitor", "PrometheusRule", "ConfigMap"} <= kinds
    assert "ClusterRoleBinding" in kinds  # the gateway's
    monitor = find(objects, "ServiceMonitor")
    scraped = [
        o for o in objects
        if o["kind"] == "Service"
        and monitor["spec"]["selector"]["matchLabels"].items() <= o["metadata"]["labels"].items()
    ]  # fmt: skip
    assert [s["spec"]["ports"][0]["name"] for s in scraped] == ["metrics"]
    # The operator's namespace and name labels (a Connector's) reach the alerts as they are.
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRole"} == {
        f"{release}-gateway",
        f"{namespace}-viewer",
        f"{namespace}-editor",
    }
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert len(deployments) == 2
    for deployment in deployments:
        assert deployment["status"].get("availableReplicas") == 2, deployment["metadata"]["name"]
        assert len(pods_of(api, namespace, deployment)) == 2
    assert not pod_security_refusals(api, namespace)

    cluster_helm.run("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "120s")
    assert not gone(cluster, objects)


# --- the chart against deploy/ (kustomize) -----------------------------------------------------


def kustomize(path: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize`, with the control plane's kubectl (no cluster needed)."""
    bin_dir = subprocess.run(
        [str(ROOT / "tests" / "cluster" / "build.sh"), "--print"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    kubectl = Path(bin_dir) / "kubectl"
    if not kubectl.is_file():
        raise AssertionError("kubectl is missing: run tests/cluster/build.sh (make cluster-build)")
    result = subprocess.run(
        [str(kubectl), "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return documents(result.stdout)


def _renamed(doc: Any, names: dict[str, str]) -> Any:
    if isinstance(doc, dict):
        return {k: _renamed(v, names) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_renamed(v, names) for v in doc]
    return names.get(doc, doc) if isinstance(doc, str) else doc


def _selecting(doc: Any, selector: dict[str, str]) -> Any:
    """`doc` with each label selector (or label set) equal to `selector` as one marker: the
    chart's labels are its own, what matters is that they pick the same pods."""
    if doc == selector:
        return "<the pods>"
    if isinstance(doc, dict):
        return {k: _selecting(v, selector) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_selecting(v, selector) for v in doc]
    return doc


def _env(container: dict[str, Any]) -> dict[str, Any]:
    entries = {}
    for e in container.get("env", []):
        value = e.get("value")
        if isinstance(value, str) and value.startswith("{"):
            value = json.loads(value)  # JSON settings: compared as what they say
        entries[e["name"]] = e.get("valueFrom", value)
    return entries


def what_it_grants_and_runs(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
    """Per (kind, namespace, name): RBAC rules and bindings, the Deployments' pod specs (their
    images aside: the chart's tag is its version, deploy/'s is `dev`), PDBs and Services."""
    selectors = [d["spec"]["selector"]["matchLabels"] for d in docs if d["kind"] == "Deployment"]
    out: dict[tuple[str, str, str], Any] = {}
    for doc in docs:
        kind, meta = doc["kind"], doc["metadata"]
        key = (kind, meta.get("namespace", ""), meta["name"])
        if kind in ("ClusterRole", "Role"):
            out[key] = doc["rules"]
        elif kind in ("ClusterRoleBinding", "RoleBinding"):
            out[key] = (doc["roleRef"], doc["subjects"])
        elif kind == "ServiceAccount":
            out[key] = None
        elif kind == "Deployment":
            spec = doc["spec"]
            pod = copy.deepcopy(spec["template"]["spec"])
            assert (
                spec["selector"]["matchLabels"].items()
                <= spec["template"]["metadata"]["labels"].items()
            )
            for container in pod["containers"]:
                container.pop("image")
                container["env"] = _env(container)
            out[key] = (spec["replicas"], _selecting(pod, spec["selector"]["matchLabels"]))
        elif kind in ("PodDisruptionBudget", "Service"):
            spec = copy.deepcopy(doc["spec"])
            if kind == "Service":
                spec.setdefault("type", "ClusterIP")
            picks = spec["selector"].get("matchLabels", spec["selector"])
            [selector] = [s for s in selectors if s == picks]
            out[key] = _selecting(spec, selector)
        elif kind != "Namespace":  # the chart installs into one: helm's --create-namespace
            out[key] = doc
    return out


def assert_same(chart: list[dict[str, Any]], deploy: list[dict[str, Any]]) -> None:
    ours, theirs = what_it_grants_and_runs(chart), what_it_grants_and_runs(deploy)
    assert sorted(ours) == sorted(theirs), "the chart and deploy/ make different objects"
    for key, value in theirs.items():
        assert ours[key] == value, f"{key}: the chart has\n{ours[key]}\ndeploy/ has\n{value}"


def test_the_chart_grants_and_runs_what_deploy_does(helm: Helm) -> None:
    """With its defaults (release connector-operator in connector-operator-system, as deploy/
    names it) the chart makes deploy/'s objects; watching namespaces, deploy/namespaced/'s;
    with the gateway, deploy/gateway/'s (the chart names it after the release)."""
    render = {"release": "connector-operator", "namespace": OPERATOR_NAMESPACE}
    deploy = ROOT / "deploy"
    chart = helm.template(**render)
    assert_same(chart, kustomize(deploy))
    assert_same(
        helm.template("--set", "watchNamespaces={team-a}", **render),
        kustomize(deploy / "namespaced"),
    )

    with_gateway = helm.template("--set", "gateway.enabled=true", **render)
    gateway = [d for d in with_gateway if d not in chart]
    names = {"connector-operator-gateway": "connector-gateway"}
    assert_same([_renamed(d, names) for d in gateway], kustomize(deploy / "gateway"))


def test_one_replica_gets_no_disruption_budget_that_would_block_every_drain(helm: Helm) -> None:
    two = helm.template()
    one = helm.template("--set", "leaderElection.enabled=false,replicaCount=1")
    assert [d["spec"]["minAvailable"] for d in two if d["kind"] == "PodDisruptionBudget"] == [1]
    assert not [d for d in one if d["kind"] == "PodDisruptionBudget"]
