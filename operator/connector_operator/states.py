"""The state machine: (last status, requested action, observed workload) -> plan (pure: models,
conditions, resources)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

from connector_operator.conditions import (
    READY,
    RECONCILING,
    STALLED,
    STORAGE_REACHABLE,
    Wanted,
    merge,
)
from connector_operator.models import (
    ACTION_ANNOTATION,
    Action,
    ActionStatus,
    ConnectorStatus,
    Phase,
)
from connector_operator.resources import CONFIG_HASH_ANNOTATION
from connector_operator.storage import condition as storage_condition
from connector_operator.storage.condition import CHECK_PENDING, StorageObservation

RECOVER_HINT = f"set {ACTION_ANNOTATION} to stop, then to start"


class Intent(StrEnum):
    """What the operator does to the workload in this pass."""

    RUN = "run"  # apply the configuration with one replica
    STOP = "stop"  # apply the configuration with zero replicas
    LEAVE = "leave"  # touch nothing (Failed, refused or invalid actions, a missing Secret)


@dataclass(frozen=True)
class DeploymentState:
    """What the operator needs to know of the Connector's Deployment, as last observed."""

    spec_replicas: int
    config_hash: str | None
    generation: int
    observed_generation: int
    replicas: int
    updated_replicas: int
    available_replicas: int
    # (reason, message) of a Progressing=False condition, e.g. ProgressDeadlineExceeded.
    failure: tuple[str, str] | None = None
    # Pods being deleted that have not ended yet; None when its controller does not say
    # (`status.terminatingReplicas`: from Kubernetes 1.35 by default; 1.33 and 1.34 with the
    # DeploymentReplicaSetTerminatingReplicas feature gate on).
    terminating_replicas: int | None = None


@dataclass(frozen=True)
class Observed:
    # Each plane's Deployment (None: not made yet), by plane name.
    deployments: Mapping[str, DeploymentState | None]
    pods: int | None  # the pods of all planes that have not ended; None: not known yet
    # Why the configuration cannot be resolved (a missing Secret or keys), or None.
    config_problem: tuple[str, str] | None = None
    # The storage check's verdict; None: not checked (HttpData, or checks are off).
    storage: StorageObservation | None = None


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    intent: Intent
    phase: Phase | None
    conditions: dict[str, Wanted]
    action: ActionStatus | None
    message: str
    applied_hash: str | None
    events: tuple[Event, ...] = field(default=())
    kept: frozenset[str] = frozenset()  # conditions stored as they are (see conditions.merge)


PHASE_MESSAGES = {
    Phase.STARTING: "The Connector is starting.",
    Phase.RUNNING: "The Connector is running.",
    Phase.RESTARTING: "The Connector is restarting with its new configuration.",
    Phase.STOPPING: "The Connector is stopping.",
    Phase.STOPPED: "The Connector is stopped.",
}


PLANE_NAMES = {"controlplane": "control plane", "dataplane": "data plane"}


def combined_hash(desired: Mapping[str, str]) -> str:
    """One fingerprint of every plane's configuration (the only plane's hash when alone)."""
    if len(desired) == 1:
        return next(iter(desired.values()))
    joined = ";".join(f"{plane}={h}" for plane, h in sorted(desired.items()))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


def decide(
    previous: ConnectorStatus,
    requested: str | None,
    desired: Mapping[str, str],
    observed: Observed,
) -> Plan:
    """The whole transition table of the README (Start, stop, fail), as one pure function.

    `requested` is the action annotation's value (None when absent, which means start).
    `desired` fingerprints, per plane, the configuration the spec asks for now.
    """
    return _with_storage(_transition(previous, requested, desired, observed), previous, observed)


def _transition(
    previous: ConnectorStatus,
    requested: str | None,
    desired: Mapping[str, str],
    observed: Observed,
) -> Plan:
    value = "start" if requested is None else requested
    if value not in {a.value for a in Action}:
        return _invalid(previous, value)
    action = Action(value)
    if action is Action.FAIL:
        return _fail_requested(previous)
    if action is Action.START and previous.phase is Phase.FAILED:
        return _start_while_failed(previous)
    if action is Action.STOP:
        return _stop(previous, combined_hash(desired), observed)
    return _start(previous, desired, observed)


def _with_storage(plan: Plan, previous: ConnectorStatus, observed: Observed) -> Plan:
    """The StorageReachable condition over any plan, and one event when it changes. Until the
    current configuration's first verdict, the last one stays (its observedGeneration tells
    its age); a Connector never checked yet shows Unknown."""
    if observed.storage is None:
        return plan
    before = storage_condition.existing(previous.conditions)
    verdict = observed.storage.verdict
    if verdict is None:
        if before is not None:
            return replace(plan, kept=plan.kept | {STORAGE_REACHABLE})
        conditions = {**plan.conditions, STORAGE_REACHABLE: storage_condition.CHECKING}
        return replace(plan, conditions=conditions)
    now = storage_condition.wanted(verdict)
    events = plan.events
    if storage_condition.changed(before, now):
        kind: Literal["Normal", "Warning"] = "Normal" if now.status else "Warning"
        events += (Event(kind, STORAGE_REACHABLE if now.status else now.reason, now.message),)
    return replace(plan, conditions={**plan.conditions, STORAGE_REACHABLE: now}, events=events)


