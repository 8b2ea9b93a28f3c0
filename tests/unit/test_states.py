"""Unit tests of connector_operator.states: the README's transition table, row by row, the
kstatus conditions and events each pass produces, and the status it stores."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from connector_operator.conditions import READY, RECONCILING, STALLED
from connector_operator.models import ActionStatus, Condition, ConnectorStatus, Phase
from connector_operator.resources import CONFIG_HASH_ANNOTATION
from connector_operator.states import (
    DeploymentState,
    Intent,
    Plan,
    deciding_facts,
    next_status,
    replicas,
    reported_pods,
    summarize_deployment,
)
from connector_operator.states import Observed as PlanesObserved
from connector_operator.states import decide as decide_planes

PLANE = "connector"  # the generic profile's one plane (two-plane cases: test_edc.py)


def Observed(  # noqa: N802 -- reads as the class it builds
    deployment: DeploymentState | None,
    pods: int | None,
    config_problem: tuple[str, str] | None = None,
) -> PlanesObserved:
    """What the operator observes of a Connector with one Deployment."""
    return PlanesObserved({PLANE: deployment}, pods, config_problem)


def decide(
    previous: ConnectorStatus, requested: str | None, desired: str, observed: PlanesObserved
) -> Plan:
    return decide_planes(previous, requested, {PLANE: desired}, observed)


H = "4f2a9c0d1e8b7a6f5c4d3e2f1a0b9c8d"  # the configuration the spec asks for, unchanged
OLD = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"  # what was applied before an edit
NEW = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"  # what the edited spec asks for
T0 = "2025-03-01T10:00:00Z"
GENERATION = 4
ACTION = "dataspace.dev/action"
STUCK_MESSAGE = 'ReplicaSet "connector-orders-6d8f7b9c5" has timed out progressing.'
MISSING = (
    "SecretNotFound",
    "Secret 'orders-s3' named by storage_config.credentials_secret_ref does not exist in "
    "namespace 'team-a'; the Connector proceeds once it does.",
)
INCOMPLETE = (
    "SecretIncomplete",
    "Secret 'orders-s3' lacks the keys password_write; the Connector proceeds once it has them.",
)

DESIRED = "(the desired hash)"
Ev = tuple[str, str]  # (type, reason) of an event


# -- what the operator observes -------------------------------------------------------------------
def deployment(
    hash_: str,
    *,
    spec_replicas: int = 1,
    replicas: int = 1,
    updated: int = 1,
    available: int = 1,
    generation: int = 2,
    observed_generation: int = 2,
    failure: tuple[str, str] | None = None,
    terminating: int | None = 0,
) -> DeploymentState:
    return DeploymentState(
        spec_replicas=spec_replicas,
        config_hash=hash_,
        generation=generation,
        observed_generation=observed_generation,
        replicas=replicas,
        updated_replicas=updated,
        available_replicas=available,
        failure=failure,
        terminating_replicas=terminating,
    )


NOTHING = Observed(deployment=None, pods=0)


def up(hash_: str) -> Observed:
    """One pod of this configuration, available."""
    return Observed(deployment(hash_), pods=1)


def rolling(hash_: str) -> Observed:
    """One pod of this configuration, not available yet."""
    return Observed(deployment(hash_, available=0), pods=1)


def unobserved(hash_: str) -> Observed:
    """The Deployment controller has not caught up with the last write yet."""
    return Observed(deployment(hash_, generation=3, observed_generation=2), pods=1)


def draining(hash_: str) -> Observed:
    """Scaled to zero, its pod still terminating."""
    return Observed(deployment(hash_, spec_replicas=0, replicas=0, available=0), pods=1)


def down(hash_: str) -> Observed:
    """Scaled to zero, no pod left."""
    return Observed(deployment(hash_, spec_replicas=0, replicas=0, updated=0, available=0), pods=0)


def stuck(hash_: str) -> Observed:
    """Past its progress deadline."""
    return Observed(
        deployment(hash_, available=0, failure=("ProgressDeadlineExceeded", STUCK_MESSAGE)),
        pods=1,
    )


def blocked(problem: tuple[str, str] = MISSING) -> Observed:
    return Observed(deployment=None, pods=0, config_problem=problem)


# -- what the operator stored before --------------------------------------------------------------
ACCEPTED_MESSAGES = {
    "start": "start: the Connector runs.",
    "stop": "stop: the Connector is stopped and keeps its configuration.",
    "fail": "fail: the Connector is Failed.",
}


def stored(
    phase: Phase | None,
    hash_: str | None = H,
    *,
    action: str | None = None,
    stalled_reason: str = "FailRequested",
) -> ConnectorStatus:
    """A status as an earlier pass of the operator left it; the action it acted on defaults
    to the one that leads to the phase."""
    if phase is None:
        return ConnectorStatus()
    if action is None:
        action = {Phase.STOPPING: "stop", Phase.STOPPED: "stop", Phase.FAILED: "fail"}.get(
            phase, "start"
        )
    ready = phase in (Phase.RUNNING, Phase.STOPPED)
    conditions = [
        Condition(
            type=READY,
            status="True" if ready else "False",
            reason=phase.value,
            message=f"The Connector is {phase.value.lower()}.",
            last_transition_time=T0,
            observed_generation=GENERATION,
        )
    ]
    if phase in (Phase.STARTING, Phase.RESTARTING, Phase.STOPPING):
        conditions.append(
            Condition(
                type=RECONCILING,
                status="True",
                reason=phase.value,
                message="Converging.",
                last_transition_time=T0,
                observed_generation=GENERATION,
            )
        )
    if phase is Phase.FAILED:
        conditions.append(
            Condition(
                type=STALLED,
                status="True",
                reason=stalled_reason,
                message="Failed.",
                last_transition_time=T0,
                observed_generation=GENERATION,
            )
        )
    message = (
        f"The Connector is Failed; set {ACTION} to stop, then to start."
        if phase is Phase.FAILED
        else f"The Connector is {phase.value.lower()}."
    )
    return ConnectorStatus(
        phase=phase,
        observed_generation=GENERATION,
        conditions=conditions,
        action=ActionStatus(requested=action, accepted=True, message=ACCEPTED_MESSAGES[action]),
        config_hash=hash_,
        message=message,
    )


def failed_by_request(hash_: str = H) -> ConnectorStatus:
    return stored(Phase.FAILED, hash_)


def failed_by_workload(hash_: str = H) -> ConnectorStatus:
    return stored(Phase.FAILED, hash_, action="start", stalled_reason="ProgressDeadlineExceeded")


# -- reading a plan as a user reads the object ----------------------------------------------------
def events(plan: Plan) -> list[Ev]:
    return [(e.type, e.reason) for e in plan.events]


def store(
    previous: ConnectorStatus, plan: Plan, now: str = "2025-03-01T10:05:00Z"
) -> ConnectorStatus:
    return ConnectorStatus.model_validate(next_status(previous, plan, GENERATION + 1, now))


def conditions(status: ConnectorStatus) -> dict[str, tuple[str, str]]:
    """type -> (status, reason)"""
    return {c.type: (c.status, c.reason) for c in status.conditions}


# -- the README's transition table, one pass per row ---------------------------------------------
@dataclass(frozen=True)
class Row:
    previous: ConnectorStatus
    requested: str | None
    desired: str
    observed: Observed
    intent: Intent
    phase: Phase
    accepted: bool
    events: Sequence[Ev]
    applied: str | None


def row(
    id_: str,
    previous: ConnectorStatus,
    requested: str | None,
    observed: Observed,
    then: tuple[Intent, Phase],
    *,
    event: str = "",
    desired: str = H,
    accepted: bool = True,
    applied: str | None = DESIRED,
) -> Any:
    """One pass: `event` is "<type> <reason>" of the one event expected, or empty."""
    (type_, reason) = event.split() if event else ("", "")
    return pytest.param(
        Row(
            previous=previous,
            requested=requested,
            desired=desired,
            observed=observed,
            intent=then[0],
            phase=then[1],
            accepted=accepted,
            events=[(type_, reason)] if event else [],
            applied=desired if applied == DESIRED else applied,
        ),
        id=id_,
    )


S, R, RS, SG, SD, F = (
    Phase.STARTING,
    Phase.RUNNING,
    Phase.RESTARTING,
    Phase.STOPPING,
    Phase.STOPPED,
    Phase.FAILED,
)
RUN, STOP, LEAVE = Intent.RUN, Intent.STOP, Intent.LEAVE
NORMAL = "Normal"
WARNING = "Warning"
NEW_ONE = stored(None)
BY_FAIL, BY_WORKLOAD = failed_by_request(), failed_by_workload()

TABLE = [
    # Starting / Running + start: stays (and a Starting one becomes Running once available).
    row("new+absent", NEW_ONE, None, NOTHING, (RUN, S), event="Normal Starting"),
    row("new+start", NEW_ONE, "start", NOTHING, (RUN, S), event="Normal Starting"),
    row("starting+start-no-deployment-yet", stored(S), "start", NOTHING, (RUN, S)),
    row("starting+start-pod-unavailable", stored(S), "start", rolling(H), (RUN, S)),
    row("starting+start-not-observed-yet", stored(S), "start", unobserved(H), (RUN, S)),
    row("starting+start-available", stored(S), "start", up(H), (RUN, R), event="Normal Running"),
    row("starting+start-old-config-available", stored(S), "start", up(OLD), (RUN, S)),
    row("running+start-stays", stored(R), "start", up(H), (RUN, R)),
    row("running+absent-stays", stored(R), None, up(H), (RUN, R)),
    # Starting / Running + stop: Stopping, then Stopped once no pod is left.
    row("running+stop", stored(R), "stop", up(H), (STOP, SG), event="Normal Stopping"),
    row("starting+stop", stored(S), "stop", rolling(H), (STOP, SG), event="Normal Stopping"),
    row("restarting+stop", stored(RS), "stop", rolling(H), (STOP, SG), event="Normal Stopping"),
    row("starting+stop-nothing-runs", stored(S), "stop", NOTHING, (STOP, SD),
        event="Normal Stopped"),
    row("new+stop", NEW_ONE, "stop", NOTHING, (STOP, SD), event="Normal Stopped"),
    row("stopping+stop-pod-terminating", stored(SG), "stop", draining(H), (STOP, SG)),
    row("stopping+stop-pods-gone", stored(SG), "stop", down(H), (STOP, SD), event="Normal Stopped"),
    # Starting / Running + fail: Failed, the workload left as it is.
    row("running+fail", stored(R), "fail", up(H), (LEAVE, F), event="Warning Failed"),
    row("starting+fail", stored(S), "fail", rolling(H), (LEAVE, F), event="Warning Failed"),
    row("restarting+fail", stored(RS), "fail", rolling(H), (LEAVE, F), event="Warning Failed"),
    row("new+fail", NEW_ONE, "fail", NOTHING, (LEAVE, F), event="Warning Failed", applied=None),
    # Stopping / Stopped + start: Starting, then Running once available with the desired hash.
    row("stopped+start", stored(SD), "start", down(H), (RUN, S), event="Normal Starting"),
    row("stopped+absent", stored(SD), None, down(H), (RUN, S), event="Normal Starting"),
    row("stopping+start", stored(SG), "start", draining(H), (RUN, S), event="Normal Starting"),
    # Stopping / Stopped + stop: stays.
    row("stopped+stop-stays", stored(SD), "stop", down(H), (STOP, SD)),
    # Stopping / Stopped + fail: Failed.
    row("stopped+fail", stored(SD), "fail", down(H), (LEAVE, F), event="Warning Failed"),
    row("stopping+fail", stored(SG), "fail", draining(H), (LEAVE, F), event="Warning Failed"),
    # Failed + start: refused, with a Warning event (once: see test_a_second_pass_...).
    row("failed+start", BY_FAIL, "start", up(H), (LEAVE, F),
        event="Warning ActionRefused", accepted=False),
    row("failed+absent", BY_FAIL, None, up(H), (LEAVE, F),
        event="Warning ActionRefused", accepted=False),
    # ... but a Failed that came from the workload while start was accepted refuses nothing.
    row("failed-by-workload+start", BY_WORKLOAD, "start", stuck(H), (LEAVE, F)),
    # Failed + stop: Stopping, then Stopped.
    row("failed+stop", BY_FAIL, "stop", up(H), (STOP, SG), event="Normal Stopping"),
    row("failed+stop-nothing-runs", BY_FAIL, "stop", down(H), (STOP, SD), event="Normal Stopped"),
    row("failed-by-workload+stop", BY_WORKLOAD, "stop", stuck(H), (STOP, SG),
        event="Normal Stopping"),
    # Failed + fail: stays.
    row("failed+fail-stays", BY_FAIL, "fail", up(H), (LEAVE, F)),
    row("failed-by-workload+fail", BY_WORKLOAD, "fail", stuck(H), (LEAVE, F)),
    # Spec edited (the desired hash differs from status.configHash): Restarting -> Running ...
    row("running+edit", stored(R, OLD), "start", up(OLD), (RUN, RS),
        event="Normal Restarting", desired=NEW),
    row("restarting+edit-pod-unavailable", stored(RS, NEW), "start", rolling(NEW), (RUN, RS),
        desired=NEW),
    row("restarting+edit-not-applied-yet", stored(RS, NEW), "start", up(OLD), (RUN, RS),
        desired=NEW),
    row("restarting+edit-old-rollout-stuck", stored(RS, NEW), "start", stuck(OLD), (RUN, RS),
        desired=NEW),
    row("restarting+edit-available", stored(RS, NEW), "start", up(NEW), (RUN, R),
        event="Normal Running", desired=NEW),
    # ... new config stored, stays Stopped ...
    row("stopped+edit", stored(SD, OLD), "stop", down(OLD), (STOP, SD), desired=NEW),
    row("stopping+edit", stored(SG, OLD), "stop", draining(OLD), (STOP, SG), desired=NEW),
    # ... new config stored, stays Failed (the workload is left alone).
    row("failed+edit", failed_by_request(OLD), "fail", up(OLD), (LEAVE, F),
        desired=NEW, applied=OLD),
    row("failed-by-workload+edit", failed_by_workload(OLD), "start", stuck(OLD), (LEAVE, F),
        desired=NEW, applied=OLD),
    row("failed+edit+start", failed_by_request(OLD), "start", up(OLD), (LEAVE, F),
        event="Warning ActionRefused", desired=NEW, accepted=False, applied=OLD),
    # Failed also comes from the workload: a Deployment past its progress deadline.
    row("starting+deadline-exceeded", stored(S), "start", stuck(H), (LEAVE, F),
        event="Warning Failed"),
    row("running+deadline-exceeded", stored(R), "start", stuck(H), (LEAVE, F),
        event="Warning Failed"),
    row("restarting+new-config-stuck", stored(RS, NEW), "start", stuck(NEW), (LEAVE, F),
        event="Warning Failed", desired=NEW),
]  # fmt: skip


def test_starting_plus_edit_restarts() -> None:
    plan = decide(stored(S, OLD), "start", NEW, rolling(OLD))

    assert (plan.intent, plan.phase, plan.applied_hash) == (RUN, RS, NEW)
    assert events(plan) == [(NORMAL, "Restarting")]


def effective(requested: str | None) -> str:
    return "start" if requested is None else requested


@pytest.mark.parametrize("case", TABLE)
class TestTransitionTable:
    def test_intent_and_phase(self, case: Row) -> None:
        plan = decide(case.previous, case.requested, case.desired, case.observed)

        assert (plan.intent, plan.phase) == (case.intent, case.phase)

    def test_action_record(self, case: Row) -> None:
        plan = decide(case.previous, case.requested, case.desired, case.observed)

        assert plan.action is not None
        assert (plan.action.requested, plan.action.accepted) == (
            effective(case.requested),
            case.accepted,
        )

    def test_events(self, case: Row) -> None:
        plan = decide(case.previous, case.requested, case.desired, case.observed)

        assert events(plan) == list(case.events)

    def test_applied_hash(self, case: Row) -> None:
        plan = decide(case.previous, case.requested, case.desired, case.observed)

        assert plan.applied_hash == case.applied

    def test_ready_true_exactly_in_the_requested_running_or_stopped(self, case: Row) -> None:
        status = store(
            case.previous, decide(case.previous, case.requested, case.desired, case.observed)
        )

        ready = (case.phase, effective(case.requested)) in {(R, "start"), (SD, "stop")}
        assert status.conditions[0].type == READY
        assert conditions(status)[READY][0] == ("True" if ready else "False")

    def test_reconciling_only_while_converging(self, case: Row) -> None:
        status = store(
            case.previous, decide(case.previous, case.requested, case.desired, case.observed)
        )

        converging = case.phase in (S, RS, SG)
        assert conditions(status).get(RECONCILING, ("absent",))[0] == (
            "True" if converging else "absent"
        )

    def test_stalled_only_when_blocked(self, case: Row) -> None:
        status = store(
            case.previous, decide(case.previous, case.requested, case.desired, case.observed)
        )

        blocked_ = case.phase is F or not case.accepted
        assert conditions(status).get(STALLED, ("absent",))[0] == ("True" if blocked_ else "absent")

    def test_normal_events_only_on_a_phase_transition(self, case: Row) -> None:
        plan = decide(case.previous, case.requested, case.desired, case.observed)

        for event in plan.events:
            if event.type == NORMAL:
                assert case.previous.phase is not plan.phase
                assert plan.phase is not None
                assert event.reason == plan.phase.value
        if case.previous.phase is plan.phase and case.accepted:
            assert plan.events == ()

    def test_a_second_pass_changes_nothing(self, case: Row) -> None:
        """Level-triggered and idempotent: the same observation again writes nothing new
        (the same status, later clock) and announces nothing again."""
        first = decide(case.previous, case.requested, case.desired, case.observed)
        status = store(case.previous, first)

        again = decide(status, case.requested, case.desired, case.observed)

        assert (again.intent, again.phase) == (first.intent, first.phase)
        assert again.events == ()
        assert next_status(status, again, GENERATION + 1, "2025-03-01T11:00:00Z") == (
            status.model_dump(mode="json", by_alias=True, exclude_none=True)
        )


class TestMessages:
    def test_a_refused_start_says_to_stop_first(self) -> None:
        plan = decide(failed_by_request(), "start", H, up(H))

        assert plan.action is not None
        assert plan.action.message == (
            f"start refused: the Connector is Failed; set {ACTION} to stop, then to start."
        )
        assert plan.events[0].message == plan.action.message
        assert f"set {ACTION} to stop" in plan.message

    def test_a_refusal_already_recorded_is_not_announced_again(self) -> None:
        refusal = ActionStatus(
            requested="start",
            accepted=False,
            message=f"start refused: the Connector is Failed; set {ACTION} to stop, then to start.",
        )
        previous = failed_by_request().model_copy(update={"action": refusal})

        plan = decide(previous, "start", H, up(H))

        assert (plan.intent, plan.phase, plan.action) == (LEAVE, F, refusal)
        assert plan.events == ()

    def test_a_refused_start_without_an_earlier_message_still_says_how_to_recover(self) -> None:
        previous = failed_by_request().model_copy(update={"message": None})

        plan = decide(previous, "start", H, up(H))

        assert plan.message == f"The Connector is Failed (set {ACTION} to stop, then to start)."

    def test_fail_says_the_workload_is_left_alone(self) -> None:
        plan = decide(stored(R), "fail", H, up(H))

        assert plan.message == (
            "The Connector was forced into Failed; the operator leaves its workload as it is "
            f"(set {ACTION} to stop, then to start)."
        )
        assert conditions(store(stored(R), plan))[STALLED] == ("True", "FailRequested")

    def test_a_deadline_failure_names_the_deployments_reason(self) -> None:
        plan = decide(stored(S), "start", H, stuck(H))
        status = store(stored(S), plan)

        assert conditions(status)[READY] == ("False", "ProgressDeadlineExceeded")
        assert conditions(status)[STALLED] == ("True", "ProgressDeadlineExceeded")
        assert STUCK_MESSAGE in plan.message
        assert plan.events[0].message == plan.message

    def test_a_workload_failure_keeps_its_reason_on_later_passes(self) -> None:
        status = store(stored(S), decide(stored(S), "start", H, stuck(H)))

        plan = decide(status, "start", H, stuck(H))

        assert conditions(store(status, plan))[STALLED] == ("True", "ProgressDeadlineExceeded")
        assert plan.message == status.message

    @pytest.mark.parametrize(
        ("previous", "requested", "desired", "observed", "expected"),
        [
            (stored(None), "start", H, NOTHING, (S, "The Connector is starting.")),
            (
                stored(R, OLD),
                "start",
                NEW,
                up(OLD),
                (RS, "The Connector is restarting with its new configuration."),
            ),
            (stored(R), "stop", H, up(H), (SG, "The Connector is stopping.")),
            (stored(S), "start", H, up(H), (R, "The Connector is running.")),
            (stored(SG), "stop", H, down(H), (SD, "The Connector is stopped.")),
        ],
        ids=["starting", "restarting", "stopping", "running", "stopped"],
    )
    def test_each_phase_has_its_reason_and_sentence(
        self,
        previous: ConnectorStatus,
        requested: str,
        desired: str,
        observed: Observed,
        expected: tuple[Phase, str],
    ) -> None:
        plan = decide(previous, requested, desired, observed)
        status = store(previous, plan)
        phase, sentence = expected

        assert (status.phase, status.message) == (phase, sentence)
        assert {c.reason for c in status.conditions} == {phase.value}
        assert [(e.reason, e.message) for e in plan.events] == [(phase.value, sentence)]


# -- invalid annotation values --------------------------------------------------------------------
INVALID_VALUES = ["restart", "STOP", "Start", "", " start", "stop\n", "delete", "failed"]
PREVIOUS_FOR_INVALID = {
    "new": stored(None),
    "starting": stored(S),
    "running": stored(R),
    "stopping": stored(SG),
    "stopped": stored(SD),
    "failed": failed_by_request(),
}


@pytest.mark.parametrize("value", INVALID_VALUES)
@pytest.mark.parametrize("previous", PREVIOUS_FOR_INVALID.values(), ids=PREVIOUS_FOR_INVALID.keys())
class TestInvalidAction:
    def test_nothing_changes_and_status_says_why(
        self, previous: ConnectorStatus, value: str
    ) -> None:
        plan = decide(previous, value, NEW, up(H))

        assert plan.intent is LEAVE
        assert plan.phase is previous.phase
        assert plan.applied_hash == previous.config_hash
        assert plan.action is not None
        assert (plan.action.requested, plan.action.accepted) == (value, False)
        assert repr(value) in plan.action.message
        assert "start, stop, fail" in plan.action.message
        status = store(previous, plan)
        assert conditions(status)[STALLED] == ("True", "InvalidAction")
        assert conditions(status)[READY] == ("False", "InvalidAction")
        assert RECONCILING not in conditions(status)

    def test_a_warning_names_the_value_once(self, previous: ConnectorStatus, value: str) -> None:
        first = decide(previous, value, H, up(H))
        again = decide(store(previous, first), value, H, up(H))

        assert events(first) == [(WARNING, "InvalidAction")]
        assert repr(value) in first.events[0].message
        assert again.events == ()


def test_another_invalid_value_is_announced_again() -> None:
    status = store(stored(R), decide(stored(R), "restart", H, up(H)))

    plan = decide(status, "reboot", H, up(H))

    assert events(plan) == [(WARNING, "InvalidAction")]
    assert "'reboot'" in plan.events[0].message


def test_a_valid_value_after_an_invalid_one_converges_again() -> None:
    status = store(stored(R), decide(stored(R), "restart", H, up(H)))

    plan = decide(status, "start", H, up(H))
    after = store(status, plan)

    assert (plan.intent, plan.phase) == (RUN, R)
    assert after.action is not None
    assert after.action.accepted is True
    assert conditions(after) == {READY: ("True", "Running")}


# -- a Secret that is missing or incomplete -------------------------------------------------------
@pytest.mark.parametrize("problem", [MISSING, INCOMPLETE], ids=["missing", "incomplete"])
@pytest.mark.parametrize(
    ("previous", "phase"),
    [
        pytest.param(stored(None), S, id="new"),
        pytest.param(stored(S), S, id="starting"),
        pytest.param(stored(SD), SD, id="stopped+start"),
    ],
)
class TestConfigProblem:
    def test_stalled_and_the_workload_left_alone(
        self, previous: ConnectorStatus, phase: Phase, problem: tuple[str, str]
    ) -> None:
        plan = decide(previous, "start", H, blocked(problem))
        status = store(previous, plan)

        assert (plan.intent, plan.phase) == (LEAVE, phase)
        assert plan.applied_hash == previous.config_hash
        assert plan.message == problem[1]
        assert conditions(status) == {READY: ("False", problem[0]), STALLED: ("True", problem[0])}

    def test_a_warning_once(
        self, previous: ConnectorStatus, phase: Phase, problem: tuple[str, str]
    ) -> None:
        first = decide(previous, "start", H, blocked(problem))
        again = decide(store(previous, first), "start", H, blocked(problem))

        assert [(e.type, e.reason, e.message) for e in first.events] == [
            (WARNING, problem[0], problem[1])
        ]
        assert again.events == ()


def test_a_running_connector_whose_secret_disappears_is_stalled_and_left_running() -> None:
    plan = decide(stored(R), "start", H, Observed(deployment(H), pods=1, config_problem=MISSING))
    status = store(stored(R), plan)

    assert (plan.intent, plan.phase) == (LEAVE, R)
    assert conditions(status)[STALLED] == ("True", "SecretNotFound")
    assert conditions(status)[READY] == ("False", "SecretNotFound")


def test_the_secret_appearing_resumes_the_start() -> None:
    status = store(stored(None), decide(stored(None), "start", H, blocked()))

    plan = decide(status, "start", H, NOTHING)
    after = store(status, plan)

    assert (plan.intent, plan.phase) == (RUN, S)
    assert conditions(after) == {READY: ("False", "Starting"), RECONCILING: ("True", "Starting")}


def test_a_missing_secret_does_not_keep_a_connector_from_stopping() -> None:
    plan = decide(stored(R), "stop", H, Observed(None, pods=0, config_problem=MISSING))

    assert (plan.intent, plan.phase) == (STOP, SD)


def test_stopped_only_once_the_deployment_asks_for_no_pod() -> None:
    # No pod and none counted in the status (one refused by a quota, say), while the
    # Deployment still asks for one: the scale-down is not written yet.
    refused = Observed(deployment(H, replicas=0, updated=0, available=0), pods=0)
    assert decide(stored(R), "stop", H, refused).phase == SG
    scaled = Observed(deployment(H, spec_replicas=0, replicas=0, updated=0, available=0), pods=0)
    assert decide(stored(SG), "stop", H, scaled).phase == SD


def test_stopping_until_the_deployment_counts_no_terminating_pod() -> None:
    # Scaled down, its pod still shutting down (its grace period, a finalizer): the status
    # counts it as terminating, and the stop is finished only once it has ended.
    ending = deployment(H, spec_replicas=0, replicas=0, updated=0, available=0, terminating=1)
    assert reported_pods(ending) == 1
    assert decide(stored(SG), "stop", H, Observed(ending, reported_pods(ending))).phase == SG
    ended = deployment(H, spec_replicas=0, replicas=0, updated=0, available=0, terminating=0)
    assert decide(stored(SG), "stop", H, Observed(ended, reported_pods(ended))).phase == SD


def test_pods_not_counted_by_the_deployment_are_not_known_from_it() -> None:
    # A cluster before Kubernetes 1.35 counts no terminating pods: the pods must be counted
    # from the pods themselves, and until they are, the stop is not finished.
    older = deployment(H, spec_replicas=0, replicas=0, updated=0, available=0, terminating=None)
    assert reported_pods(older) is None
    assert decide(stored(SG), "stop", H, Observed(older, None)).phase == SG
    assert decide(stored(SG), "stop", H, Observed(older, 0)).phase == SD
    # Stopped already: none of its versions asks for a pod, so it stays Stopped meanwhile.
    assert decide(stored(SD), "stop", H, Observed(older, None)).phase == SD
    # One its controller has not reported on has made no pod, whatever the cluster; none, none.
    assert reported_pods(deployment(H, observed_generation=0, terminating=None)) == 0
    assert reported_pods(None) == 0
    assert reported_pods(deployment(H, replicas=2, terminating=1)) == 3


def scaled_to_zero(generation: int, observed_generation: int) -> Observed:
    """A Deployment asking for no pod and counting none, its controller at a version."""
    return Observed(
        deployment(
            H, spec_replicas=0, replicas=0, updated=0, available=0, generation=generation,
            observed_generation=observed_generation,
        ),
        pods=0,
    )  # fmt: skip


def test_stopped_only_once_the_deployments_controller_has_seen_the_scale_down() -> None:
    # A Deployment made while the control plane lagged (after an API server restart) and
    # scaled down at once: its status counts no pod because its controller has not acted on
    # any version yet; it may still make the pod of the first one.
    assert decide(stored(SG), "stop", H, scaled_to_zero(2, 0)).phase == SG
    assert decide(stored(SG), "stop", H, scaled_to_zero(2, 2)).phase == SD


def test_an_edit_while_stopped_stays_stopped_before_the_controller_acts() -> None:
    # Once Stopped, a new template (an edit) raises the Deployment's generation; every version
    # asks for no pod, so the phase does not wait for the controller.
    assert decide(stored(SD), "stop", H, scaled_to_zero(3, 2)).phase == SD


def test_a_missing_secret_does_not_lift_a_failure() -> None:
    plan = decide(failed_by_request(), "start", H, blocked())

    assert (plan.intent, plan.phase) == (LEAVE, F)
    assert plan.action is not None
    assert plan.action.accepted is False


# -- whole walks through the table, each pass fed the status the previous one stored -------------
@dataclass(frozen=True)
class Step:
    requested: str | None
    observed: Observed
    desired: str = H


def walk(
    previous: ConnectorStatus, steps: Sequence[Step]
) -> Iterator[tuple[Plan, ConnectorStatus]]:
    for i, step in enumerate(steps):
        plan = decide(previous, step.requested, step.desired, step.observed)
        previous = store(previous, plan, now=f"2025-03-01T10:{i + 10:02d}:00Z")
        yield plan, previous


WALKS = {
    "create-and-run": (
        stored(None),
        [Step(None, NOTHING), Step(None, rolling(H)), Step(None, up(H)), Step(None, up(H))],
        [S, S, R, R],
        [(NORMAL, "Starting"), (NORMAL, "Running")],
    ),
    "stop-then-start": (
        stored(R),
        [
            Step("stop", up(H)),
            Step("stop", draining(H)),
            Step("stop", down(H)),
            Step("stop", down(H)),
            Step("start", down(H)),
            Step("start", rolling(H)),
            Step("start", up(H)),
        ],
        [SG, SG, SD, SD, S, S, R],
        [
            (NORMAL, "Stopping"),
            (NORMAL, "Stopped"),
            (NORMAL, "Starting"),
            (NORMAL, "Running"),
        ],
    ),
    "edit-restarts": (
        stored(R, OLD),
        [
            Step("start", up(OLD), NEW),
            Step("start", unobserved(NEW), NEW),
            Step("start", rolling(NEW), NEW),
            Step("start", up(NEW), NEW),
        ],
        [RS, RS, RS, R],
        [(NORMAL, "Restarting"), (NORMAL, "Running")],
    ),
    "edit-while-stopped-then-start": (
        stored(SD, OLD),
        [
            Step("stop", down(OLD), NEW),
            Step("start", down(NEW), NEW),
            Step("start", up(NEW), NEW),
        ],
        [SD, S, R],
        [(NORMAL, "Starting"), (NORMAL, "Running")],
    ),
    "fail-refuse-stop-start": (
        stored(R),
        [
            Step("fail", up(H)),
            Step("fail", up(H)),
            Step("start", up(H)),
            Step("start", up(H)),
            Step("stop", up(H)),
            Step("stop", down(H)),
            Step("start", down(H)),
            Step("start", up(H)),
        ],
        [F, F, F, F, SG, SD, S, R],
        [
            (WARNING, "Failed"),
            (WARNING, "ActionRefused"),
            (NORMAL, "Stopping"),
            (NORMAL, "Stopped"),
            (NORMAL, "Starting"),
            (NORMAL, "Running"),
        ],
    ),
    "deadline-then-recover": (
        stored(S),
        [
            Step("start", stuck(H)),
            Step("start", stuck(H)),
            Step("stop", stuck(H)),
            Step("stop", down(H)),
            Step("start", down(H)),
            Step("start", up(H)),
        ],
        [F, F, SG, SD, S, R],
        [
            (WARNING, "Failed"),
            (NORMAL, "Stopping"),
            (NORMAL, "Stopped"),
            (NORMAL, "Starting"),
            (NORMAL, "Running"),
        ],
    ),
    "missing-secret-then-created": (
        stored(None),
        [
            Step("start", blocked()),
            Step("start", blocked()),
            Step("start", NOTHING),
            Step("start", up(H)),
        ],
        [S, S, S, R],
        [(WARNING, "SecretNotFound"), (NORMAL, "Running")],
    ),
}


@pytest.mark.parametrize(
    ("start", "steps", "phases", "expected_events"), WALKS.values(), ids=WALKS.keys()
)
def test_walk(
    start: ConnectorStatus,
    steps: list[Step],
    phases: list[Phase],
    expected_events: list[Ev],
) -> None:
    passes = list(walk(start, steps))

    assert [status.phase for _, status in passes] == phases
    assert [e for plan, _ in passes for e in events(plan)] == expected_events


def test_walk_stores_the_new_config_hash_once_it_is_applied() -> None:
    steps = [Step("start", up(OLD), NEW), Step("start", up(NEW), NEW)]

    hashes = [status.config_hash for _, status in walk(stored(R, OLD), steps)]

    assert hashes == [NEW, NEW]


def test_walk_keeps_the_ready_transition_time_until_it_flips() -> None:
    steps = [Step(None, NOTHING), Step(None, rolling(H)), Step(None, up(H)), Step(None, up(H))]

    times = [
        next(c.last_transition_time for c in status.conditions if c.type == READY)
        for _, status in walk(stored(None), steps)
    ]

    assert times == [
        "2025-03-01T10:10:00Z",
        "2025-03-01T10:10:00Z",
        "2025-03-01T10:12:00Z",
        "2025-03-01T10:12:00Z",
    ]


# -- summarize_deployment, on Deployments as the API server returns them ------------------------
def served_deployment(
    *,
    hash_: str | None = H,
    replicas: int | None = 1,
    generation: int = 2,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    template_meta: dict[str, Any] = {
        "labels": {"app.kubernetes.io/name": "connector", "app.kubernetes.io/instance": "orders"}
    }
    if hash_ is not None:
        template_meta["annotations"] = {CONFIG_HASH_ANNOTATION: hash_}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": template_meta["labels"]},
        "strategy": {"type": "Recreate"},
        "progressDeadlineSeconds": 600,
        "template": {"metadata": template_meta, "spec": {"containers": [{"name": "connector"}]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "connector-orders",
            "namespace": "team-a",
            "generation": generation,
            "resourceVersion": "90211",
            "annotations": {"deployment.kubernetes.io/revision": "2"},
        },
        "spec": spec,
    }
    if status is not None:
        body["status"] = status
    return body


AVAILABLE_STATUS = {
    "observedGeneration": 2,
    "replicas": 1,
    "updatedReplicas": 1,
    "readyReplicas": 1,
    "availableReplicas": 1,
    "conditions": [
        {
            "type": "Available",
            "status": "True",
            "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability.",
            "lastUpdateTime": "2025-03-01T10:01:00Z",
            "lastTransitionTime": "2025-03-01T10:01:00Z",
        },
        {
            "type": "Progressing",
            "status": "True",
            "reason": "NewReplicaSetAvailable",
            "message": 'ReplicaSet "connector-orders-6d8f7b9c5" has successfully progressed.',
            "lastUpdateTime": "2025-03-01T10:01:00Z",
            "lastTransitionTime": "2025-03-01T10:00:30Z",
        },
    ],
}
STUCK_STATUS = {
    "observedGeneration": 2,
    "replicas": 1,
    "updatedReplicas": 1,
    "unavailableReplicas": 1,
    "conditions": [
        {
            "type": "Available",
            "status": "False",
            "reason": "MinimumReplicasUnavailable",
            "message": "Deployment does not have minimum availability.",
            "lastUpdateTime": "2025-03-01T10:00:30Z",
            "lastTransitionTime": "2025-03-01T10:00:30Z",
        },
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": STUCK_MESSAGE,
            "lastUpdateTime": "2025-03-01T10:10:31Z",
            "lastTransitionTime": "2025-03-01T10:10:31Z",
        },
    ],
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param(
            served_deployment(generation=1),
            DeploymentState(1, H, 1, 0, 0, 0, 0),
            id="just-created-no-status",
        ),
        pytest.param(
            served_deployment(status=AVAILABLE_STATUS),
            DeploymentState(1, H, 2, 2, 1, 1, 1),
            id="available",
        ),
        pytest.param(
            served_deployment(generation=3, status=AVAILABLE_STATUS),
            DeploymentState(1, H, 3, 2, 1, 1, 1),
            id="edited-not-yet-observed",
        ),
        pytest.param(
            served_deployment(status=STUCK_STATUS),
            DeploymentState(
                1, H, 2, 2, 1, 1, 0, failure=("ProgressDeadlineExceeded", STUCK_MESSAGE)
            ),
            id="progress-deadline-exceeded",
        ),
        pytest.param(
            # The API server omits zero counts: a Deployment scaled to zero has none.
            served_deployment(replicas=0, generation=3, status={"observedGeneration": 3}),
            DeploymentState(0, H, 3, 3, 0, 0, 0),
            id="scaled-to-zero",
        ),
        pytest.param(
            served_deployment(replicas=None, hash_=None, status=AVAILABLE_STATUS),
            DeploymentState(1, None, 2, 2, 1, 1, 1),
            id="defaults-and-no-hash",
        ),
        pytest.param(
            served_deployment(
                status={
                    "observedGeneration": 2,
                    "conditions": [{"type": "Progressing", "status": "False"}],
                }
            ),
            DeploymentState(1, H, 2, 2, 0, 0, 0, failure=("ProgressDeadlineExceeded", "")),
            id="progressing-false-without-reason",
        ),
        pytest.param(
            served_deployment(status={"observedGeneration": 2, "terminatingReplicas": 1}),
            DeploymentState(1, H, 2, 2, 0, 0, 0, terminating_replicas=1),
            id="a-pod-terminating",
        ),
    ],
)
def test_summarize_deployment(
    body: dict[str, Any] | None, expected: DeploymentState | None
) -> None:
    assert summarize_deployment(body) == expected


def test_a_served_stuck_deployment_fails_the_connector_with_its_reason() -> None:
    observed = Observed(summarize_deployment(served_deployment(status=STUCK_STATUS)), pods=1)

    plan = decide(stored(S), "start", H, observed)
    status = store(stored(S), plan)

    assert (plan.intent, plan.phase) == (LEAVE, F)
    assert conditions(status)[STALLED] == ("True", "ProgressDeadlineExceeded")


def test_a_served_stuck_deployment_of_an_older_config_does_not() -> None:
    observed = Observed(
        summarize_deployment(served_deployment(hash_=OLD, status=STUCK_STATUS)), pods=1
    )

    plan = decide(stored(RS, NEW), "start", NEW, observed)

    assert (plan.intent, plan.phase) == (RUN, RS)


def test_a_served_available_deployment_is_running() -> None:
    observed = Observed(summarize_deployment(served_deployment(status=AVAILABLE_STATUS)), pods=1)

    assert decide(stored(S), "start", H, observed).phase is R


# -- next_status --------------------------------------------------------------------------------
def no_none(value: Any) -> Iterator[str]:
    """Paths of None values anywhere in a JSON-like value."""
    if value is None:
        yield "$"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from (f"{key}.{path}" for path in no_none(item))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from (f"{i}.{path}" for path in no_none(item))


class TestNextStatus:
    def test_camel_case_keys(self) -> None:
        status = next_status(
            stored(S), decide(stored(S), "start", H, up(H)), 5, "2025-03-01T10:05:00Z"
        )

        assert status == {
            "phase": "Running",
            "observedGeneration": 5,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Running",
                    "message": "The Connector is running.",
                    "lastTransitionTime": "2025-03-01T10:05:00Z",
                    "observedGeneration": 5,
                }
            ],
            "action": {
                "requested": "start",
                "accepted": True,
                "message": "start: the Connector runs.",
            },
            "configHash": H,
            "message": "The Connector is running.",
        }

    @pytest.mark.parametrize("case", TABLE)
    def test_no_none_values(self, case: Row) -> None:
        plan = decide(case.previous, case.requested, case.desired, case.observed)

        assert list(no_none(next_status(case.previous, plan, 5, T0))) == []

    def test_no_phase_key_for_an_invalid_action_on_a_new_connector(self) -> None:
        status = next_status(stored(None), decide(stored(None), "bogus", H, NOTHING), 1, T0)

        assert "phase" not in status
        assert "configHash" not in status
        assert status["action"]["accepted"] is False

    @pytest.mark.parametrize(
        ("previous", "requested", "observed", "expected"),
        [
            pytest.param(
                stored(S),
                "stop",
                rolling(H),
                [(READY, "False", "Stopping", T0), (RECONCILING, "True", "Stopping", T0)],
                id="starting-to-stopping",
            ),
            pytest.param(
                stored(R), "start", up(H), [(READY, "True", "Running", T0)], id="running-stays"
            ),
            pytest.param(
                stored(SD),
                "stop",
                down(H),
                [(READY, "True", "Stopped", T0)],
                id="stopped-stays",
            ),
            pytest.param(
                stored(R),
                "fail",
                up(H),
                [
                    (READY, "False", "FailRequested", "2025-03-01T10:05:00Z"),
                    (STALLED, "True", "FailRequested", "2025-03-01T10:05:00Z"),
                ],
                id="running-to-failed",
            ),
            pytest.param(
                stored(F),
                "stop",
                up(H),
                [
                    (READY, "False", "Stopping", T0),
                    (RECONCILING, "True", "Stopping", "2025-03-01T10:05:00Z"),
                ],
                id="failed-to-stopping",
            ),
        ],
    )
    def test_last_transition_time_moves_only_on_a_flip(
        self,
        previous: ConnectorStatus,
        requested: str,
        observed: Observed,
        expected: list[tuple[str, str, str, str]],
    ) -> None:
        plan = decide(previous, requested, H, observed)

        status = next_status(previous, plan, 5, "2025-03-01T10:05:00Z")

        assert [
            (c["type"], c["status"], c["reason"], c["lastTransitionTime"])
            for c in status["conditions"]
        ] == expected

    def test_last_transition_time_moves_when_status_flips(self) -> None:
        status = next_status(
            stored(R), decide(stored(R), "stop", H, up(H)), 5, "2025-03-01T10:05:00Z"
        )

        assert [
            (c["type"], c["status"], c["lastTransitionTime"]) for c in status["conditions"]
        ] == [
            (READY, "False", "2025-03-01T10:05:00Z"),
            (RECONCILING, "True", "2025-03-01T10:05:00Z"),
        ]

    def test_foreign_conditions_survive(self) -> None:
        foreign = Condition(
            type="example.com/Audited",
            status="True",
            reason="Checked",
            message="Checked by the audit controller.",
            last_transition_time=T0,
        )
        previous = stored(R).model_copy(update={"conditions": [*stored(R).conditions, foreign]})

        status = next_status(
            previous, decide(previous, "start", H, up(H)), 5, "2025-03-01T10:05:00Z"
        )

        assert [c["type"] for c in status["conditions"]] == [READY, "example.com/Audited"]
        assert status["conditions"][1] == foreign.model_dump(mode="json", exclude_none=True)

    def test_it_parses_back(self) -> None:
        plan = decide(stored(S), "start", H, stuck(H))

        status = next_status(stored(S), plan, 5, T0)

        assert (
            ConnectorStatus.model_validate(status).model_dump(
                mode="json", by_alias=True, exclude_none=True
            )
            == status
        )


# -- which Deployment status updates wake a Connector ---------------------------------------------
def every_deployment() -> Iterator[DeploymentState]:
    """Deployments of each shape the decisions tell apart, and more: counts, generations,
    failures and configurations in every combination."""
    failure = ("ProgressDeadlineExceeded", STUCK_MESSAGE)
    for hash_, spec, count, updated, available, seen, failed, ending in itertools.product(
        (H, OLD), (0, 1), (0, 1, 2), (0, 1), (0, 1, 2), (0, 1, 2), (None, failure), (None, 0, 1)
    ):
        yield deployment(
            hash_, spec_replicas=spec, replicas=count, updated=updated, available=available,
            observed_generation=seen, failure=failed, terminating=ending,
        )  # fmt: skip


REPORTED = "as the Deployment's status counts them"


def test_deployments_with_the_same_deciding_facts_get_the_same_decisions() -> None:
    """The cache skips a Deployment's status update that keeps its `deciding_facts`: for every
    status stored before, action and pod count (given, not known yet, or the Deployment's own
    count of its pods, terminating ones included), such Deployments must be decided alike."""
    groups: dict[object, list[DeploymentState]] = defaultdict(list)
    for d in every_deployment():
        groups[deciding_facts(d)].append(d)
    assert len(groups) > 10  # the facts do tell Deployments apart
    previous = [stored(phase) for phase in (None, *Phase)] + [stored(Phase.RUNNING, OLD)]

    def seen(d: DeploymentState, pods: int | str | None) -> PlanesObserved:
        return Observed(d, reported_pods(d) if pods == REPORTED else pods)  # type: ignore[arg-type]

    for members in groups.values():
        first, *rest = members
        for status, requested, pods in itertools.product(
            previous, (None, "start", "stop", "fail"), (0, 1, None, REPORTED)
        ):
            expected = decide(status, requested, H, seen(first, pods))
            for other in rest:
                assert decide(status, requested, H, seen(other, pods)) == expected, other
        for intent in Intent:
            observed = [PlanesObserved({"gate": d, PLANE: d}, 1, None) for d in members]
            answers = [
                replicas(intent, ("gate", PLANE), {PLANE: "gate"}, o, {"gate": H, PLANE: H})
                for o in observed
            ]
            assert all(a == answers[0] for a in answers), members


def test_a_rollouts_intermediate_counts_wake_no_connector_and_its_end_does() -> None:
    made = deployment(H, replicas=0, updated=0, available=0, observed_generation=1)
    seen = deployment(H, replicas=0, updated=0, available=0)
    counted = deployment(H, available=0)
    assert deciding_facts(made) == deciding_facts(seen) == deciding_facts(counted)
    assert deciding_facts(deployment(H)) != deciding_facts(counted)
    stopping = deployment(H, spec_replicas=0, generation=3)
    assert deciding_facts(deployment(H, spec_replicas=0, replicas=0)) != deciding_facts(stopping)
