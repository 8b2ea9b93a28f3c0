"""The platform's REST API, served by the gateway over Connector resources, against the real API
server: real ServiceAccount tokens (TokenRequest) in two tenant namespaces, RBAC decided by the
API server, every endpoint and every error, and a lifecycle driven through REST alone."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import ROOT, Cluster
from tests.integration.conftest import (
    S3_CREDENTIALS,
    Connectors,
    Operator,
    connector,
)
from tests.integration.gateway import Gateway, Tenant, token_of
from tests.support import eventually

pytestmark = pytest.mark.cluster

HTTP: dict[str, Any] = {"storage_type": "HttpData", "storage_config": {}}
S3: dict[str, Any] = {
    "storage_type": "AmazonS3",
    "storage_config": {"bucket_name": "orders", "region": "eu-central-1",
                       "url": "https://s3.example.com", **S3_CREDENTIALS},
}  # fmt: skip
AZURE: dict[str, Any] = {
    "storage_type": "AzureStorage",
    "storage_config": {
        "container_name": "reports", "region": "westeurope",
        "url": "https://acct.blob.core.windows.net",
        "account_name_read": "readacct-5c1d", "account_key_read": "key-read-Uu71pQ",
        "account_name_write": "writeacct-8e2f", "account_key_write": "key-write-Hh09sD",
    },
}  # fmt: skip
CREDENTIALS = [*S3_CREDENTIALS.values(), "readacct-5c1d", "key-read-Uu71pQ", "writeacct-8e2f",
               "key-write-Hh09sD"]  # fmt: skip


def no_credentials(*texts: object) -> None:
    shown = json.dumps([str(t) for t in texts])
    leaked = [c for c in CREDENTIALS if c in shown]
    assert not leaked, f"credentials shown: {leaked}"


@pytest.mark.parametrize(
    ("payload", "entry"),
    [
        (HTTP, {"status": "STARTING", "storageType": "HttpData"}),
        (S3, {"status": "STARTING", "storageType": "AmazonS3", "bucketName": "orders",
              "region": "eu-central-1"}),
        (AZURE, {"status": "STARTING", "storageType": "AzureStorage",
                 "azureContainerName": "reports", "region": "westeurope"}),
    ],
    ids=["HttpData", "AmazonS3", "AzureStorage"],
)  # fmt: skip
def test_each_seed_payload_round_trips_without_its_credentials(
    gateway: Gateway,
    tenants: tuple[Tenant, Tenant],
    connectors: Connectors,
    payload: dict[str, Any],
    entry: dict[str, Any],
) -> None:
    a, _ = tenants
    made = gateway.call("POST", "/connectors/orders", a.editor, payload)
    assert made.status == 201, made
    assert {k: v for k, v in made.body.items() if k != "bpn"} == entry
    assert made.body["bpn"].startswith("BPNL")
    # It is a Connector whose spec is the payload, verbatim.
    assert connectors.get("orders")["spec"] == payload
    shown = gateway.call("GET", "/connectors/orders", a.editor)
    assert shown.status == 200 and shown.body == made.body
    listed = gateway.call("GET", "/connectors", a.viewer)
    assert listed.status == 200 and listed.body == {"orders": made.body}
    no_credentials(made.body, shown.body, listed.body, gateway.logs())


def test_edit_restarts_with_the_new_payload_and_delete_removes_it(
    gateway: Gateway, tenants: tuple[Tenant, Tenant], connectors: Connectors, operator: Operator
) -> None:
    a, _ = tenants
    assert gateway.call("POST", "/connectors/orders", a.editor, S3).status == 201
    connectors.wait_phase("orders", "Running")
    edited = {**S3, "storage_config": {**S3["storage_config"], "bucket_name": "invoices"}}
    answer = gateway.call("PUT", "/connectors/orders", a.editor, edited)
    assert answer.status == 200 and answer.body["bucketName"] == "invoices", answer
    assert connectors.get("orders")["spec"] == edited
    connectors.wait_phase("orders", "Running")
    # A PUT replaces the payload whole: a switch of storage type leaves no field behind.
    assert gateway.call("PUT", "/connectors/orders", a.editor, HTTP).status == 200
    assert connectors.get("orders")["spec"] == {"storage_type": "HttpData", "storage_config": {}}
    assert gateway.call("PUT", "/connectors/absent", a.editor, HTTP).status == 404
    gone = gateway.call("DELETE", "/connectors/orders", a.editor)
    assert gone.status == 202, gone
    # The operator sets no finalizer: the Connector is gone when the DELETE answers.
    assert gateway.call("GET", "/connectors/orders", a.editor).status == 404
    assert gateway.call("GET", "/connectors", a.editor).body == {}
    assert gateway.call("DELETE", "/connectors/orders", a.editor).status == 404


def test_a_lifecycle_through_rest_alone_and_the_stream_sees_it(
    gateway: Gateway, tenants: tuple[Tenant, Tenant], operator: Operator
) -> None:
    a, _ = tenants
    stream = gateway.stream(a.viewer)
    try:
        assert stream.status == 200 and stream.content_type.startswith("text/event-stream")
        assert gateway.call("POST", "/connectors/flow", a.editor, HTTP).status == 201

        def becomes(word: str) -> Callable[[str, Any], bool]:
            return lambda kind, data: (
                kind == "connector" and data["name"] == "flow"
                and (data.get("connector") or {}).get("status") == word
            )  # fmt: skip

        def status() -> str:
            return str(gateway.call("GET", "/connectors/flow", a.viewer).body["status"])

        seen = stream.until(becomes("RUNNING"))
        assert seen[0][1]["type"] == "ADDED"
        eventually(lambda: status() == "RUNNING")
        # The older clients GET an action, the newer ones PUT it: both set it.
        stopping = gateway.call("GET", "/connectors/flow/stop", a.editor)
        assert stopping.status == 202 and stopping.body["status"] == "RUNNING", stopping
        stream.until(becomes("STOPPED"))
        assert gateway.call("PUT", "/connectors/flow/stop", a.editor).status == 200
        assert gateway.call("PUT", "/connectors/flow/start", a.editor).status == 202
        stream.until(becomes("RUNNING"))
        assert gateway.call("PUT", "/connectors/flow/fail", a.editor).status == 202
        # Refused at once, while the fail is on its way, as after it.
        refused = gateway.call("PUT", "/connectors/flow/start", a.editor)
        assert refused.status == 409 and "stop" in refused.body["detail"], refused
        stream.until(becomes("FAILED"))
        refused = gateway.call("GET", "/connectors/flow/start", a.editor)
        assert refused.status == 409 and "stop" in refused.body["detail"], refused
        assert status() == "FAILED"
        # From FAILED the workload is gone already: the operator may be Stopped before the
        # gateway answers, which then says so (200) rather than "on its way" (202).
        stopping = gateway.call("GET", "/connectors/flow/stop", a.editor)
        assert stopping.status == (200 if stopping.body["status"] == "STOPPED" else 202), stopping
        stream.until(becomes("STOPPED"))
        assert gateway.call("DELETE", "/connectors/flow", a.editor).status == 202
        stream.until(lambda kind, data: data is not None and data.get("type") == "DELETED")
    finally:
        stream.close()


ENDPOINTS = [
    ("GET", "/connectors", None),
    ("GET", "/connectors/orders", None),
    ("POST", "/connectors/orders", HTTP),
    ("PUT", "/connectors/orders", HTTP),
    ("DELETE", "/connectors/orders", None),
    *[(m, f"/connectors/orders/{a}", None)
      for a in ("start", "stop", "fail") for m in ("GET", "PUT")],
]  # fmt: skip


def test_no_valid_token_is_401_and_changes_nothing(
    gateway: Gateway, tenants: tuple[Tenant, Tenant], connectors: Connectors
) -> None:
    a, _ = tenants
    connectors.apply(connector("orders"))
    before = connectors.get("orders")
    for method, path, body in ENDPOINTS:
        for token in (None, "not-a-token", a.editor[:-4] + "AAAA"):
            answer = gateway.call(method, path, token, body)
            assert answer.status == 401, (method, path, answer)
            assert answer.headers.get("WWW-Authenticate") == "Bearer"
    assert gateway.stream("not-a-token").status == 401
    assert connectors.get("orders") == before


def test_no_permission_is_403_and_changes_nothing(
    gateway: Gateway, tenants: tuple[Tenant, Tenant], connectors: Connectors
) -> None:
    a, _ = tenants
    connectors.apply(connector("orders"))
    before = connectors.get("orders")
    for method, path, body in ENDPOINTS:
        answer = gateway.call(method, path, a.nobody, body)
        assert answer.status == 403, (method, path, answer)
        assert "connectors" in answer.body["detail"]
    assert gateway.stream(a.nobody).status == 403
    # The viewer reads, and changes nothing.
    assert gateway.call("GET", "/connectors/orders", a.viewer).status == 200
    for method, path, body in ENDPOINTS[2:]:
        assert gateway.call(method, path, a.viewer, body).status == 403, (method, path)
    assert connectors.get("orders") == before


def test_one_tenant_never_sees_or_changes_anothers_connectors(
    gateway: Gateway, tenants: tuple[Tenant, Tenant], cluster: Cluster
) -> None:
    a, b = tenants
    assert gateway.call("POST", "/connectors/orders", a.editor, S3).status == 201
    assert gateway.call("GET", "/connectors", b.editor).body == {}
    for method, path, body in ENDPOINTS[1:]:
        if method == "POST":
            continue
        answer = gateway.call(method, path, b.editor, body)
        assert answer.status == 404, (method, path, answer)
    # Its own Connector of the same name lives in its own namespace.
    assert gateway.call("POST", "/connectors/orders", b.editor, HTTP).status == 201
    spec = json.loads(cluster.kubectl("get", "connector", "orders", "-n", a.namespace, "-o",
                                      "json"))["spec"]  # fmt: skip
    assert spec == S3
    assert set(gateway.call("GET", "/connectors", a.editor).body) == {"orders"}
    assert gateway.call("GET", "/connectors/orders", a.editor).body["storageType"] == "AmazonS3"
    assert gateway.call("GET", "/connectors/orders", b.editor).body["storageType"] == "HttpData"


def test_bad_requests_are_refused_whole(
    gateway: Gateway, tenants: tuple[Tenant, Tenant], connectors: Connectors
) -> None:
    a, _ = tenants
    post = "/connectors/orders"
    wrong_type = gateway.call("POST", post, a.editor, raw=b"{}", content_type="text/plain")
    assert wrong_type.status == 415, wrong_type
    assert gateway.call("POST", post, a.editor, raw=b"{not json").status == 400
    big = json.dumps({**HTTP, "pad": "x" * 70_000}).encode()
    assert gateway.call("POST", post, a.editor, raw=big).status == 413
    assert gateway.call("POST", post, a.editor, raw=b"[" * 60_000).status == 400  # too deep
    assert gateway.call("PUT", post, a.editor, raw=b"{}", content_type="text/plain").status == 415
    assert gateway.call("PUT", post, a.editor, raw=b"{not json").status == 400
    assert gateway.call("POST", "/connectors/Not_A_Name", a.editor, HTTP).status == 422
    # Every wrong field at once, in admission's words, never quoting a value.
    broken = {"storage_type": "AmazonS3",
              "storage_config": {"password_read": "pw-only-Kk3", "bucket_name": ""}}  # fmt: skip
    refused = gateway.call("POST", post, a.editor, broken)
    assert refused.status == 422, refused
    fields = {tuple(d["loc"]) for d in refused.body["detail"]}
    assert ("body", "storage_config", "bucket_name") in fields, refused
    assert "pw-only-Kk3" not in json.dumps(refused.body)
    kubectl = connectors.apply(
        {**connector("orders"), "spec": {"storage_type": "AmazonS3",
                                         "storage_config": {"bucket_name": "b"}}},
        check=False,
    )  # fmt: skip
    missing_region = gateway.call(
        "POST", post, a.editor,
        {"storage_type": "AmazonS3", "storage_config": {"bucket_name": "b", **S3_CREDENTIALS}},
    )  # fmt: skip
    assert missing_region.status == 422 and missing_region.body["detail"], missing_region
    assert all(d["msg"] in kubectl for d in missing_region.body["detail"]), (kubectl, refused)
    # Nothing was made by any of them.
    assert connectors.kubectl("get", "connectors", "-o", "name").strip() == ""
    assert gateway.call("POST", post, a.editor, HTTP).status == 201
    taken = gateway.call("POST", post, a.editor, S3)
    assert taken.status == 409 and "exists" in taken.body["detail"], taken
    assert connectors.get("orders")["spec"] == HTTP
    no_credentials(gateway.logs())
    assert a.editor not in gateway.logs()


def test_the_api_mounts_at_the_root_or_a_prefix_and_documents_itself(
    start_gateway: Callable[..., Gateway], tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    root = start_gateway(prefix="")
    assert root.call("GET", "/connectors", a.viewer).status == 200
    prefixed = start_gateway(prefix="/api/v1")
    assert prefixed.call("GET", "/connectors", a.viewer, raw_path=True).status == 404
    spec = prefixed.call("GET", "/openapi.json", None).body
    assert spec["openapi"].startswith("3.1")
    assert set(spec["paths"]) >= {
        "/api/v1/connectors", "/api/v1/connectors/{name}", "/api/v1/connectors/{name}/start",
        "/api/v1/watch/connectors",
    }  # fmt: skip
    assert "ConnectorEntry" in spec["components"]["schemas"]
    docs = prefixed.call("GET", "/docs", None)
    assert docs.status == 200 and "/api/v1/openapi.json" in docs.body


def test_a_stream_ends_when_its_callers_permission_is_revoked(
    start_gateway: Callable[..., Gateway], tenants: tuple[Tenant, Tenant], cluster: Cluster
) -> None:
    a, _ = tenants
    gateway = start_gateway(CONNECTOR_GATEWAY_STREAM_RECHECK_SECONDS="1")
    stream = gateway.stream(a.viewer)
    try:
        assert stream.status == 200
        cluster.kubectl("delete", "rolebinding", "-n", a.namespace, "viewer-connectors-viewer")
        seen = stream.until(lambda kind, _: kind == "end", timeout=30)
        assert "may not watch" in seen[-1][1]["detail"]
    finally:
        stream.close()


def test_the_deploy_component_is_accepted_by_the_api_server(
    cluster: Cluster, gateway_kubeconfig: object
) -> None:
    """deploy/gateway/ as `kubectl apply -k` sends it, checked by the API server (dry run)."""
    out = cluster.kubectl("apply", "--dry-run=server", "-k", str(ROOT / "deploy" / "gateway"))
    for made in ("deployment.apps/connector-gateway", "service/connector-gateway",
                 "clusterrole.rbac.authorization.k8s.io/connectors-editor"):  # fmt: skip
        assert made in out, out


def test_a_write_through_one_replica_is_read_through_another(
    start_gateway: Callable[..., Gateway], tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    one, other = start_gateway(), start_gateway()
    for i in range(5):
        assert one.call("POST", f"/connectors/c{i}", a.editor, HTTP).status == 201
        shown = other.call("GET", f"/connectors/c{i}", a.viewer)
        assert shown.status == 200 and shown.body["storageType"] == "HttpData", shown


def test_a_namespace_the_operator_does_not_serve_is_refused(
    start_gateway: Callable[..., Gateway], tenants: tuple[Tenant, Tenant], cluster: Cluster
) -> None:
    a, b = tenants
    gateway = start_gateway(CONNECTOR_OPERATOR_NAMESPACES=a.namespace)
    assert gateway.call("POST", "/connectors/orders", a.editor, HTTP).status == 201
    refused = gateway.call("POST", "/connectors/orders", b.editor, HTTP)
    assert refused.status == 403 and "not served" in refused.body["detail"], refused
    assert cluster.kubectl("get", "connectors", "-n", b.namespace, "-o", "name").strip() == ""


def test_with_audiences_only_tokens_minted_for_the_gateway_are_accepted(
    start_gateway: Callable[..., Gateway],
    tenants: tuple[Tenant, Tenant],
    api: client.ApiClient,
) -> None:
    a, _ = tenants
    gateway = start_gateway(CONNECTOR_GATEWAY_AUDIENCES="connector-gateway")
    minted = token_of(api, a.namespace, "viewer", audience="connector-gateway")
    assert gateway.call("GET", "/connectors", minted).status == 200
    refused = gateway.call("GET", "/connectors", a.viewer)  # the API server's audience
    assert refused.status == 401, refused


def test_a_token_in_a_request_aiohttp_cannot_parse_is_not_logged(
    gateway: Gateway, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(
            f"GET /api/v1/connectors HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {a.editor}\x01zz\r\n\r\n".encode()
        )
        answer = sock.recv(4096)
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request"), answer
    assert "could not parse" in eventually(
        lambda: "could not parse" in gateway.logs() and gateway.logs()
    )
    assert a.editor not in gateway.logs()
