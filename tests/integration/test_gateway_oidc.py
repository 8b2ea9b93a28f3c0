"""The gateway with OIDC users, end to end: a real Keycloak issues the JWTs, the local API server
trusts its issuer (structured authentication configuration), and the gateway's TokenReview,
tenancy mapping and SubjectAccessReview treat those users as they treat ServiceAccounts."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import BACKEND, Cluster
from tests.integration.conftest import api_server_with
from tests.integration.gateway import Gateway, Tenant
from tests.oidc import keycloak as keycloak_support
from tests.oidc.keycloak import Keycloak

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(BACKEND != "local", reason="reconfigures the local API server"),
]
AUDIENCE = "connector-gateway"
HTTP = {"storage_type": "HttpData", "storage_config": {}}


@pytest.fixture(scope="module")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keycloak]:
    with keycloak_support.running(tmp_path_factory.mktemp("keycloak"), AUDIENCE) as issuer:
        yield issuer


@pytest.fixture(scope="module")
def trusted(
    cluster: Cluster, keycloak: Keycloak, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """The API server trusts Keycloak's tokens (users `oidc:<name>`, groups `oidc:<group>`)
    for this module; its usual flags are restored afterwards."""
    path: Path = tmp_path_factory.mktemp("authn") / "authentication-config.yaml"
    path.write_text(keycloak_support.authentication_config(keycloak.issuer, keycloak.ca_pem,
                                                           AUDIENCE))  # fmt: skip
    with api_server_with(cluster, f"--authentication-config={path}"):
        yield


def tampered(token: str) -> str:
    """The token with its claims changed (preferred_username) and its signature kept."""
    header, claims, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    decoded["preferred_username"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def test_an_oidc_user_acts_where_the_mapping_says_as_rbac_allows(
    trusted: None,
    keycloak: Keycloak,
    start_gateway: Callable[..., Gateway],
    tenants: tuple[Tenant, Tenant],
    cluster: Cluster,
) -> None:
    a, b = tenants
    # alice is in Keycloak's group team-b, bob in team-a.
    cluster.kubectl("create", "rolebinding", "-n", b.namespace, "team-b-editors",
                    "--clusterrole=connectors-editor", "--group=oidc:team-b")  # fmt: skip
    tenancy = {"users": {"oidc:bob": a.namespace}, "groups": {"oidc:team-b": b.namespace}}
    gateway = start_gateway(CONNECTOR_GATEWAY_TENANCY=json.dumps(tenancy))
    alice = keycloak.token("alice", "alice-password")
    bob = keycloak.token("bob", "bob-password")

    made = gateway.call("POST", "/connectors/orders", alice, HTTP)
    assert made.status == 201, made
    assert set(gateway.call("GET", "/connectors", alice).body) == {"orders"}
    assert cluster.kubectl("get", "connector", "orders", "-n", b.namespace, "-o", "name")
    # The same Connector, seen by a ServiceAccount of the namespace.
    assert gateway.call("GET", "/connectors/orders", b.viewer).status == 200

    # bob is mapped to team-a's namespace, where nothing is granted to him yet.
    denied = gateway.call("POST", "/connectors/orders", bob, HTTP)
    assert denied.status == 403 and "oidc:bob" in denied.body["detail"], denied
    cluster.kubectl("create", "rolebinding", "-n", a.namespace, "bob-views",
                    "--clusterrole=connectors-viewer", "--user=oidc:bob")  # fmt: skip
    assert gateway.call("GET", "/connectors", bob).body == {}
    assert gateway.call("POST", "/connectors/orders", bob, HTTP).status == 403
    assert cluster.kubectl("get", "connectors", "-n", a.namespace, "-o", "name").strip() == ""

    # A signature that does not match the claims is no token at all.
    assert gateway.call("GET", "/connectors", tampered(alice)).status == 401


def test_an_oidc_user_outside_the_mapping_has_no_namespace(
    trusted: None,
    keycloak: Keycloak,
    start_gateway: Callable[..., Gateway],
    tenants: tuple[Tenant, Tenant],
) -> None:
    gateway = start_gateway()  # ServiceAccounts only
    answer = gateway.call("GET", "/connectors", keycloak.token("alice", "alice-password"))
    assert answer.status == 403 and "no namespace" in answer.body["detail"], answer
