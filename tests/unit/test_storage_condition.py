"""Unit tests of the StorageReachable condition as the state machine sets it: the verdict
shown in warn mode without touching Ready, one event per change, the last verdict kept while
a new one is on its way, and enforce mode holding (never stopping) the workload."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connector_operator.conditions import READY, RECONCILING, STALLED, STORAGE_REACHABLE
from connector_operator.models import Condition, ConnectorStatus, Phase
from connector_operator.states import DeploymentState, Intent, Observed, Plan, decide, next_status
from connector_operator.storage.condition import StorageObservation
from connector_operator.storage.settings import Mode
from connector_operator.storage.verdict import Reason, Verdict

PLANE = "connector"
H = "4f2a9c0d1e8b7a6f5c4d3e2f1a0b9c8d"
NEW = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
T0 = "2025-03-01T10:00:00Z"
T1 = "2025-03-01T10:05:00Z"
GENERATION = 4

OK = Verdict(Reason.REACHABLE, "The read pair lists and reads the bucket.")
BAD_KEY = Verdict(
    Reason.INVALID_CREDENTIALS,
    "The read pair (username_read, password_read) was not accepted: the key is unknown or "
    "does not match when it tried to list the bucket (InvalidAccessKeyId).",
)
READ_ONLY_WRITER = Verdict(
    Reason.ACCESS_DENIED,
    "The write pair (username_write, password_write) was refused when it tried to write a "
    "probe object (AccessDenied).",
)
BROKE = Verdict(Reason.CHECK_FAILED, "The storage check could not finish (ValueError).")


def deployment(hash_: str, available: int = 1) -> DeploymentState:
    return DeploymentState(
        spec_replicas=1,
        config_hash=hash_,
        generation=2,
        observed_generation=2,
        replicas=1,
        updated_replicas=1,
        available_replicas=available,
    )


def observed(
    hash_: str | None, verdict: Verdict | None, mode: Mode = Mode.WARN, *, checked: bool = True
) -> Observed:
    return Observed(
        deployments={PLANE: None if hash_ is None else deployment(hash_)},
        pods=0 if hash_ is None else 1,
        storage=StorageObservation(mode, verdict) if checked else None,
    )


def running(storage: Condition | None = None) -> ConnectorStatus:
    conditions = [
        Condition(
            type=READY,
            status="True",
            reason="Running",
            message="The Connector is running.",
            last_transition_time=T0,
            observed_generation=GENERATION,
        )
    ]
    if storage is not None:
        conditions.append(storage)
    return ConnectorStatus(
        phase=Phase.RUNNING,
        observed_generation=GENERATION,
        conditions=conditions,
        config_hash=H,
        message="The Connector is running.",
    )


def stored_verdict(verdict: Verdict, generation: int = GENERATION) -> Condition:
    status = {True: "True", False: "False"}[verdict.reachable]
    return Condition(
        type=STORAGE_REACHABLE,
        status=status,
        reason=verdict.reason.value,
        message=verdict.message,
        last_transition_time=T0,
        observed_generation=generation,
    )


def plan_for(previous: ConnectorStatus, seen: Observed, requested: str | None = None) -> Plan:
    return decide(previous, requested, {PLANE: H}, seen)


def stored_after(previous: ConnectorStatus, plan: Plan) -> ConnectorStatus:
    return ConnectorStatus.model_validate(next_status(previous, plan, GENERATION + 1, T1))


def condition(status: ConnectorStatus, type_: str) -> Condition | None:
    return next((c for c in status.conditions if c.type == type_), None)


def events(plan: Plan) -> list[tuple[str, str]]:
    return [(e.type, e.reason) for e in plan.events]


class TestWarnMode:
    def test_a_reachable_storage_is_announced_once(self) -> None:
        plan = plan_for(running(), observed(H, OK))
        after = stored_after(running(), plan)

        shown = condition(after, STORAGE_REACHABLE)
        assert shown is not None
        assert (shown.status, shown.reason) == ("True", "Reachable")
        assert events(plan) == [("Normal", STORAGE_REACHABLE)]
        assert events(plan_for(after, observed(H, OK))) == []

    def test_a_failure_is_shown_with_its_reason_and_ready_is_unaffected(self) -> None:
        plan = plan_for(running(stored_verdict(OK)), observed(H, BAD_KEY))
        after = stored_after(running(stored_verdict(OK)), plan)

        shown = condition(after, STORAGE_REACHABLE)
        assert shown is not None
        assert (shown.status, shown.reason) == ("False", "InvalidCredentials")
        assert "read pair (username_read, password_read)" in shown.message
        assert shown.last_transition_time == T1
        assert plan.intent is Intent.RUN
        assert condition(after, READY) is not None
        assert condition(after, READY).status == "True"  # type: ignore[union-attr]
        assert condition(after, STALLED) is None
        assert events(plan) == [("Warning", "InvalidCredentials")]
        assert events(plan_for(after, observed(H, BAD_KEY))) == []

    def test_another_failure_of_the_same_reason_is_news(self) -> None:
        previous = running(stored_verdict(BAD_KEY))
        other = Verdict(Reason.INVALID_CREDENTIALS, BAD_KEY.message.replace("read", "write"))

        assert events(plan_for(previous, observed(H, other))) == [("Warning", "InvalidCredentials")]

    def test_the_fix_is_announced(self) -> None:
        plan = plan_for(running(stored_verdict(READ_ONLY_WRITER)), observed(H, OK))

        assert events(plan) == [("Normal", STORAGE_REACHABLE)]

    def test_a_check_that_broke_is_unknown_and_no_news(self) -> None:
        previous = running(stored_verdict(OK))
        plan = plan_for(previous, observed(H, BROKE))

        shown = condition(stored_after(previous, plan), STORAGE_REACHABLE)
        assert shown is not None
        assert (shown.status, shown.reason) == ("Unknown", "CheckFailed")
        assert events(plan) == []


class TestWhileACheckIsOnItsWay:
    def test_a_connector_never_checked_shows_unknown(self) -> None:
        plan = plan_for(ConnectorStatus(), observed(None, None))

        shown = condition(stored_after(ConnectorStatus(), plan), STORAGE_REACHABLE)
        assert shown is not None
        assert (shown.status, shown.reason) == ("Unknown", "Checking")
        assert events(plan) == [("Normal", "Starting")]

    def test_the_last_verdict_stays_as_it_was_stored(self) -> None:
        before = stored_verdict(BAD_KEY, generation=GENERATION - 1)
        previous = running(before)

        after = stored_after(previous, plan_for(previous, observed(H, None)))

        assert condition(after, STORAGE_REACHABLE) == before

    @pytest.mark.parametrize("mode", [Mode.WARN, Mode.ENFORCE])
    def test_a_connector_not_checked_loses_the_condition(self, mode: Mode) -> None:
        previous = running(stored_verdict(OK))
        seen = observed(H, None, mode, checked=False)

        after = stored_after(previous, plan_for(previous, seen))

        assert condition(after, STORAGE_REACHABLE) is None


class TestEnforceMode:
    def test_a_new_connector_waits_for_its_first_check(self) -> None:
        plan = plan_for(ConnectorStatus(), observed(None, None, Mode.ENFORCE))
        after = stored_after(ConnectorStatus(), plan)

        assert plan.intent is Intent.LEAVE
        assert after.phase is Phase.STARTING
        assert condition(after, RECONCILING) is not None
        assert condition(after, RECONCILING).reason == "StorageCheckPending"  # type: ignore[union-attr]
        assert condition(after, STALLED) is None

    def test_a_failing_storage_holds_the_workload_with_one_event(self) -> None:
        plan = plan_for(ConnectorStatus(), observed(None, BAD_KEY, Mode.ENFORCE))
        after = stored_after(ConnectorStatus(), plan)

        assert plan.intent is Intent.LEAVE
        stalled = condition(after, STALLED)
        assert stalled is not None
        assert stalled.reason == "StorageUnreachable"
        assert BAD_KEY.message in stalled.message
        assert condition(after, READY).status == "False"  # type: ignore[union-attr]
        assert events(plan) == [("Warning", "InvalidCredentials")]
        assert events(plan_for(after, observed(None, BAD_KEY, Mode.ENFORCE))) == []

    def test_a_passing_check_releases_it(self) -> None:
        held = stored_after(
            ConnectorStatus(), plan_for(ConnectorStatus(), observed(None, BAD_KEY, Mode.ENFORCE))
        )

        plan = plan_for(held, observed(None, OK, Mode.ENFORCE))

        assert plan.intent is Intent.RUN
        assert condition(stored_after(held, plan), STALLED) is None

    def test_a_running_workload_keeps_running_and_shows_the_failure(self) -> None:
        previous = running(stored_verdict(OK))
        plan = plan_for(previous, observed(H, BAD_KEY, Mode.ENFORCE))
        after = stored_after(previous, plan)

        assert plan.intent is Intent.RUN
        assert after.phase is Phase.RUNNING
        assert condition(after, STALLED) is None
        assert condition(after, STORAGE_REACHABLE).reason == "InvalidCredentials"  # type: ignore[union-attr]
        assert events(plan) == [("Warning", "InvalidCredentials")]

    def test_an_edit_with_failing_storage_keeps_the_old_workload(self) -> None:
        previous = running(stored_verdict(OK))
        plan = decide(previous, None, {PLANE: NEW}, observed(H, BAD_KEY, Mode.ENFORCE))
        after = stored_after(previous, plan)

        assert plan.intent is Intent.LEAVE
        assert after.phase is Phase.RUNNING
        assert after.config_hash == H
        assert condition(after, STALLED).reason == "StorageUnreachable"  # type: ignore[union-attr]

    def test_a_stopped_connector_asked_to_start_is_starting_while_held(self) -> None:
        previous = ConnectorStatus(phase=Phase.STOPPED, config_hash=H)
        plan = plan_for(previous, observed(None, BAD_KEY, Mode.ENFORCE))

        assert plan.intent is Intent.LEAVE
        assert stored_after(previous, plan).phase is Phase.STARTING

    def test_a_check_that_could_not_finish_holds_as_pending_not_stalled(self) -> None:
        plan = plan_for(ConnectorStatus(), observed(None, BROKE, Mode.ENFORCE))
        after = stored_after(ConnectorStatus(), plan)

        assert plan.intent is Intent.LEAVE
        assert condition(after, STALLED) is None
        reconciling = condition(after, RECONCILING)
        assert reconciling is not None and reconciling.reason == "StorageCheckPending"
        assert BROKE.message in reconciling.message

    def test_a_failed_deployment_is_reported_before_the_storage(self) -> None:
        failed = replace(deployment(H, available=0), failure=("ProgressDeadlineExceeded", "x"))
        seen = Observed({PLANE: failed}, 1, storage=StorageObservation(Mode.ENFORCE, BAD_KEY))
        plan = plan_for(running(stored_verdict(OK)), seen)

        assert plan.phase is Phase.FAILED
        assert plan.conditions[STALLED].reason == "ProgressDeadlineExceeded"

    def test_a_running_workload_does_not_wait_for_a_recheck(self) -> None:
        plan = plan_for(running(stored_verdict(OK)), observed(H, None, Mode.ENFORCE))

        assert plan.intent is Intent.RUN
        assert plan.phase is Phase.RUNNING

    def test_an_edit_waits_for_the_check_of_its_storage(self) -> None:
        previous = running(stored_verdict(OK))
        plan = decide(previous, None, {PLANE: NEW}, observed(H, None, Mode.ENFORCE))

        assert plan.intent is Intent.LEAVE

    def test_stop_is_never_held(self) -> None:
        plan = plan_for(running(), observed(H, BAD_KEY, Mode.ENFORCE), requested="stop")

        assert plan.intent is Intent.STOP
