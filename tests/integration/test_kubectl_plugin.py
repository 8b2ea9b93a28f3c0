"""`kubectl connector`, run as a user runs it: the console script `kubectl-connector` as a
subprocess (and once through the real kubectl, which finds it on PATH), against the local
control plane with the operator running."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cluster
from tests.integration.conftest import S3_CREDENTIALS, Connectors, Operator, connector, s3

pytestmark = pytest.mark.cluster
SCRIPT = Path(sys.executable).parent / "kubectl-connector"


def plugin(
    cluster: Cluster, namespace: str, *args: str, via_kubectl: bool = False
) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"{SCRIPT} is missing: `make install` puts it there"
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    if via_kubectl:
        env["PATH"] = f"{SCRIPT.parent}{os.pathsep}{env['PATH']}"
        kubectl = shutil.which("kubectl", path=env["PATH"])
        assert kubectl is not None, "kubectl is on PATH with the local control plane"
        argv = [kubectl, "connector", "-n", namespace, *args]
    else:
        argv = [str(SCRIPT), "-n", namespace, *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180, check=False)


def test_stop_start_and_fail_wait_for_the_phase(
    cluster: Cluster, operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(connector("orders"))
    connectors.wait_phase("orders", "Running")
    ns = connectors.namespace

    stopped = plugin(cluster, ns, "stop", "orders", "--wait", "--timeout", "120")
    assert (stopped.returncode, stopped.stderr) == (0, "")
    assert "Stopped" in stopped.stdout
    assert connectors.status("orders")["phase"] == "Stopped"

    started = plugin(cluster, ns, "start", "orders", "--wait", via_kubectl=True)
    assert started.returncode == 0, started.stderr
    assert "Running" in started.stdout
    assert connectors.status("orders")["phase"] == "Running"

    failed = plugin(cluster, ns, "fail", "orders", "--wait")
    assert failed.returncode == 0, failed.stderr
    assert connectors.status("orders")["phase"] == "Failed"

    # From Failed only stop or delete: start is refused, and said so at once.
    refused = plugin(cluster, ns, "start", "orders", "--wait", "--timeout", "120")
    assert refused.returncode == 2, refused
    assert "refused" in refused.stderr
    assert connectors.status("orders")["phase"] == "Failed"

    quick = plugin(cluster, ns, "stop", "orders")  # without --wait: asked, not awaited
    assert quick.returncode == 0
    assert quick.stdout.strip() == f"connector {ns}/orders: stop requested"
    connectors.wait_phase("orders", "Stopped")


def test_a_connector_that_cannot_get_there_exits_2_and_says_why(
    cluster: Cluster, operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(
        connector(
            "nosecret", "AmazonS3", bucket_name="orders", region="eu-central-1",
            credentials_secret_ref={"name": "absent-creds"},
        )
    )  # fmt: skip
    result = plugin(cluster, connectors.namespace, "start", "nosecret", "--wait")
    assert result.returncode == 2, result
    assert "Stalled (SecretNotFound)" in result.stderr
    assert "absent-creds" in result.stderr


def test_a_timeout_exits_3_and_says_where_it_stands(
    cluster: Cluster, connectors: Connectors
) -> None:
    # No operator runs: the action is asked and never carried out.
    connectors.apply(connector("idle"))
    result = plugin(cluster, connectors.namespace, "stop", "idle", "--wait", "--timeout", "2")
    assert result.returncode == 3, result
    assert "not Stopped after 2s" in result.stderr
    assert connectors.get("idle")["metadata"]["annotations"]["dataspace.dev/action"] == "stop"


def test_an_unknown_connector_exits_1_without_a_traceback(
    cluster: Cluster, connectors: Connectors
) -> None:
    result = plugin(cluster, connectors.namespace, "stop", "nobody", "--wait")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: Connector {connectors.namespace}/nobody: not found"
    down = subprocess.run(
        [str(SCRIPT), "--kubeconfig", str(cluster.kubeconfig), "status"],
        env={**os.environ, "HTTPS_PROXY": "", "KUBECONFIG": "/nonexistent"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert down.returncode == 0, down.stderr  # --kubeconfig wins over KUBECONFIG
    bad = plugin(cluster, connectors.namespace, "status", "--kubeconfig", "/nonexistent")
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr


def test_status_shows_phase_conditions_children_and_events_but_no_credential(
    cluster: Cluster, operator: Operator, connectors: Connectors
) -> None:
    connectors.apply(connector("web"))
    connectors.apply(s3("vault", bucket_name="archive"))
    connectors.wait_phase("web", "Running")
    connectors.wait_phase("vault", "Running")
    ns = connectors.namespace

    listing = plugin(cluster, ns, "status")
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert rows[0] == ["NAME", "TYPE", "PHASE", "READY", "AGE"]
    assert [r[:4] for r in rows[1:]] == [
        ["vault", "AmazonS3", "Running", "True"],
        ["web", "HttpData", "Running", "True"],
    ]
    everywhere = plugin(cluster, ns, "status", "-A")
    assert [ns, "web", "HttpData", "Running", "True"] in [
        line.split()[:5] for line in everywhere.stdout.splitlines()
    ]

    screen = plugin(cluster, ns, "status", "vault")
    assert screen.returncode == 0, screen.stderr
    out = screen.stdout
    assert f"Connector {ns}/vault   AmazonS3" in out
    assert "Phase:       Running (generation 1, observed 1)" in out
    assert "bucket_name: archive" in out
    assert "credentials: inline (not shown)" in out
    conditions = out.split("Conditions:")[1].split("Children:")[0]
    assert any(line.split()[:2] == ["Ready", "True"] for line in conditions.splitlines())
    children = out.split("Children:")[1].split("Events:")[0]
    deployment = connectors.deployment("vault")
    assert deployment is not None
    assert f"Deployment/{deployment.metadata.name}   1/1 ready" in children
    assert "Secret/" in children  # the operator's Secret of the credentials, by name
    events = out.split("Events:")[1]
    assert "Running" in events
    for value in S3_CREDENTIALS.values():
        assert value not in out, "a credential reached the screen"


def test_logs_on_a_node_that_serves_none_fails_clearly(
    cluster: Cluster, operator: Operator, connectors: Connectors
) -> None:
    """The local control plane's kwok node runs no containers: no log to read."""
    connectors.apply(connector("quiet"))
    connectors.wait_phase("quiet", "Running")
    result = plugin(cluster, connectors.namespace, "logs", "quiet", "--tail", "5")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: logs of pod {connectors.namespace}/connector-quiet-")
    assert "could not read them from the pod's node" in result.stderr
    assert "Traceback" not in result.stderr
    stopped = plugin(cluster, connectors.namespace, "stop", "quiet", "--wait")
    assert stopped.returncode == 0
    none = plugin(cluster, connectors.namespace, "logs", "quiet")
    assert (none.returncode, none.stderr.strip()) == (
        1, f"error: connector {connectors.namespace}/quiet has no running pod (it is Stopped)",
    )  # fmt: skip
