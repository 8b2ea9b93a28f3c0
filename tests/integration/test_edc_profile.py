"""The `edc` profile on the real API server: what a Connector becomes (two planes, their
Services, the keys Secret, the Ingress, the vault folder) and its lifecycle across the two
planes. The runtimes themselves are booted in test_edc_runtime.py."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.edc.installation import DB_PASSWORD, PUBLIC_HOST, EdcInstallation
from tests.integration.conftest import (
    S3_CREDENTIALS,
    Connectors,
    Operator,
    audit_writes,
    connector,
    s3,
    secret_manifest,
    settle,
)
from tests.support import eventually

pytestmark = pytest.mark.cluster
CP, DP = "cp", "dp"
GENERATED = ("management-api-key", "catalog-api-key", "consumer-proxy-key",
             "token-signer-private-key", "token-verifier-public-key")  # fmt: skip


def plane(connectors: Connectors, name: str, which: str) -> client.V1Deployment | None:
    try:
        return connectors.apps.read_namespaced_deployment(
            f"edc-{name}-{which}", connectors.namespace
        )
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def template_hash(deployment: client.V1Deployment | None) -> str:
    assert deployment is not None
    return str(deployment.spec.template.metadata.annotations["dataspace.dev/config-hash"])


def env_of(deployment: client.V1Deployment) -> dict[str, Any]:
    return {e.name: e for e in deployment.spec.template.spec.containers[0].env}


def keys_of(connectors: Connectors, name: str) -> dict[str, str]:
    """The secret values of the Connector's keys Secret (the database user name excepted)."""
    secret = connectors.core.read_namespaced_secret(f"edc-{name}-keys", connectors.namespace)
    data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    return {k: v for k, v in data.items() if k != "datasource-user"}


def deny_pods(connectors: Connectors, component: str) -> Callable[[], None]:
    """An admission policy that refuses the namespace's pods of one plane; returns its undo."""
    ns = connectors.namespace
    name = f"deny-{component}-{ns}"
    policy = f"""
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {ns}}}}}
    resourceRules:
    - {{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}}
  validations:
  - expression: "object.metadata.labels['app.kubernetes.io/component'] != '{component}'"
    message: no {component} pods here
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: {name}
  validationActions: [Deny]
"""
    connectors.cluster.kubectl("apply", "-f", "-", stdin=policy)

    def in_effect() -> bool:  # the API server loads a policy a moment after it is made
        out = connectors.kubectl(
            "run", "policy-probe", "--image=none", "--dry-run=server",
            f"--labels=app.kubernetes.io/component={component}", check=False,
        )  # fmt: skip
        return "created" not in out

    eventually(in_effect, what=f"the policy against {component} pods to be in effect")

    def undo() -> None:
        connectors.cluster.kubectl("delete", "validatingadmissionpolicybinding", name)
        connectors.cluster.kubectl("delete", "validatingadmissionpolicy", name)

    return undo