def _accepted(action: Action, message: str) -> ActionStatus:
    return ActionStatus(requested=action.value, accepted=True, message=message)


def _transition_events(previous: ConnectorStatus, phase: Phase, message: str) -> tuple[Event, ...]:
    if previous.phase is phase:
        return ()
    kind: Literal["Normal", "Warning"] = "Warning" if phase is Phase.FAILED else "Normal"
    return (Event(kind, phase.value, message),)


def _record_events(
    previous: ConnectorStatus, record: ActionStatus, reason: str
) -> tuple[Event, ...]:
    """A refusal is announced once, when it is new, not on every pass."""
    if previous.action == record:
        return ()
    return (Event("Warning", reason, record.message),)


def _invalid(previous: ConnectorStatus, value: str) -> Plan:
    allowed = ", ".join(a.value for a in Action)
    record = ActionStatus(
        requested=value,
        accepted=False,
        message=(
            f"Unknown action {value!r} in {ACTION_ANNOTATION}: use one of {allowed}; "
            "nothing was changed."
        ),
    )
    return Plan(
        intent=Intent.LEAVE,
        phase=previous.phase,
        conditions={
            READY: Wanted(False, "InvalidAction", record.message),
            STALLED: Wanted(True, "InvalidAction", record.message),
        },
        action=record,
        message=record.message,
        applied_hash=previous.config_hash,
        events=_record_events(previous, record, "InvalidAction"),
    )


def _failed_conditions(reason: str, message: str) -> dict[str, Wanted]:
    return {READY: Wanted(False, reason, message), STALLED: Wanted(True, reason, message)}


def _held(
    phase: Phase | None,
    reason: str,
    message: str,
    *,
    record: ActionStatus | None,
    applied_hash: str | None,
    events: tuple[Event, ...],
) -> Plan:
    """A plan that leaves the workload alone because progress is blocked (Stalled)."""
    return Plan(
        intent=Intent.LEAVE,
        phase=phase,
        conditions=_failed_conditions(reason, message),
        action=record,
        message=message,
        applied_hash=applied_hash,
        events=events,
    )


def _fail_requested(previous: ConnectorStatus) -> Plan:
    message = (
        "The Connector was forced into Failed; the operator leaves its workload as it is "
        f"({RECOVER_HINT})."
    )
    return _held(
        Phase.FAILED,
        "FailRequested",
        message,
        record=_accepted(Action.FAIL, "fail: the Connector is Failed."),
        applied_hash=previous.config_hash,
        events=_transition_events(previous, Phase.FAILED, message),
    )


def _start_while_failed(previous: ConnectorStatus) -> Plan:
    stalled = next((c for c in previous.conditions if c.type == STALLED), None)
    reason = stalled.reason if stalled else "Failed"
    message = previous.message or f"The Connector is Failed ({RECOVER_HINT})."
    if (
        previous.action is not None
        and previous.action.requested == Action.START.value
        and (previous.action.accepted)
    ):
        # The workload failed while it was meant to run: the start was acted on already,
        # so nothing is refused; the Connector stays Failed until it is stopped.
        record = previous.action
        events: tuple[Event, ...] = ()
    else:
        record = ActionStatus(
            requested=Action.START.value,
            accepted=False,
            message=f"start refused: the Connector is Failed; {RECOVER_HINT}.",
        )
        events = _record_events(previous, record, "ActionRefused")
    return _held(
        Phase.FAILED,
        reason,
        message,
        record=record,
        applied_hash=previous.config_hash,
        events=events,
    )


def _stop(previous: ConnectorStatus, desired_hash: str, observed: Observed) -> Plan:
    # Once Stopped, every version written asks for no pod (an edit stores its configuration):
    # one its controller has not acted on yet cannot make one, and the phase stays.
    # The pods not counted yet (their watch still listing) keep a stop going, but not a
    # Connector Stopped already: none of its versions asks for a pod.
    stopped = previous.phase is Phase.STOPPED
    no_pod = observed.pods == 0 or (observed.pods is None and stopped)
    gone = no_pod and all(
        _scaled_down(d, acted_on=not stopped) for d in observed.deployments.values()
    )
    phase = Phase.STOPPED if gone else Phase.STOPPING
    message = PHASE_MESSAGES[phase]
    conditions = (
        {READY: Wanted(True, "Stopped", message)}
        if gone
        else {
            READY: Wanted(False, "Stopping", message),
            RECONCILING: Wanted(True, "Stopping", message),
        }
    )
    return Plan(
        intent=Intent.STOP,
        phase=phase,
        conditions=conditions,
        action=_accepted(
            Action.STOP, "stop: the Connector is stopped and keeps its configuration."
        ),
        message=message,
        applied_hash=desired_hash,
        events=_transition_events(previous, phase, message),
    )


