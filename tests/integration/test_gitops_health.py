"""GitOps health with the real evaluators: real Connectors, driven by the real operator through
every state, each captured from the API server and judged by Argo CD's health check
(deploy/argocd/health.lua, run as Argo CD runs it: tests/argocd) and by kstatus, the library
Flux's health checks read (status.Compute itself: tests/kstatus). EXPECTED is the README's table;
`-s` prints what was measured."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.argocd.health import Health, evaluate
from tests.integration.conftest import Connectors, Operator, connector, pod_kept, s3
from tests.kstatus.compute import KStatus, compute
from tests.support import eventually

pytestmark = pytest.mark.cluster

# What a Connector shows: (Argo CD health, kstatus status).
EXPECTED = {
    # Applied, no operator has written a status yet. kstatus finds no condition and no
    # observedGeneration to go by: "Resource is current". Flux thus counts a Connector healthy
    # until the operator's first status write (Argo CD: Progressing).
    "no status yet": ("Progressing", "Current"),
    "Starting": ("Progressing", "InProgress"),
    "Running": ("Healthy", "Current"),
    "Restarting": ("Progressing", "InProgress"),
    "Stopping": ("Progressing", "InProgress"),
    # Ready=True (stopped is what was asked for): Current for kstatus, Suspended for Argo CD.
    "Stopped": ("Suspended", "Current"),
    "Failed": ("Degraded", "Failed"),
    "Stalled SecretNotFound": ("Degraded", "Failed"),
    "Stalled NameTaken": ("Degraded", "Failed"),
    # Blocked again after an edit: the verdict is of the new generation, not still in progress.
    "Stalled NameTaken after an edit": ("Degraded", "Failed"),
    "Stalled InvalidAction": ("Degraded", "Failed"),
    # A spec edited while no operator ran: the status is of the generation before.
    "unobserved generation": ("Progressing", "InProgress"),
    "Running after the edit": ("Healthy", "Current"),
}


def capture(
    connectors: Connectors, name: str, phase: str | None = None, stalled: str | None = None
) -> dict[str, Any]:
    """The Connector as the API server returns it, once its status is of its current generation
    and shows `phase` or a Stalled condition of reason `stalled`."""

    def seen() -> dict[str, Any] | None:
        body = connectors.get(name)
        status = body.get("status") or {}
        if status.get("observedGeneration") != body["metadata"]["generation"]:
            return None
        if phase is not None and status.get("phase") != phase:
            return None
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        if stalled is not None and conditions.get("Stalled", {}).get("reason") != stalled:
            return None
        return body

    return eventually(seen, 180, f"{name} to show {phase or ''}{stalled or ''}")


@contextlib.contextmanager
def pods_refused(connectors: Connectors, name: str) -> Iterator[None]:
    """No pod of the Connector `name` can be made (an admission policy): it cannot become
    available, so Starting or Restarting lasts until the block ends."""
    ns, label = connectors.namespace, "app.kubernetes.io/instance"
    policy = f"refuse-{ns}-{name}"
    manifests = f"""
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {policy}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {ns}}}}}
    resourceRules:
    - {{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}}
  validations:
  - expression: >-
      !has(object.metadata.labels) || !('{label}' in object.metadata.labels)
      || object.metadata.labels['{label}'] != '{name}'
    message: no pods of {name} here
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {policy}}}
spec:
  policyName: {policy}
  validationActions: [Deny]