def test_a_connector_becomes_a_control_plane_and_a_data_plane(
    edc_operator: Callable[..., Operator],
    connectors: Connectors,
    edc: EdcInstallation,
) -> None:
    op = edc_operator()
    connectors.apply(s3("orders", url="https://s3.example.test"))
    connectors.wait_phase("orders", "Running", timeout=120)
    cp, dp = plane(connectors, "orders", CP), plane(connectors, "orders", DP)
    assert cp is not None and dp is not None
    assert cp.spec.replicas == 1 and dp.spec.replicas == 1
    cp_env, dp_env = env_of(cp), env_of(dp)
    did = f"did:web:{PUBLIC_HOST}:connectors:orders"
    assert cp_env["EDC_PARTICIPANT_ID"].value == did
    assert cp_env["EDC_DSP_CALLBACK_ADDRESS"].value == (
        f"https://{PUBLIC_HOST}/connectors/orders/cp/protocol/api/v1/dsp"
    )
    bpn = cp_env["TRACTUSX_EDC_PARTICIPANT_BPN"].value
    assert bpn.startswith("BPNL") and len(bpn) == 16
    assert dp_env["EDC_PARTICIPANT_ID"].value == bpn  # the 0.11 chart's data plane
    assert dp_env["EDC_AWS_ENDPOINT_OVERRIDE"].value == "https://s3.example.test"
    ns = connectors.namespace
    assert (
        dp_env["EDC_DPF_SELECTOR_URL"].value
        == f"http://edc-orders-cp.{ns}.svc:8083/control/v1/dataplanes"
    )
    # Every secret value comes from a Secret, none is written into a manifest.
    for deployment in (cp, dp):
        for env in deployment.spec.template.spec.containers[0].env:
            if env.value is not None:
                for secret in (
                    *S3_CREDENTIALS.values(),
                    DB_PASSWORD,
                    *keys_of(connectors, "orders").values(),
                ):
                    assert secret not in env.value, env.name
    assert dp_env["AWS_SECRET_ACCESS_KEY"].value_from.secret_key_ref.name == "connector-orders"
    assert (
        cp_env["WEB_HTTP_MANAGEMENT_AUTH_KEY"].value_from.secret_key_ref.name == "edc-orders-keys"
    )
    pod = cp.spec.template.spec
    assert pod.security_context.run_as_user == 10001
    assert pod.containers[0].security_context.read_only_root_filesystem is True
    assert pod.containers[0].readiness_probe.http_get.path == "/api/check/readiness"
    # The Services select one plane each and carry its ports.
    services = {s: connectors.core.read_namespaced_service(f"edc-orders-{s}", ns) for s in (CP, DP)}
    assert {p.name: p.port for p in services[CP].spec.ports} == {
        "default": 8080, "management": 8081, "control": 8083, "protocol": 8084, "catalog": 8085,
        "metrics": 9090,
    }  # fmt: skip
    assert services[DP].spec.selector["app.kubernetes.io/component"] == "dataplane"
    # The Ingress routes the public paths to the right ports.
    ingress = client.NetworkingV1Api(connectors.core.api_client).read_namespaced_ingress(
        "edc-orders", ns
    )
    routes = {
        p.path: (p.backend.service.name, p.backend.service.port.name)
        for p in ingress.spec.rules[0].http.paths
    }
    assert routes == {
        "/connectors/orders/cp/protocol(/|$)(.*)": ("edc-orders-cp", "protocol"),
        "/connectors/orders/cp/management(/|$)(.*)": ("edc-orders-cp", "management"),
        "/connectors/orders/dp/public(/|$)(.*)": ("edc-orders-dp", "public"),
    }
    # The vault folder holds what the runtime reads.
    folder = edc.folder("orders")
    written = {"token-signer-private-key", "token-verifier-public-key", "s3-write-credentials"}
    assert set(folder) == {*written, "connector-operator-managed"}
    assert set(json.loads(folder["connector-operator-managed"]["content"])) == written
    assert json.loads(folder["s3-write-credentials"]["content"]) == {
        "accessKeyId": S3_CREDENTIALS["username_write"],
        "secretAccessKey": S3_CREDENTIALS["password_write"],
    }
    assert (
        folder["token-signer-private-key"]["content"]
        == keys_of(connectors, "orders")["token-signer-private-key"]
    )
    # No secret value in status, events or the operator's log.
    shown = (
        json.dumps(connectors.status("orders"))
        + " ".join(e.message or "" for e in connectors.events("orders"))
        + op.logs()
    )
    for value in (*S3_CREDENTIALS.values(), *keys_of(connectors, "orders").values(), DB_PASSWORD):
        assert value not in shown


