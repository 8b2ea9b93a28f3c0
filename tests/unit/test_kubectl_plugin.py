"""The kubectl plugin's pure parts: what a status says of an action, what a user reads, and
its command line."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from connector_operator.kubectl_plugin import view
from connector_operator.kubectl_plugin.cli import parser
from connector_operator.kubectl_plugin.outcome import Exit, judge, where
from connector_operator.models import Action

NOW = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.UTC)


def connector(
    phase: str | None = "Running",
    requested: str | None = "start",
    accepted: bool = True,
    stalled: tuple[str, str] | None = None,
    **config: Any,
) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if phase == "Running" else "False",
                   "reason": phase or "", "message": "m",
                   "lastTransitionTime": "2026-12-04T11:55:00Z"}]  # fmt: skip
    if stalled is not None:
        conditions.append({"type": "Stalled", "status": "True", "reason": stalled[0],
                           "message": stalled[1]})  # fmt: skip
    status: dict[str, Any] = {"conditions": conditions, "message": f"It is {phase}."}
    if phase is not None:
        status["phase"] = phase
    if requested is not None:
        status["action"] = {"requested": requested, "accepted": accepted, "message": "said"}
    return {
        "metadata": {"name": "orders", "namespace": "team-a", "generation": 2,
                     "creationTimestamp": "2026-12-04T10:00:00Z"},
        "spec": {"storage_type": "AmazonS3" if config else "HttpData", "storage_config": config},
        "status": status,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("action", "body", "expected"),
    [
        (Action.STOP, connector("Running", "start"), None),  # not seen yet
        (Action.STOP, connector("Stopping", "stop"), None),  # on its way
        (Action.STOP, connector("Stopped", "stop"), Exit.REACHED),
        (Action.START, connector("Running", "start"), Exit.REACHED),
        (Action.FAIL, connector("Failed", "fail"), Exit.REACHED),
        (Action.START, connector("Failed", "start", accepted=False), Exit.BLOCKED),
        (Action.START, connector("Failed", "start"), Exit.BLOCKED),  # ProgressDeadlineExceeded
        (Action.START, connector("Starting", "start", stalled=("SecretNotFound", "x")),
         Exit.BLOCKED),
        (Action.START, connector(None, None), None),  # no status yet
    ],
)  # fmt: skip
def test_judge(action: Action, body: dict[str, Any], expected: Exit | None) -> None:
    outcome = judge(action, body)
    assert (outcome.code if outcome else None) == expected


def test_a_blocked_outcome_names_the_reason() -> None:
    outcome = judge(Action.START, connector("Starting", "start", stalled=("SecretNotFound", "y")))
    assert outcome is not None
    assert outcome.message == "Stalled (SecretNotFound): y"
    assert where(connector("Stopping", "stop")) == "Stopping: It is Stopping."


def test_the_listing_and_the_screen_show_no_credential() -> None:
    secrets = {"username_read": "AKIA-SECRET", "password_read": "pw-SECRET",
               "username_write": "w", "password_write": "pw-W"}  # fmt: skip
    body = connector(bucket_name="orders", region="eu-central-1", **secrets)
    listing = view.listing([body], NOW, namespaces=True)
    assert listing.splitlines()[1].split() == ["team-a", "orders", "AmazonS3", "Running", "True",
                                               "2h"]  # fmt: skip
    children = [view.Child("Deployment", "connector-orders", "1/1 ready")]
    screen = view.screen(body, children, [], NOW)
    assert "bucket_name: orders" in screen
    assert "credentials: inline (not shown)" in screen
    assert "Deployment/connector-orders   1/1 ready" in screen
    for secret in ("AKIA-SECRET", "pw-SECRET", "pw-W"):
        assert secret not in screen
        assert secret not in listing


def test_a_referenced_secret_is_shown_by_name() -> None:
    body = connector(bucket_name="b", region="r", credentials_secret_ref={"name": "creds"})
    assert ("credentials", "Secret creds") in view.storage_shown(body["spec"])


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [("2026-12-04T11:59:15Z", "45s"), ("2026-12-04T11:48:00Z", "12m"),
     ("2026-12-01T12:00:00Z", "3d"), (None, "-")],
)  # fmt: skip
def test_ages_read_as_kubectls(stamp: str | None, expected: str) -> None:
    assert view.age(stamp, NOW) == expected


def test_connection_flags_are_taken_before_and_after_the_command() -> None:
    before = parser().parse_args(["-n", "team-a", "stop", "orders", "--wait"])
    after = parser().parse_args(["stop", "orders", "-n", "team-b", "--kubeconfig", "k"])
    assert (before.namespace, before.wait, before.timeout) == ("team-a", True, 300.0)
    assert (after.namespace, after.kubeconfig) == ("team-b", "k")


def test_a_usage_error_exits_1_not_2() -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["stop"])
    assert exited.value.code == Exit.ERROR


def test_without_its_client_the_plugin_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys  # noqa: PLC0415 -- only this test hides a module

    from connector_operator.kubectl_plugin.cli import main  # noqa: PLC0415

    # As the operator's image installs the package: without the `kubectl` extra.
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    monkeypatch.delitem(sys.modules, "connector_operator.kubectl_plugin.client", raising=False)
    assert main(["status"]) == Exit.ERROR
    assert "pip install 'connector-operator[kubectl]'" in capsys.readouterr().err