"""
    connectors.cluster.kubectl("apply", "-f", "-", stdin=manifests)

    def in_effect() -> bool:  # the API server loads a policy a moment after it is made
        out = connectors.kubectl(
            "run", "policy-probe", "--image=none", "--dry-run=server",
            f"--labels={label}={name}", check=False,
        )  # fmt: skip
        return "created" not in out

    try:
        eventually(in_effect, what=f"the policy against the pods of {name} to be in effect")
        yield
    finally:
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            connectors.cluster.kubectl("delete", kind, policy, "--ignore-not-found")


def judge(captured: dict[str, dict[str, Any]]) -> dict[str, tuple[Health, KStatus]]:
    """Both evaluators on every captured object; prints the table (`-s`)."""
    names = list(captured)
    verdicts = compute([captured[n] for n in names])
    judged = {n: (evaluate(captured[n]), k) for n, k in zip(names, verdicts, strict=True)}
    for name, (health, kstatus) in judged.items():
        phase = (captured[name].get("status") or {}).get("phase", "-")
        print(
            f"{name:<24} phase {phase:<10} Argo CD {health.status:<12} kstatus "
            f"{kstatus.status:<11} | {health.message} | {kstatus.message}"
        )
    return judged


def kstatus_message(body: dict[str, Any]) -> str:
    """What kstatus says of a status whose generation it has observed: the message of the first
    abnormal-true condition, else whether Ready is True."""
    conditions = (body.get("status") or {}).get("conditions", [])
    for c in conditions:
        if c["type"] in ("Reconciling", "Stalled") and c["status"] == "True":
            return str(c["message"])
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return "Resource is Ready" if ready else "Resource is current"


def assert_as_expected(
    captured: dict[str, dict[str, Any]], judged: dict[str, tuple[Health, KStatus]]
) -> None:
    measured = {n: (h.status, k.status) for n, (h, k) in judged.items()}
    assert measured == {n: EXPECTED[n] for n in captured}
    for name, (health, kstatus) in judged.items():
        if name in ("no status yet", "unobserved generation"):
            continue  # their messages are the evaluators' own, checked where they are made
        assert health.message == captured[name]["status"]["message"], name
        assert kstatus.message == kstatus_message(captured[name]), name


def test_a_connectors_life_as_argo_cd_and_kstatus_see_it(
    start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    captured: dict[str, dict[str, Any]] = {}
    connectors.apply(s3("life"))
    captured["no status yet"] = connectors.get("life")
    assert "status" not in captured["no status yet"], "no operator has run yet"
    assert compute([captured["no status yet"]])[0].message == "Resource is current"
    assert evaluate(captured["no status yet"]).message == (
        "Waiting for the operator to report the Connector's status."
    )

    with pods_refused(connectors, "life"):
        start_operator()
        captured["Starting"] = capture(connectors, "life", "Starting")
    captured["Running"] = capture(connectors, "life", "Running")

    with pods_refused(connectors, "life"):
        connectors.apply(s3("life", region="us-east-1"))
        captured["Restarting"] = capture(connectors, "life", "Restarting")
    connectors.wait_phase("life", "Running", timeout=180)

    with pod_kept(connectors, "life"):
        connectors.annotate("life", "stop")
        captured["Stopping"] = capture(connectors, "life", "Stopping")
    captured["Stopped"] = capture(connectors, "life", "Stopped")

    connectors.annotate("life", "fail")
    captured["Failed"] = capture(connectors, "life", "Failed")

    assert_as_expected(captured, judge(captured))


def test_blocked_connectors_are_degraded_and_failed(
    operator: Operator, connectors: Connectors
) -> None:
    captured: dict[str, dict[str, Any]] = {}
    connectors.apply(
        connector(
            "nosecret", "AmazonS3", bucket_name="orders", region="eu-central-1",
            credentials_secret_ref={"name": "absent-creds"},
        )
    )  # fmt: skip
    captured["Stalled SecretNotFound"] = capture(connectors, "nosecret", stalled="SecretNotFound")
    assert captured["Stalled SecretNotFound"]["status"]["phase"] == "Starting"

    theirs = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "connector-taken"},
        "spec": {"ports": [{"name": "web", "port": 80}]},
    }
    connectors.apply(theirs)
    connectors.apply(connector("taken"))
    captured["Stalled NameTaken"] = capture(connectors, "taken", stalled="NameTaken")
    connectors.apply(s3("taken"))  # an edit: HttpData becomes AmazonS3
    captured["Stalled NameTaken after an edit"] = capture(connectors, "taken", stalled="NameTaken")
    assert captured["Stalled NameTaken after an edit"]["metadata"]["generation"] == 2

    connectors.apply(connector("odd"))
    connectors.wait_phase("odd", "Running")
    connectors.annotate("odd", "reboot")
    captured["Stalled InvalidAction"] = capture(connectors, "odd", stalled="InvalidAction")
    assert captured["Stalled InvalidAction"]["status"]["phase"] == "Running"

    assert_as_expected(captured, judge(captured))


def test_an_edit_no_operator_has_seen_is_in_progress(
    start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    captured: dict[str, dict[str, Any]] = {}
    first = start_operator()
    connectors.apply(s3("edited"))
    connectors.wait_phase("edited", "Running")
    first.stop()
    connectors.apply(s3("edited", bucket_name="archive"))
    body = connectors.get("edited")
    assert body["metadata"]["generation"] == body["status"]["observedGeneration"] + 1
    assert body["status"]["phase"] == "Running", "the status still tells of the spec before"
    captured["unobserved generation"] = body

    start_operator()
    captured["Running after the edit"] = capture(connectors, "edited", "Running")

    judged = judge(captured)
    assert_as_expected(captured, judged)
    health, kstatus = judged["unobserved generation"]
    generation = body["metadata"]["generation"]
    assert health.message == (
        f"Waiting for the operator to observe generation {generation} "
        f"(its status is of generation {generation - 1})."
    )
    observed = generation - 1
    assert kstatus.message == (
        f"Connector generation is {generation}, but latest observed generation is {observed}"
    )
