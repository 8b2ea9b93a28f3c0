"""Where the operator finds its API server: kubeconfigs merged as kubectl merges them, and the
pod's ServiceAccount."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path
from typing import Any

import pytest

from connector_operator.kubeconfig import (
    Endpoint,
    ExecPlugin,
    KubeconfigError,
    in_cluster,
    load,
    resolve,
)

TOKEN = "t0k"  # noqa: S105 -- a test value
PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def config(
    current: str | None = "dev",
    contexts: dict[str, dict[str, Any]] | None = None,
    clusters: dict[str, dict[str, Any]] | None = None,
    users: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    contexts = {"dev": {"cluster": "c", "user": "u"}} if contexts is None else contexts
    clusters = {"c": {"server": "https://api.example:6443"}} if clusters is None else clusters
    users = {"u": {"token": TOKEN}} if users is None else users
    return {
        "current-context": current,
        "contexts": [{"name": k, "context": v} for k, v in contexts.items()],
        "clusters": [{"name": k, "cluster": v} for k, v in clusters.items()],
        "users": [{"name": k, "user": v} for k, v in users.items()],
    }


HOME = Path("/home/me/.kube/config")


def test_the_current_context_names_server_and_credentials() -> None:
    found = resolve([(HOME, config())])
    assert (found.server, found.token) == ("https://api.example:6443", TOKEN)


def test_an_asked_context_wins_over_the_current_one() -> None:
    doc = config(
        contexts={"dev": {"cluster": "c", "user": "u"}, "prod": {"cluster": "p", "user": "u"}},
        clusters={"c": {"server": "https://dev"}, "p": {"server": "https://prod/"}},
    )
    assert resolve([(HOME, doc)], context="prod").server == "https://prod"  # no trailing slash


def test_the_first_file_to_name_an_entry_wins_as_in_kubectl() -> None:
    first = config(current=None, clusters={"c": {"server": "https://first"}}, users={})
    second = config(current="dev", clusters={"c": {"server": "https://second"}})
    found = resolve([(Path("/a/one"), first), (Path("/b/two"), second)])
    assert found.server == "https://first"  # cluster c from the first file
    assert found.token == TOKEN  # user u only in the second; current-context from the second


def test_paths_are_relative_to_the_file_that_holds_them() -> None:
    doc = config(clusters={"c": {"server": "https://x", "certificate-authority": "ca.crt"}},
                 users={"u": {"client-certificate": "/abs/me.crt", "client-key": "keys/me.key",
                              "tokenFile": "tok"}})  # fmt: skip
    found = resolve([(Path("/etc/kube/config"), doc)])
    assert (found.ca_file, found.cert_file) == ("/etc/kube/ca.crt", "/abs/me.crt")
    assert (found.key_file, found.token_file) == ("/etc/kube/keys/me.key", "/etc/kube/tok")


def test_inline_certificates_are_decoded_and_tls_flags_kept() -> None:
    data = base64.b64encode(PEM).decode()
    cluster = {"server": "https://x", "certificate-authority-data": data,
               "insecure-skip-tls-verify": True, "tls-server-name": "api",
               "proxy-url": "http://proxy:3128"}  # fmt: skip
    user = {"client-certificate-data": data, "client-key-data": data}
    doc = config(clusters={"c": cluster}, users={"u": user})
    found = resolve([(HOME, doc)])
    assert found.ca_data == found.cert_data == found.key_data == PEM
    assert (found.insecure, found.tls_server_name, found.proxy_url) == (
        True, "api", "http://proxy:3128",
    )  # fmt: skip


def test_an_exec_plugin_is_kept_with_its_folder() -> None:
    doc = config(users={"u": {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "./get-token",
        "args": ["--cluster", "c"], "env": [{"name": "REGION", "value": "eu"}],
    }}})  # fmt: skip
    found = resolve([(Path("/etc/kube/config"), doc)])
    assert found.exec_plugin == ExecPlugin(
        command="./get-token", args=("--cluster", "c"), env=(("REGION", "eu"),),
        api_version="client.authentication.k8s.io/v1beta1", workdir="/etc/kube",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "context", "message"),
    [
        (config(current=None), None, "no current-context"),
        (config(), "staging", "context 'staging' is not defined"),
        (config(contexts={"dev": {"cluster": "gone", "user": "u"}}), None,
         "cluster 'gone' is not defined"),
        (config(clusters={"c": {}}), None, "cluster 'c': server is not set"),
        (config(clusters={"c": {"server": "https://x", "certificate-authority-data": "%%"}}),
         None, "cluster 'c': certificate-authority-data is not base64"),
        (config(users={"u": {"client-key-data": "not base64!"}}), None,
         "user 'u': client-key-data is not base64"),
        (config(users={"u": {"auth-provider": {"name": "oidc"}}}), None,
         "auth-provider is not supported"),
        (config(users={"u": {"exec": {"args": ["x"]}}}), None, "exec.command is not set"),
    ],
)  # fmt: skip
def test_a_kubeconfig_that_cannot_be_used_names_what_is_wrong(
    doc: dict[str, Any], context: str | None, message: str
) -> None:
    with pytest.raises(KubeconfigError, match=message):
        resolve([(HOME, doc)], context)


def test_in_a_pod_the_service_account_is_used(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_bytes(PEM)
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster(env, tmp_path) == Endpoint(
        server="https://10.96.0.1:443", ca_file=str(tmp_path / "ca.crt"),
        token_file=str(tmp_path / "token"),
    )  # fmt: skip
    v6 = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster(v6, tmp_path).server == "https://[fd00::1]:443"  # type: ignore[union-attr]
    assert in_cluster({}, tmp_path) is None  # not in a pod
    assert in_cluster(env, tmp_path / "absent") is None  # no token mounted


def test_the_environments_proxy_unless_the_kubeconfig_names_one(tmp_path: Path) -> None:
    import yaml  # noqa: PLC0415 -- only these tests write YAML

    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config()))
    env = {"KUBECONFIG": str(path), "HTTPS_PROXY": "http://corp:3128"}
    assert load(env).proxy_url == "http://corp:3128"
    assert load({**env, "NO_PROXY": ".example"}).proxy_url is None
    named = config(clusters={"c": {"server": "https://api.example:6443",
                                   "proxy-url": "http://mine:8080"}})  # fmt: skip
    path.write_text(yaml.safe_dump(named))
    assert load(env).proxy_url == "http://mine:8080"


def test_a_socks_proxy_url_is_refused_naming_the_cluster() -> None:
    doc = config(clusters={"c": {"server": "https://x", "proxy-url": "socks5://p:1080"}})
    with pytest.raises(KubeconfigError, match="cluster 'c': proxy-url: socks5:// proxies are not"):
        resolve([(HOME, doc)])


def test_a_kubeconfig_set_wins_over_the_pods_service_account(tmp_path: Path) -> None:
    import yaml  # noqa: PLC0415 -- only these tests write YAML

    (tmp_path / "token").write_text("sa-token")
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config()))
    pod = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert load({**pod, "KUBECONFIG": str(path)}, service_account=tmp_path).token == TOKEN
    assert load(pod, service_account=tmp_path).token_file == str(tmp_path / "token")


def test_load_reads_the_kubeconfig_list_and_skips_missing_files(tmp_path: Path) -> None:
    import yaml  # noqa: PLC0415 -- only this test writes YAML

    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config()))
    listed = f"{tmp_path / 'missing'}:{path}"
    assert load({"KUBECONFIG": listed}).token == TOKEN
    with pytest.raises(KubeconfigError, match="no kubeconfig"):
        load({"KUBECONFIG": str(tmp_path / "missing")})
    (tmp_path / "bad").write_text("- a list\n")
    with pytest.raises(KubeconfigError, match="not a kubeconfig"):
        load({"KUBECONFIG": str(tmp_path / "bad")})


def test_an_endpoints_repr_shows_no_credential() -> None:
    found = resolve([(HOME, config(users={"u": {"token": "s3cret", "password": "pw"}}))])
    assert "s3cret" not in repr(found) and "pw" not in repr(found)


def test_wrapped_base64_is_read_and_inline_data_wins_over_a_file() -> None:
    wrapped = "\n".join(textwrap.wrap(base64.b64encode(PEM).decode(), 16))
    cluster = {"server": "https://x", "certificate-authority": "ca.crt",
               "certificate-authority-data": wrapped}  # fmt: skip
    found = resolve([(HOME, config(clusters={"c": cluster}))])
    assert (found.ca_data, found.ca_file) == (PEM, None)


def test_the_first_file_to_name_a_user_wins() -> None:
    first = config(current=None, clusters={}, contexts={}, users={"u": {"token": "first"}})
    second = config(users={"u": {"token": "second"}})
    found = resolve([(Path("/a"), first), (Path("/b"), second)])
    assert found.token == "first"  # noqa: S105 -- a test value