def _start(previous: ConnectorStatus, desired: Mapping[str, str], observed: Observed) -> Plan:
    record = _accepted(Action.START, "start: the Connector runs.")
    desired_hash = combined_hash(desired)
    if observed.config_problem is not None:
        reason, message = observed.config_problem
        announced = previous.message == message
        return _held(
            previous.phase or Phase.STARTING,
            reason,
            message,
            record=record,
            applied_hash=previous.config_hash,
            events=() if announced else (Event("Warning", reason, message),),
        )
    running = all(
        (d := observed.deployments.get(plane)) is not None and _running(d, h)
        for plane, h in desired.items()
    )
    failed = next(
        (
            (plane, d.failure)
            for plane, d in observed.deployments.items()
            if d is not None and d.failure and d.config_hash == desired.get(plane)
        ),
        None,
    )
    if failed is not None:
        plane, (reason, detail) = failed
        which = f"{PLANE_NAMES[plane]} " if plane in PLANE_NAMES else ""
        message = f"The Connector's {which}Deployment failed: {detail} ({RECOVER_HINT})."
        events = _transition_events(previous, Phase.FAILED, message)
        return _held(
            Phase.FAILED,
            reason,
            message,
            record=record,
            applied_hash=desired_hash,
            events=events,
        )
    held = storage_condition.hold(observed.storage, running)
    if held is not None:
        return _held_for_storage(previous, record, *held)
    if running:
        message = PHASE_MESSAGES[Phase.RUNNING]
        return Plan(
            intent=Intent.RUN,
            phase=Phase.RUNNING,
            conditions={READY: Wanted(True, "Running", message)},
            action=record,
            message=message,
            applied_hash=desired_hash,
            events=_transition_events(previous, Phase.RUNNING, message),
        )
    edited = previous.config_hash is not None and previous.config_hash != desired_hash
    restarting = previous.phase is Phase.RESTARTING or (
        previous.phase in (Phase.RUNNING, Phase.STARTING) and edited
    )
    phase = Phase.RESTARTING if restarting else Phase.STARTING
    message = PHASE_MESSAGES[phase]
    return Plan(
        intent=Intent.RUN,
        phase=phase,
        conditions={
            READY: Wanted(False, phase.value, message),
            RECONCILING: Wanted(True, phase.value, message),
        },
        action=record,
        message=message,
        applied_hash=desired_hash,
        events=_transition_events(previous, phase, message),
    )


def _held_for_storage(
    previous: ConnectorStatus, record: ActionStatus, reason: str, message: str
) -> Plan:
    """Enforce mode: the workload is left as it is until the storage check passes. A pending
    first check is progress (Reconciling); a failed one blocks (Stalled). The condition's own
    event says what failed, so this adds none. A Connector asked to start while stopped is
    Starting: it is on its way, waiting for its storage."""
    keeps = previous.phase in (Phase.RUNNING, Phase.RESTARTING)
    phase = previous.phase if keeps else Phase.STARTING
    if reason != CHECK_PENDING:
        return _held(
            phase,
            reason,
            message,
            record=record,
            applied_hash=previous.config_hash,
            events=(),
        )
    return Plan(
        intent=Intent.LEAVE,
        phase=phase,
        conditions={
            READY: Wanted(False, reason, message),
            RECONCILING: Wanted(True, reason, message),
        },
        action=record,
        message=message,
        applied_hash=previous.config_hash,
    )


def _scaled_down(deployment: DeploymentState | None, *, acted_on: bool) -> bool:
    """Whether a Deployment is absent, or asks for no pod and counts none, with (`acted_on`)
    its controller having acted on the version that asks for none (observedGeneration). A
    status counts no pod both before the controller has looked at the Deployment and when a
    pod is refused (a quota, say), while the Deployment may still make one."""
    return deployment is None or (
        deployment.spec_replicas == 0
        and deployment.replicas == 0
        and (not acted_on or deployment.observed_generation >= deployment.generation)
    )


def _running(deployment: DeploymentState, desired_hash: str) -> bool:
    return deployment.config_hash == desired_hash and _rolled_out(deployment)


def _rolled_out(deployment: DeploymentState) -> bool:
    """One pod of the Deployment's current version, available, its controller caught up."""
    return (
        deployment.spec_replicas == 1
        and deployment.observed_generation >= deployment.generation
        and deployment.replicas == 1
        and deployment.updated_replicas == 1
        and deployment.available_replicas == 1
    )


