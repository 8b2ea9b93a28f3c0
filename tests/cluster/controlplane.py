"""A real local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok) run as local processes; standard library only.

Used by the pytest session fixture and by `make cluster-up` / `make run`:

    python tests/cluster/controlplane.py up [--dir DIR]   # start in the background
    python tests/cluster/controlplane.py down [--dir DIR] # stop and remove DIR
    python tests/cluster/controlplane.py run [--dir DIR]  # start in the foreground until Ctrl-C
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = Path(
    os.environ.get("CONNECTOR_CLUSTER_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "connector-operator"
    / "cluster"
)
NODE_NAMES = ("kwok-node-0",)
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)
# Components stop in this order: clients first, storage last.
STOP_ORDER = ("kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")
PR_SET_PDEATHSIG = 1
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
{every_request_of}  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
"""


def audit_policy(every_request_of: Sequence[str] = ()) -> str:
    """Every write, and every request (reads and watches included) of the users named: the
    benchmark counts an operator's reads that way; the tests audit writes only."""
    users = "".join(
        f"  - level: Metadata\n    users: [{json.dumps(u)}]\n" for u in every_request_of
    )
    return AUDIT_POLICY.format(every_request_of=users)


SIZING_ENV = {
    # Sizing field: the variable that sets it
    "node_pods": "CONNECTOR_CLUSTER_NODE_PODS",
    "node_cpu": "CONNECTOR_CLUSTER_NODE_CPU",
    "node_memory": "CONNECTOR_CLUSTER_NODE_MEMORY",
    "controller_manager_qps": "CONNECTOR_CLUSTER_KCM_QPS",
    "controller_manager_burst": "CONNECTOR_CLUSTER_KCM_BURST",
    "scheduler_qps": "CONNECTOR_CLUSTER_SCHEDULER_QPS",
    "scheduler_burst": "CONNECTOR_CLUSTER_SCHEDULER_BURST",
}


@dataclass(frozen=True)
class Sizing:
    """How much the local cluster holds and how fast its controllers may talk to the API server.

    The one kwok node's capacity is large enough by default for 5,000 pods of the operator's
    default request (100m CPU, 256Mi). The controller manager's and scheduler's client limits
    (queries per second and burst) are their upstream defaults unless set: they bound how fast
    Deployments become pods, so every benchmark report states the values used. Each can be set
    by an environment variable (`from_env`), for `make cluster-up` and `make bench` alike."""

    node_pods: int = 5000
    node_cpu: str = "1000"
    node_memory: str = "4Ti"
    controller_manager_qps: float | None = None  # upstream: 20
    controller_manager_burst: int | None = None  # upstream: 30
    scheduler_qps: float | None = None  # upstream: 50
    scheduler_burst: int | None = None  # upstream: 100

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Sizing:
        """The defaults, overridden by the variables of SIZING_ENV that are set; a bad value
        names its variable."""
        environ = os.environ if environ is None else environ
        kinds: dict[str, Callable[[str], object]] = {
            "node_pods": int, "node_cpu": str, "node_memory": str,
            "controller_manager_qps": float, "controller_manager_burst": int,
            "scheduler_qps": float, "scheduler_burst": int,
        }  # fmt: skip
        values: dict[str, object] = {}
        for name, variable in SIZING_ENV.items():
            if (raw := environ.get(variable)) is None or raw == "":
                continue
            try:
                values[name] = kinds[name](raw)
            except ValueError:
                kind = kinds[name].__name__
                raise ControlPlaneError(f"{variable}={raw!r} is not a {kind}") from None
        return cls(**values)  # type: ignore[arg-type]

    def args(self, component: str) -> list[str]:
        """The client-limit flags of the controller manager or the scheduler."""
        limits = {
            "kube-controller-manager": (self.controller_manager_qps, self.controller_manager_burst),
            "kube-scheduler": (self.scheduler_qps, self.scheduler_burst),
        }.get(component, (None, None))
        qps, burst = limits
        return [
            *([f"--kube-api-qps={qps:g}"] if qps is not None else []),
            *([f"--kube-api-burst={burst}"] if burst is not None else []),
        ]

    def report(self) -> dict[str, object]:
        """What a benchmark report states: every value, the upstream defaults named as such."""
        upstream = {
            "controller_manager_qps": 20, "controller_manager_burst": 30,
            "scheduler_qps": 50, "scheduler_burst": 100,
        }  # fmt: skip
        out: dict[str, object] = {}
        for name in SIZING_ENV:
            value = getattr(self, name)
            out[name] = value if value is not None else f"{upstream[name]} (upstream default)"
        return out


