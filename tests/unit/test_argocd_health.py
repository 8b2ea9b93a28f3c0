"""deploy/argocd/health.lua, Argo CD's health check of a Connector, run by a real Lua 5.1 the
way Argo CD runs it (tests/argocd/health.py), on hand-written objects: every phase, and the
edges a live operator rarely shows (no status, no conditions, a phase newer than the script)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51
import pytest
import yaml

from tests.argocd.health import INVALID_MESSAGE, SCRIPT, Health, evaluate

ARGOCD = Path(__file__).resolve().parent.parent.parent / "deploy" / "argocd"
CRD = ARGOCD.parent.parent / "crds" / "dataspace.dev_connectors.yaml"
KEY = "resource.customizations.health.dataspace.dev_Connector"


def connector(
    phase: str | None = None,
    *conditions: tuple[str, str, str],
    message: str | None = "What the operator says.",
    generation: int = 4,
    observed: int | None = 4,
) -> dict[str, Any]:
    """A Connector as the API server returns it; conditions as (type, status, reason)."""
    status: dict[str, Any] = {
        "conditions": [
            {"type": t, "status": s, "reason": r, "message": f"{t} says {r}.",
             "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation}
            for t, s, r in conditions
        ],
    }  # fmt: skip
    for key, value in (("phase", phase), ("message", message), ("observedGeneration", observed)):
        if value is not None:
            status[key] = value
    return {
        "apiVersion": "dataspace.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": "orders", "namespace": "team-a", "generation": generation},
        "spec": {"storage_type": "HttpData", "storage_config": {}},
        "status": status,
    }


def test_the_configmap_embeds_health_lua_verbatim() -> None:
    """One source: argocd-cm.yaml carries health.lua as it is, under the key Argo CD reads for
    the CRD's group and kind."""
    configmap = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    assert (configmap["kind"], configmap["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert configmap["data"] == {KEY: SCRIPT.read_text()}
    crd = yaml.safe_load(CRD.read_text())
    assert KEY.endswith(f".{crd['spec']['group']}_{crd['spec']['names']['kind']}")


def test_the_application_installs_the_chart_of_this_repository() -> None:
    application = yaml.safe_load((ARGOCD / "application.yaml").read_text())
    assert application["kind"] == "Application"
    source = application["spec"]["source"]
    assert source["path"] == "deploy/helm/connector-operator"
    assert application["spec"]["destination"]["namespace"] == "connector-operator-system"


RECONCILING = [("Ready", "False", "X"), ("Reconciling", "True", "X")]


@pytest.mark.parametrize(
    ("phase", "conditions", "expected"),
    [
        ("Running", [("Ready", "True", "Running")], "Healthy"),
        ("Starting", [("Ready", "False", "Starting"), ("Reconciling", "True", "Starting")],
         "Progressing"),
        ("Restarting", [("Ready", "False", "Restarting"), ("Reconciling", "True", "Restarting")],
         "Progressing"),
        ("Stopping", [("Ready", "False", "Stopping"), ("Reconciling", "True", "Stopping")],
         "Progressing"),
        ("Stopped", [("Ready", "True", "Stopped")], "Suspended"),
        ("Failed", [("Ready", "False", "FailRequested"), ("Stalled", "True", "FailRequested")],
         "Degraded"),
        # Stalled outranks the phase: a missing Secret while Starting, an unknown action while
        # Running, a storage check that fails in enforce mode.
        ("Starting", [("Ready", "False", "SecretNotFound"), ("Stalled", "True", "SecretNotFound")],
         "Degraded"),
        ("Running", [("Ready", "False", "InvalidAction"), ("Stalled", "True", "InvalidAction")],
         "Degraded"),
        # Enforce mode's first check on its way: converging.
        ("Starting", [("Ready", "False", "StorageCheckPending"),
                      ("Reconciling", "True", "StorageCheckPending")], "Progressing"),
        # The storage check's verdict does not change the health: the phase says it.
        ("Running", [("Ready", "True", "Running"), ("StorageReachable", "False", "AccessDenied")],
         "Healthy"),
        # A phase alone, without conditions (an older operator), still decides.
        ("Running", [], "Healthy"),
        ("Stopped", [], "Suspended"),
        ("Failed", [], "Degraded"),
    ],
)  # fmt: skip
def test_each_phase_and_the_status_message(
    phase: str, conditions: list[tuple[str, str, str]], expected: str
) -> None:
    assert evaluate(connector(phase, *conditions)) == Health(expected, "What the operator says.")


@pytest.mark.parametrize(
    "status",
    [None, {}, {"observedGeneration": 4}, {"message": "hello"}],
    ids=["no status", "empty status", "only observedGeneration", "only a message"],
)
def test_no_status_yet_is_progressing(status: dict[str, Any] | None) -> None:
    body = connector("Running")
    if status is None:
        del body["status"]
    else:
        body["status"] = status
    assert evaluate(body) == Health(
        "Progressing", "Waiting for the operator to report the Connector's status."
    )


@pytest.mark.parametrize("phase", ["Running", "Stopped", "Failed", "Starting"])
def test_an_unobserved_generation_is_progressing_whatever_the_status_says(phase: str) -> None:
    body = connector(phase, ("Ready", "True", phase), generation=7, observed=6)
    assert evaluate(body) == Health(
        "Progressing",
        "Waiting for the operator to observe generation 7 (its status is of generation 6).",
    )


def test_without_observed_generation_the_status_is_read_as_it_is() -> None:
    """A Connector blocked before its first pass (NameTaken, InvalidSpec) has conditions and a
    message but no phase and no observedGeneration."""
    taken = "Another object is named connector-orders."
    stalled = [("Ready", "False", "NameTaken"), ("Stalled", "True", "NameTaken")]
    body = connector(None, *stalled, message=taken, observed=None)
    assert evaluate(body) == Health("Degraded", taken)


def test_without_a_status_message_the_stalled_condition_speaks() -> None:
    body = connector("Failed", ("Stalled", "True", "FailRequested"), message=None)
    assert evaluate(body) == Health("Degraded", "Stalled says FailRequested.")
    assert evaluate(connector("Running", message=None)) == Health("Healthy", "")


@pytest.mark.parametrize(
    ("phase", "conditions", "expected"),
    [
        ("Hibernating", [("Ready", "True", "Hibernating")], "Healthy"),
        ("Hibernating", RECONCILING, "Progressing"),
        (None, RECONCILING, "Progressing"),
        (None, [("Ready", "False", "X")], "Progressing"),
        (None, [("Ready", "True", "X")], "Healthy"),
    ],
)
def test_a_phase_the_script_does_not_know_falls_back_to_the_kstatus_conditions(
    phase: str | None, conditions: list[tuple[str, str, str]], expected: str
) -> None:
    assert evaluate(connector(phase, *conditions)).status == expected


def test_an_unknown_phase_without_a_deciding_condition_is_unknown_and_named() -> None:
    health = evaluate(connector("Hibernating", ("Ready", "False", "Hibernating")))
    assert health == Health("Unknown", "Unknown phase Hibernating: What the operator says.")
    assert evaluate(connector("Hibernating", message=None)).message == (
        "Unknown phase Hibernating: no message"
    )


def test_empty_conditions_and_missing_metadata_generation() -> None:
    body = connector("Stopping")
    del body["metadata"]["generation"]
    assert evaluate(body).status == "Progressing"


class TestTheHarnessIsArgoCD:
    """The stand-in is only as good as its likeness: what Argo CD refuses, it refuses too."""

    def test_arrays_are_tables_from_index_one(self) -> None:
        script = 'return {status = "Healthy", message = obj.a[1].b .. "," .. #obj.a}'
        assert evaluate({"a": [{"b": "x"}, {"b": "y"}]}, script) == Health("Healthy", "x,2")

    def test_integers_are_lua_numbers_printed_without_a_fraction(self) -> None:
        script = 'return {status = "Healthy", message = "g" .. obj.g .. "," .. (obj.g / 2)}'
        assert evaluate({"g": 5}, script).message == "g5,2.5"

    def test_null_is_no_key(self) -> None:
        script = 'return {status = obj.status == nil and "Progressing" or "Healthy"}'
        assert evaluate({"status": None}, script).status == "Progressing"

    @pytest.mark.parametrize(
        "expression", ['string.upper("x")', '("x"):upper()', "math.floor(1)", "io.write('x')"]
    )
    def test_no_string_math_or_io_library(self, expression: str) -> None:
        with pytest.raises(lupa.lua51.LuaError):
            evaluate({}, f'return {{status = "Healthy", message = {expression}}}')

    def test_a_status_argo_cd_does_not_know_becomes_unknown(self) -> None:
        assert evaluate({}, 'return {status = "Fine"}') == Health("Unknown", INVALID_MESSAGE)