def deciding_facts(deployment: DeploymentState | None) -> tuple[object, ...] | None:
    """What `decide` and `replicas` read of a Deployment, and nothing more: its replicas
    asked for, its configuration, its failure, the answers of `_rolled_out`, `_scaled_down`
    (both ways) and `_ready`, and whether a pod of it is still terminating (with `replicas`,
    the pods a stop waits for: `reported_pods`). A status update that leaves these as they were
    (a rollout's intermediate counts, a condition's time: most of them) changes no decision,
    so it need not cost the Connector a pass."""
    if deployment is None:
        return None
    return (
        deployment.spec_replicas,
        deployment.config_hash,
        deployment.failure,
        _rolled_out(deployment),
        _scaled_down(deployment, acted_on=False),
        _scaled_down(deployment, acted_on=True),
        deployment.available_replicas >= 1,
        _none_terminating(deployment),
    )


def _none_terminating(deployment: DeploymentState) -> bool | None:
    """Whether no pod of the Deployment is terminating (as `reported_pods` counts them); None
    when its status does not say."""
    if reported_pods(deployment) is None:
        return None
    return deployment.observed_generation == 0 or not deployment.terminating_replicas


def reported_pods(deployment: DeploymentState | None) -> int | None:
    """The Deployment's pods that have not ended, as its status counts them: those running or
    starting (`replicas`) and those being deleted (`terminatingReplicas`). None when its
    controller counts no terminating pods (by default, a cluster before Kubernetes 1.35): they
    must be counted from the pods themselves. A Deployment its controller has not reported on
    yet has made no pod."""
    if deployment is None or deployment.observed_generation == 0:
        return 0
    if deployment.terminating_replicas is None:
        return None
    return deployment.replicas + deployment.terminating_replicas


def replicas(
    intent: Intent,
    planes: tuple[str, ...],
    gates: Mapping[str, str],
    observed: Observed,
    desired: Mapping[str, str],
) -> dict[str, int | None]:
    """How many replicas each plane's Deployment gets (None: leave it as it is, or do not
    make it yet).

    A gated plane (the data plane, which cannot boot before the control plane's control API
    answers) is made, started, and given a new configuration only once its gate runs the
    configuration wanted now and is Available. Until then a running gated plane keeps running
    what it runs: a change to both planes rolls the gate first, then the gated plane.
    """
    result: dict[str, int | None] = {}
    for plane in planes:
        current = observed.deployments.get(plane)
        gate = gates.get(plane)
        if intent is not Intent.RUN:
            result[plane] = None if gate is not None and current is None else 0
            continue
        if gate is None or _ready(observed.deployments.get(gate), desired.get(gate)):
            result[plane] = 1
        elif (
            current is not None
            and current.spec_replicas
            and current.config_hash == desired.get(plane)
        ):
            result[plane] = 1  # converged and running: drift is still repaired
        else:
            result[plane] = None
    return result


def _ready(deployment: DeploymentState | None, desired_hash: str | None) -> bool:
    return (
        deployment is not None
        and deployment.config_hash == desired_hash
        and deployment.available_replicas >= 1
    )


def summarize_deployment(body: Mapping[str, Any] | None) -> DeploymentState | None:
    """The facts `decide` needs from a Deployment object as the API server returns it."""
    if body is None:
        return None
    spec, status = body.get("spec", {}), body.get("status", {})
    template_annotations = spec.get("template", {}).get("metadata", {}).get("annotations", {})
    failure = next(
        (
            (str(c.get("reason", "ProgressDeadlineExceeded")), str(c.get("message", "")))
            for c in status.get("conditions", [])
            if c.get("type") == "Progressing" and c.get("status") == "False"
        ),
        None,
    )
    return DeploymentState(
        spec_replicas=int(spec.get("replicas", 1)),
        config_hash=template_annotations.get(CONFIG_HASH_ANNOTATION),
        generation=int(body.get("metadata", {}).get("generation", 0)),
        observed_generation=int(status.get("observedGeneration", 0)),
        replicas=int(status.get("replicas", 0)),
        updated_replicas=int(status.get("updatedReplicas", 0)),
        available_replicas=int(status.get("availableReplicas", 0)),
        failure=failure,
        terminating_replicas=_optional_int(status.get("terminatingReplicas")),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def next_status(previous: ConnectorStatus, plan: Plan, generation: int, now: str) -> dict[str, Any]:
    """The status to store, as the API server would return it (camelCase, no empty keys)."""
    status = ConnectorStatus(
        phase=plan.phase,
        observed_generation=generation,
        conditions=merge(previous.conditions, plan.conditions, now, generation, plan.kept),
        action=plan.action,
        config_hash=plan.applied_hash,
        message=plan.message,
    )
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)