class ControlPlaneError(RuntimeError):
    """A component failed to build, start or answer; the message carries its log tail."""


def log(message: str) -> None:
    print(f"[control-plane {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def binaries(build: bool = True) -> Path:
    """The directory of version-stamped binaries, built first when missing."""
    script = HERE / "build.sh"
    if not build:
        out = subprocess.run([str(script), "--print"], check=True, capture_output=True, text=True)
        return Path(out.stdout.strip())
    # The build's progress goes to stderr so that a user sees it; the last stdout line is the path.
    out = subprocess.run([str(script)], check=False, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise ControlPlaneError(f"building the control plane binaries failed ({script})")
    return Path(out.stdout.strip().splitlines()[-1])


_GIVEN: set[int] = set()  # the ports this process has handed out


def free_port() -> int:
    """A port that is free now, below Linux's ephemeral range (32768 and up), where outgoing
    connections (the components' own among them) would otherwise take it before we bind.
    Never one this process handed out before: two asked for in a row (an operator's metrics
    and health ports) are often not bound yet when the second is chosen."""
    for _ in range(200):
        port = random.randint(20000, 32000)  # noqa: S311 -- spreading ports, not a secret
        if port in _GIVEN:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _GIVEN.add(port)
            return port
    raise ControlPlaneError("no free loopback port between 20000 and 32000")


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> None:
    # A component must never outlive whoever started it, even a SIGKILLed pytest.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ControlPlaneError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def make_pki(pki: Path) -> None:
    """A CA, the API server's serving certificate, one client certificate per user, a SA key."""
    pki.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "3650", "-subj", "/CN=connector-operator-test-ca", cwd=pki,
    )  # fmt: skip
    sans = (
        "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    )
    certs = {
        "apiserver": ("/CN=kube-apiserver", f"subjectAltName={sans}\nextendedKeyUsage=serverAuth"),
        "admin": ("/O=system:masters/CN=connector-operator-admin", "extendedKeyUsage=clientAuth"),
        "controller-manager": ("/CN=system:kube-controller-manager", "extendedKeyUsage=clientAuth"),
        "scheduler": ("/CN=system:kube-scheduler", "extendedKeyUsage=clientAuth"),
        # kwok acts for the nodes it simulates; the admin group keeps it simple and test-only.
        "kwok": ("/O=system:masters/CN=kwok-controller", "extendedKeyUsage=clientAuth"),
    }
    for name, (subject, ext) in certs.items():
        (pki / f"{name}.ext").write_text(ext + "\n")
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.csr", "-subj", subject, cwd=pki,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "365", "-out", f"{name}.crt", "-extfile", f"{name}.ext",
            cwd=pki,
        )  # fmt: skip
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(f"{user}.crt"),
                    "client-key-data": b64(f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML: no third-party module needed
    path.chmod(0o600)


@dataclass
class Component:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 -- prctl must run in the child; no threads fork here
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class ControlPlane:
    """One local cluster under `workdir`. `start()` returns once a node is Ready."""

    workdir: Path
    bin_dir: Path
    extra_args: dict[str, list[str]] = field(default_factory=dict)
    sizing: Sizing = field(default_factory=Sizing.from_env)
    audit_every_request_of: tuple[str, ...] = ()  # users whose reads are audited too
    components: dict[str, Component] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def pids(self) -> list[int]:
        return [c.process.pid for c in self.components.values() if c.process is not None]

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 120.0, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            try:
                self._start(timeout)
                return
            except ControlPlaneError as error:
                self.stop()
                # A port that was free when picked can still be taken before the bind: that
                # race is worth new ports; any other failure is reported at once.
                if "address already in use" not in str(error) or attempt == attempts:
                    raise
                log(f"a port was taken before its component bound it; retrying ({error})")
                self._clear()
            except BaseException:
                self.stop()
                raise

    def _clear(self) -> None:
        for path in self.workdir.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        self.components.clear()
        self.ports.clear()

    def _start(self, timeout: float) -> None:
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        pki = self.workdir / "pki"
        make_pki(pki)
        for name in ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler"):
            self.ports[name] = free_port()
        for user in ("admin", "controller-manager", "scheduler", "kwok"):
            write_kubeconfig(self.workdir / f"{user}.kubeconfig", self.server, pki, user)
        self._write_kwok_config()
        (self.workdir / "audit-policy.yaml").write_text(audit_policy(self.audit_every_request_of))
        deadline = started + timeout
        self._launch("etcd")
        self._wait(
            "etcd", lambda: self._http_ok(f"http://127.0.0.1:{self.ports['etcd']}/health"), deadline
        )
        self._launch("kube-apiserver")
        self._wait("kube-apiserver", lambda: self._api_ok("/readyz"), deadline)
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            self._launch(name)
        self._create_nodes()
        self._wait("kwok", self._nodes_ready, deadline)
        # Pods in a new namespace need its default ServiceAccount, which the controller
        # manager creates: wait for the first one so that tests never race it.
        self._wait("kube-controller-manager", lambda: self._api_ok(
            "/api/v1/namespaces/default/serviceaccounts/default"), deadline)  # fmt: skip
        elapsed = time.monotonic() - started
        log(f"ready in {elapsed:.1f}s at {self.server}; KUBECONFIG={self.kubeconfig}")

    def stop(self) -> None:
        for name in STOP_ORDER:
            component = self.components.get(name)
            if component is not None:
                component.stop()

    def restart_apiserver(self, timeout: float = 60.0) -> None:
        """Stops the API server and starts it again on the same port over the same etcd data."""
        self.components["kube-apiserver"].stop()
        self._launch("kube-apiserver")
        self._wait("kube-apiserver", lambda: self._api_ok("/readyz"), time.monotonic() + timeout)

    def restart_controller_manager(self, timeout: float = 60.0) -> None:
        """Stops the controller manager and starts it again (with `extra_args` as they are now);
        returns once it answers its health check."""
        self.components["kube-controller-manager"].stop()
        self._launch("kube-controller-manager")
        url = f"https://127.0.0.1:{self.ports['controller-manager']}/healthz"
        deadline = time.monotonic() + timeout
        self._wait("kube-controller-manager", lambda: self._https_ok(url), deadline)

    @staticmethod
    def _https_ok(url: str) -> bool:
        """A loopback component's own serving certificate is self-signed: not verified."""
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def compact_etcd(self) -> int:
        """Compacts etcd's history up to its current revision (through its JSON gateway): a
        watch from any older resourceVersion then gets 410 Gone, whether the API server serves
        it from its cache or, while that fills after a restart, from etcd. Returns the revision."""
        base = f"http://127.0.0.1:{self.ports['etcd']}/v3/kv"
        head = self._etcd(f"{base}/range", {"key": base64.b64encode(b"/").decode()})
        revision = int(head["header"]["revision"])
        self._etcd(f"{base}/compaction", {"revision": str(revision), "physical": True})
        return revision

    @staticmethod
    def _etcd(url: str, body: dict[str, object]) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 -- loopback etcd
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 -- loopback
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def check_alive(self) -> None:
        dead = [c for c in self.components.values() if c.process is not None and not c.alive()]
        if dead:
            raise ControlPlaneError(self._describe_failure(dead[0], "exited"))

    # -- internals -------------------------------------------------------------------------
    def _argv(self, name: str) -> list[str]:
        w, p, b = self.workdir, self.workdir / "pki", self.bin_dir
        ports = self.ports
        argvs = {
            "etcd": [
                str(b / "etcd"), "--name=node0", f"--data-dir={w / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{ports['etcd']}",
                f"--advertise-client-urls=http://127.0.0.1:{ports['etcd']}",
                f"--listen-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
                f"--initial-cluster=node0=http://127.0.0.1:{ports['etcd-peer']}",
                "--unsafe-no-fsync=true", "--auto-compaction-retention=1",
                "--quota-backend-bytes=8589934592", "--log-level=warn",
            ],
            "kube-apiserver": [
                str(b / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                f"--secure-port={ports['apiserver']}",
                f"--tls-cert-file={p / 'apiserver.crt'}",
                f"--tls-private-key-file={p / 'apiserver.key'}",
                f"--client-ca-file={p / 'ca.crt'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=Node,RBAC",
                "--allow-privileged=true", "--endpoint-reconciler-type=none", "--profiling=false",
                f"--cert-dir={w / 'apiserver-certs'}",
                # Every write, by whom: tests count the operator's API writes from it.
                f"--audit-policy-file={w / 'audit-policy.yaml'}",
                f"--audit-log-path={self.audit_log}", "--audit-log-format=json",
            ],
            "kube-controller-manager": [
                str(b / "kube-controller-manager"),
                f"--kubeconfig={w / 'controller-manager.kubeconfig'}",
                f"--authentication-kubeconfig={w / 'controller-manager.kubeconfig'}",
                f"--authorization-kubeconfig={w / 'controller-manager.kubeconfig'}",
                "--bind-address=127.0.0.1", f"--secure-port={ports['controller-manager']}",
                "--leader-elect=false", "--use-service-account-credentials=true",
                f"--service-account-private-key-file={p / 'sa.key'}",
                f"--root-ca-file={p / 'ca.crt'}", f"--cert-dir={w / 'kcm-certs'}",
            ],
            "kube-scheduler": [
                str(b / "kube-scheduler"), f"--kubeconfig={w / 'scheduler.kubeconfig'}",
                f"--authentication-kubeconfig={w / 'scheduler.kubeconfig'}",
                f"--authorization-kubeconfig={w / 'scheduler.kubeconfig'}",
                "--bind-address=127.0.0.1", f"--secure-port={ports['scheduler']}",
                "--leader-elect=false",
            ],
            "kwok": [
                str(b / "kwok"), f"--kubeconfig={w / 'kwok.kubeconfig'}",
                f"--config={w / 'kwok.yaml'}", "--manage-all-nodes=true",
                "--node-lease-duration-seconds=40", "--cidr=10.244.0.0/16", "--node-ip=10.0.0.1",
            ],
        }  # fmt: skip
        return argvs[name] + self.sizing.args(name) + self.extra_args.get(name, [])

    def _launch(self, name: str) -> None:
        env = None
        if name == "kwok":
            # kwok also reads ~/.kwok/kwok.yaml: a private HOME keeps a user's config out.
            env = {**os.environ, "HOME": str(self.workdir)}
        component = Component(name, self._argv(name), self.workdir / f"{name}.log", env)
        self.components[name] = component
        component.start()

    def _write_kwok_config(self) -> None:
        stages = self.bin_dir / "stages"
        text = "\n---\n".join((stages / s).read_text() for s in KWOK_STAGES)
        (self.workdir / "kwok.yaml").write_text(text)

    def _ssl_context(self) -> ssl.SSLContext:
        pki = self.workdir / "pki"
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return context

    def _request(self, path: str, method: str = "GET", body: object = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 -- https to our own API server
            self.server + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(  # noqa: S310 -- https to our own API server
            request, context=self._ssl_context(), timeout=5
        ) as response:
            raw = response.read()
        return json.loads(raw) if raw.startswith(b"{") else raw.decode()

    def _api_ok(self, path: str) -> bool:
        try:
            self._request(path)
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return True

    @staticmethod
    def _http_ok(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 -- loopback etcd
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _create_nodes(self) -> None:
        sizing = self.sizing
        capacity = {
            "cpu": sizing.node_cpu, "memory": sizing.node_memory, "pods": str(sizing.node_pods)
        }  # fmt: skip
        for name in NODE_NAMES:
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {"kwok.x-k8s.io/node": "fake"},
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                },
                "status": {"allocatable": capacity, "capacity": capacity},
            }
            with contextlib.suppress(urllib.error.HTTPError):  # 409: it exists (a restart)
                self._request("/api/v1/nodes", "POST", node)

    def _nodes_ready(self) -> bool:
        try:
            nodes = self._request("/api/v1/nodes")
        except (OSError, urllib.error.URLError, ValueError):
            return False
        assert isinstance(nodes, dict)
        ready = [
            n
            for n in nodes.get("items", [])
            for c in n.get("status", {}).get("conditions", [])
            if c["type"] == "Ready" and c["status"] == "True"
        ]
        return len(ready) >= len(NODE_NAMES)

    def _wait(self, name: str, check: Callable[[], bool], deadline: float) -> None:
        while True:
            self.check_alive()
            if check():
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    self._describe_failure(self.components[name], "did not become ready in time")
                )
            time.sleep(0.2)

    def _describe_failure(self, component: Component, what: str) -> str:
        code = component.process.poll() if component.process else None
        status = f" (exit code {code})" if code is not None else ""
        return (
            f"{component.name} {what}{status}; last lines of {component.log_path}:\n"
            f"{component.log_tail()}"
        )


@contextlib.contextmanager
def running(workdir: Path | None = None, **kwargs: object) -> Iterator[ControlPlane]:
    """A started control plane; everything is stopped and removed on exit, whatever happens."""
    own_dir = workdir is None
    path = Path(tempfile.mkdtemp(prefix="connector-cp-")) if workdir is None else workdir
    plane = ControlPlane(workdir=path, bin_dir=binaries(), **kwargs)  # type: ignore[arg-type]
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()
        if own_dir:
            shutil.rmtree(path, ignore_errors=True)


# -- command line -----------------------------------------------------------------------------
def _supervise(workdir: Path, ready_fd: int) -> None:
    """Runs in the detached supervisor: start, report, wait for SIGTERM, stop."""
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    plane = ControlPlane(workdir=workdir, bin_dir=binaries(build=False))
    try:
        plane.start()
    except Exception as error:  # reported to the waiting parent, then exit
        os.write(ready_fd, f"error: {error}".encode())
        os.close(ready_fd)
        return
    (workdir / "pids").write_text(
        json.dumps({"supervisor": os.getpid(), "components": plane.pids()})
    )
    os.write(ready_fd, b"ok")
    os.close(ready_fd)
    try:
        while not stop:
            time.sleep(0.5)
            if any(not c.alive() for c in plane.components.values()):
                log("a component exited; stopping the control plane")
                break
    finally:
        plane.stop()


def cmd_up(workdir: Path) -> int:
    if (workdir / "pids").exists() and _supervisor_alive(workdir):
        print(f"export KUBECONFIG={workdir / 'admin.kubeconfig'}")
        log("already running")
        return 0
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    binaries()  # build in the foreground, where the user sees progress
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the supervisor: its own session, so the shell's Ctrl-C does not reach it
        os.close(read_fd)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        log_fd = os.open(workdir / "supervisor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        try:
            _supervise(workdir, write_fd)
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as ready:
        answer = ready.read()
    if answer != "ok":
        print(answer.removeprefix("error: "), file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        return 1
    print(f"export KUBECONFIG={workdir / 'admin.kubeconfig'}")
    return 0


def _supervisor_alive(workdir: Path) -> bool:
    try:
        pid = json.loads((workdir / "pids").read_text())["supervisor"]
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError):
        return False
    return True


def cmd_down(workdir: Path) -> int:
    try:
        pids = json.loads((workdir / "pids").read_text())
    except (OSError, ValueError):
        pids = {}
    supervisor = pids.get("supervisor")
    if supervisor:
        with contextlib.suppress(ProcessLookupError):
            os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _pid_alive(supervisor):
            time.sleep(0.2)
    for pid in pids.get("components", []):  # the supervisor's own cleanup failed: be sure
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(workdir, ignore_errors=True)
    log(f"stopped; removed {workdir}")
    return 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True


def cmd_run(workdir: Path) -> int:
    with running(workdir) as plane:
        print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
                plane.check_alive()
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=("up", "down", "run", "build", "status"))
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state directory")
    args = parser.parse_args(argv)
    workdir = args.dir.resolve()
    if args.command == "build":
        print(binaries())
        return 0
    if args.command == "status":
        alive = _supervisor_alive(workdir)
        print(f"running, KUBECONFIG={workdir / 'admin.kubeconfig'}" if alive else "not running")
        return 0 if alive else 1
    commands = {"up": cmd_up, "down": cmd_down, "run": cmd_run}
    try:
        return commands[args.command](workdir)
    except ControlPlaneError as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
