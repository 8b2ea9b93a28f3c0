"""Where the API server is and who the operator is to it: in a pod, its ServiceAccount; elsewhere
a kubeconfig, read as kubectl reads it (stdlib and yaml; files are read in `load` only).

`Endpoint` is what both yield. Resolving a kubeconfig is a pure function of its documents, so
that every rule (the first file to name a cluster wins, relative paths are relative to the file
that holds them, ...) is tested without files.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connector_operator import proxy

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeconfigError(ValueError):
    """No usable connection: the message names the file or field at fault."""


@dataclass(frozen=True)
class ExecPlugin:
    """A credential plugin (client.authentication.k8s.io): a command that prints a token."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"
    workdir: str | None = None  # a relative command is found from the kubeconfig's folder


@dataclass(frozen=True)
class Endpoint:
    """One API server and the credentials to present to it. Certificates and keys come as a
    file or as PEM bytes; a token as a value or as a file read again as it is rotated."""

    server: str
    ca_file: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    cert_file: str | None = None
    cert_data: bytes | None = None
    key_file: str | None = None
    key_data: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = None
    exec_plugin: ExecPlugin | None = None

    def __repr__(self) -> str:  # credentials never reach a log through a repr
        return f"Endpoint(server={self.server!r})"


def in_cluster(environ: Mapping[str, str], root: Path = SERVICE_ACCOUNT) -> Endpoint | None:
    """The pod's own API server and ServiceAccount, when this runs in a pod."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port or not (root / "token").exists():
        return None
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    ca = root / "ca.crt"
    return Endpoint(
        server=f"https://{host}:{port}",
        ca_file=str(ca) if ca.exists() else None,
        token_file=str(root / "token"),
    )


def resolve(
    documents: Sequence[tuple[Path, Mapping[str, Any]]], context: str | None = None
) -> Endpoint:
    """The endpoint of `context` (else the current context) over kubeconfig `documents`, each
    with the file it came from, merged as kubectl merges KUBECONFIG: the first to set the
    current context, or to name a context, cluster or user, wins."""
    current: str | None = None
    named: dict[str, dict[str, tuple[Path, Mapping[str, Any]]]] = {
        "contexts": {}, "clusters": {}, "users": {},
    }  # fmt: skip
    for path, doc in documents:
        current = current or doc.get("current-context") or None
        for section, entries in named.items():
            for item in doc.get(section) or ():
                if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                    body = item.get(section[:-1]) or {}
                    entries.setdefault(item["name"], (path, body))
    chosen = context or current
    if not chosen:
        raise KubeconfigError("kubeconfig: no current-context is set and none was asked for")
    if chosen not in named["contexts"]:
        raise KubeconfigError(f"kubeconfig: context {chosen!r} is not defined")
    ctx = named["contexts"][chosen][1]
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if cluster_name not in named["clusters"]:
        raise KubeconfigError(
            f"kubeconfig: context {chosen!r}: cluster {cluster_name!r} is not defined"
        )
    cluster_file, cluster = named["clusters"][cluster_name]
    user_file, user = named["users"].get(user_name, (cluster_file, {})) if user_name else (
        cluster_file, {}
    )  # fmt: skip
    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise KubeconfigError(f"kubeconfig: cluster {cluster_name!r}: server is not set")
    if "auth-provider" in user:
        raise KubeconfigError(
            f"kubeconfig: user {user_name!r}: auth-provider is not supported (it was removed "
            "from kubectl too); use an exec credential plugin"
        )
    of_cluster, of_user = f"cluster {cluster_name!r}", f"user {user_name!r}"
    ca_data = _data(cluster, "certificate-authority-data", of_cluster)
    cert_data = _data(user, "client-certificate-data", of_user)
    key_data = _data(user, "client-key-data", of_user)
    # Where a file and inline data are both given, the data wins, as in kubectl.
    return Endpoint(
        server=server.rstrip("/"),
        ca_file=None if ca_data else _file(cluster_file, cluster.get("certificate-authority")),
        ca_data=ca_data,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
        proxy_url=_proxy(cluster.get("proxy-url"), f"kubeconfig: {of_cluster}: proxy-url"),
        cert_file=None if cert_data else _file(user_file, user.get("client-certificate")),
        cert_data=cert_data,
        key_file=None if key_data else _file(user_file, user.get("client-key")),
        key_data=key_data,
        token=user.get("token") or None,
        token_file=_file(user_file, user.get("tokenFile")),
        username=user.get("username") or None,
        password=user.get("password") or None,
        exec_plugin=_exec(user.get("exec"), user_file, user_name),
    )  # fmt: skip


def load(
    environ: Mapping[str, str] | None = None,
    context: str | None = None,
    service_account: Path = SERVICE_ACCOUNT,
) -> Endpoint:
    """KUBECONFIG (a list of files) when set; else, in a pod, its ServiceAccount; else
    ~/.kube/config. The order of controller-runtime and client-go's clientcmd: a KUBECONFIG
    set on purpose wins over the pod's own identity."""
    environ = os.environ if environ is None else environ
    endpoint = _load(environ, context, service_account)
    if endpoint.proxy_url is not None:
        return endpoint
    try:
        found = proxy.from_environment(environ, endpoint.server)
    except proxy.ProxyError as error:
        raise KubeconfigError(str(error)) from None
    return dataclasses.replace(endpoint, proxy_url=found)