def test_the_data_plane_starts_only_once_the_control_plane_is_available(
    edc_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    undo = deny_pods(connectors, "controlplane")
    try:
        edc_operator()
        connectors.apply(connector("gated"))
        eventually(lambda: plane(connectors, "gated", CP), what="the control plane's Deployment")
        settle(5)
        assert plane(connectors, "gated", DP) is None, (
            "the data plane was made before the control plane was up"
        )
        assert connectors.status("gated")["phase"] == "Starting"
    finally:
        undo()
    connectors.wait_phase("gated", "Running", timeout=180)
    dp = plane(connectors, "gated", DP)
    assert dp is not None and dp.spec.replicas == 1


def test_stop_and_start_drive_both_planes(
    edc_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    edc_operator()
    connectors.apply(connector("both"))
    connectors.wait_phase("both", "Running", timeout=120)
    connectors.annotate("both", "stop")
    connectors.wait_phase("both", "Stopped", timeout=120)
    assert [plane(connectors, "both", p).spec.replicas for p in (CP, DP)] == [0, 0]  # type: ignore[union-attr]
    assert connectors.pods("both") == []
    connectors.annotate("both", "start")
    connectors.wait_phase("both", "Running", timeout=120)
    assert [plane(connectors, "both", p).spec.replicas for p in (CP, DP)] == [1, 1]  # type: ignore[union-attr]
    # fail stops driving both: a hand edit of either plane stays while the Connector is Failed.
    connectors.annotate("both", "fail")
    connectors.wait_phase("both", "Failed", timeout=60)
    connectors.kubectl("scale", "deployment", "edc-both-dp", "--replicas=0")
    settle(3)
    assert plane(connectors, "both", DP).spec.replicas == 0  # type: ignore[union-attr]


def test_a_stuck_data_plane_makes_the_connector_failed_and_says_which(
    edc_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    undo = deny_pods(connectors, "dataplane")
    try:
        edc_operator(CONNECTOR_OPERATOR_PROGRESS_DEADLINE_SECONDS="5")
        connectors.apply(connector("stuck"))
        status = connectors.wait_phase("stuck", "Failed", timeout=180)
    finally:
        undo()
    assert "data plane" in status["message"], status["message"]
    assert plane(connectors, "stuck", CP).status.available_replicas == 1  # type: ignore[union-attr]


def test_new_s3_credentials_roll_the_data_plane_alone_and_reach_the_vault(
    edc_operator: Callable[..., Operator],
    connectors: Connectors,
    edc: EdcInstallation,
) -> None:
    connectors.apply(secret_manifest("orders-s3", S3_CREDENTIALS))
    edc_operator()
    connectors.apply(
        s3("rot", credentials_secret_ref={"name": "orders-s3"}, **dict.fromkeys(S3_CREDENTIALS))
    )
    connectors.wait_phase("rot", "Running", timeout=120)
    keys = keys_of(connectors, "rot")
    cp_before, dp_before = (template_hash(plane(connectors, "rot", p)) for p in (CP, DP))
    rotated = {
        **S3_CREDENTIALS,
        "password_read": "pw-read-rotated",
        "password_write": "pw-write-rotated",
    }
    connectors.apply(secret_manifest("orders-s3", rotated))
    eventually(
        lambda: template_hash(plane(connectors, "rot", DP)) != dp_before,
        what="the data plane to roll",
    )
    connectors.wait_phase("rot", "Running", timeout=120)
    assert template_hash(plane(connectors, "rot", CP)) == cp_before, "the control plane rolled"
    stored = json.loads(edc.folder("rot")["s3-write-credentials"]["content"])
    assert stored["secretAccessKey"] == "pw-write-rotated"
    rotated_hashes = [template_hash(plane(connectors, "rot", p)) for p in (CP, DP)]
    # An edit keeps the generated keys, and one of a field no plane reads restarts nothing.
    connectors.apply(
        s3(
            "rot",
            credentials_secret_ref={"name": "orders-s3"},
            region="eu-west-1",
            **dict.fromkeys(S3_CREDENTIALS),
        )
    )
    connectors.wait_phase("rot", "Running", timeout=120)
    assert keys_of(connectors, "rot") == keys
    settle(2)
    assert [template_hash(plane(connectors, "rot", p)) for p in (CP, DP)] == rotated_hashes, (
        "an edit of a field no plane reads restarted a plane"
    )


def test_keys_survive_an_operator_restart_and_the_vault_folder_goes_with_the_connector(
    edc_operator: Callable[..., Operator],
    connectors: Connectors,
    edc: EdcInstallation,
) -> None:
    azure = connector(
        "blob", "AzureStorage", container_name="c",
        account_name_read="readacct", account_key_read="key-read-1",
        account_name_write="writeacct", account_key_write="key-write-1",
    )  # fmt: skip
    op = edc_operator()
    connectors.apply(azure)
    connectors.wait_phase("blob", "Running", timeout=120)
    assert {k: v["content"] for k, v in edc.folder("blob").items() if k.endswith("-key1")} == {
        "readacct-key1": "key-read-1", "writeacct-key1": "key-write-1",
    }  # fmt: skip
    keys = keys_of(connectors, "blob")
    hashes = [template_hash(plane(connectors, "blob", p)) for p in (CP, DP)]
    op.stop()
    edc_operator()
    connectors.apply(connector("after-restart"))
    connectors.wait_phase("after-restart", "Running", timeout=120)
    assert keys_of(connectors, "blob") == keys
    assert [template_hash(plane(connectors, "blob", p)) for p in (CP, DP)] == hashes
    connectors.kubectl("delete", "connector", "blob")
    eventually(lambda: not edc.folder("blob"), what="the vault folder to be emptied")
    assert edc.folder("after-restart"), "another Connector's folder was touched"


def test_a_folder_left_while_no_operator_ran_is_emptied_at_start(
    edc_operator: Callable[..., Operator],
    connectors: Connectors,
    edc: EdcInstallation,
) -> None:
    op = edc_operator()
    connectors.apply(connector("left"))
    connectors.wait_phase("left", "Running", timeout=120)
    op.stop()
    connectors.kubectl("delete", "connector", "left")
    assert edc.folder("left")
    edc_operator()
    eventually(lambda: not edc.folder("left"), what="the vault folder to be emptied")


def test_writes_per_lifecycle_across_two_planes(
    edc_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    """The API writes of one lifecycle (create, run, stop, start, delete), reported; each
    child is written once when made, once per scale."""
    edc_operator()
    connectors.apply(connector("counted"))
    connectors.wait_phase("counted", "Running", timeout=120)
    made = audit_writes(connectors.cluster, connectors.namespace)
    connectors.annotate("counted", "stop")
    connectors.wait_phase("counted", "Stopped", timeout=120)
    connectors.annotate("counted", "start")
    connectors.wait_phase("counted", "Running", timeout=120)
    settle(3)
    total = audit_writes(connectors.cluster, connectors.namespace)

    def kinds(writes: list[dict[str, Any]]) -> dict[str, int]:
        counted: dict[str, int] = {}
        for w in writes:
            resource = w["objectRef"]["resource"] + (
                "/" + w["objectRef"]["subresource"] if w["objectRef"].get("subresource") else ""
            )
            counted[resource] = counted.get(resource, 0) + 1
        return counted

    print("writes to run:", kinds(made), "of the whole lifecycle:", kinds(total))
    # Run: the keys Secret, two Services, two Deployments, one Ingress; then one scale of each
    # Deployment to stop and one to start.
    assert kinds(total)["deployments"] == 2 + 2 + 2
    assert kinds(made)["secrets"] == 1 and kinds(made)["services"] == 2


def test_a_missing_setting_or_secret_stops_the_operator_at_start_and_is_named(
    edc_operator: Callable[..., Operator], edc: EdcInstallation
) -> None:
    unset = edc_operator(CONNECTOR_OPERATOR_EDC_BDRS_URL="")
    eventually(lambda: not unset.alive(), timeout=60, what="the operator to exit")
    assert "CONNECTOR_OPERATOR_EDC_BDRS_URL" in unset.logs()
    no_secret = edc_operator(CONNECTOR_OPERATOR_EDC_VAULT_TOKEN_SECRET="no-such-secret")  # noqa: S106 -- a name
    eventually(lambda: not no_secret.alive(), timeout=60, what="the operator to exit")
    assert "connector-operator-system/no-such-secret does not exist" in no_secret.logs()


def test_a_name_is_one_public_identity_across_namespaces(
    edc_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    """Two teams apply a Connector of one name: the older keeps the DID and routes; the
    younger makes nothing, says why, and proceeds once the older is deleted."""
    core = connectors.core
    other = f"{connectors.namespace}-b"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        edc_operator(CONNECTOR_OPERATOR_NAMESPACES=f"{connectors.namespace},{other}")
        connectors.apply(connector("shared"))
        connectors.wait_phase("shared", "Running", timeout=120)
        second = Connectors(connectors.cluster, core.api_client, other)
        second.apply(connector("shared"))
        eventually(
            lambda: (second.condition("shared", "Stalled") or {}).get("reason") == "NameTaken",
            what="the younger Connector to be Stalled NameTaken",
        )
        second.wait_event("shared", "Warning", "NameTaken")
        assert second.apps.list_namespaced_deployment(other).items == []
        assert (
            second.core.list_namespaced_secret(
                other, label_selector="app.kubernetes.io/managed-by=connector-operator"
            ).items
            == []
        )
        connectors.kubectl("delete", "connector", "shared")
        second.wait_phase("shared", "Running", timeout=120)
    finally:
        core.delete_namespace(other)