def _load(environ: Mapping[str, str], context: str | None, service_account: Path) -> Endpoint:
    listed = [p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if not listed and context is None and (found := in_cluster(environ, service_account)):
        return found
    paths = [Path(p).expanduser() for p in listed] or [Path("~/.kube/config").expanduser()]
    documents: list[tuple[Path, Mapping[str, Any]]] = []
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            continue  # kubectl skips a missing file of the list
        except (OSError, yaml.YAMLError) as error:
            raise KubeconfigError(f"kubeconfig {path}: cannot be read: {error}") from None
        if not isinstance(doc, Mapping):
            raise KubeconfigError(f"kubeconfig {path}: not a kubeconfig (a mapping)")
        documents.append((path, doc))
    if not documents:
        raise KubeconfigError(
            "no kubeconfig: not in a pod, and " + (f"none of {listed}" if listed else
                                                   "~/.kube/config") + " exists"
        )  # fmt: skip
    return resolve(documents, context)


def _proxy(value: object, where: str) -> str | None:
    if not value:
        return None
    try:
        return proxy.checked(str(value), where)
    except proxy.ProxyError as error:
        raise KubeconfigError(str(error)) from None


def _file(origin: Path, value: object) -> str | None:
    """A path of a kubeconfig, relative to the file that holds it."""
    if not isinstance(value, str) or not value:
        return None
    return str((origin.parent / Path(value).expanduser()).resolve())


def _data(section: Mapping[str, Any], field: str, where: str) -> bytes | None:
    value = section.get(field)
    if value in (None, ""):
        return None
    try:
        return base64.b64decode("".join(str(value).split()), validate=True)  # wrapped lines too
    except (binascii.Error, ValueError):
        raise KubeconfigError(f"kubeconfig: {where}: {field} is not base64") from None


def _exec(spec: object, origin: Path, user: object) -> ExecPlugin | None:
    if not spec:
        return None
    if not isinstance(spec, Mapping) or not isinstance(spec.get("command"), str):
        raise KubeconfigError(f"kubeconfig: user {user!r}: exec.command is not set")
    env = tuple((str(e["name"]), str(e.get("value", ""))) for e in spec.get("env") or ()
                if isinstance(e, Mapping) and "name" in e)  # fmt: skip
    return ExecPlugin(
        command=spec["command"],
        args=tuple(str(a) for a in spec.get("args") or ()),
        env=env,
        api_version=str(spec.get("apiVersion") or ExecPlugin.api_version),
        workdir=str(origin.parent),
    )
