"""What a storage verdict means for a Connector's status (pure: models, conditions, verdicts):
the StorageReachable condition, whether it changed (one event per change), and, in enforce
mode, whether the workload may start."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connector_operator.conditions import STORAGE_REACHABLE, Wanted
from connector_operator.models import Condition
from connector_operator.storage.settings import Mode
from connector_operator.storage.verdict import Reason, Verdict

CHECKING = Wanted(None, "Checking", "The storage is being checked.")
STORAGE_UNREACHABLE = "StorageUnreachable"
CHECK_PENDING = "StorageCheckPending"


@dataclass(frozen=True)
class StorageObservation:
    mode: Mode  # enforce or warn (off observes nothing)
    verdict: Verdict | None  # None: no verdict on the current configuration yet


def wanted(verdict: Verdict) -> Wanted:
    if verdict.reason is Reason.REACHABLE:
        return Wanted(True, verdict.reason.value, verdict.message)
    if verdict.reason is Reason.CHECK_FAILED:
        return Wanted(None, verdict.reason.value, verdict.message)
    return Wanted(False, verdict.reason.value, verdict.message)


def existing(conditions: Sequence[Condition]) -> Condition | None:
    return next((c for c in conditions if c.type == STORAGE_REACHABLE), None)


def changed(before: Condition | None, now: Wanted) -> bool:
    """Whether `now` tells the user something new: a known verdict (True or False) that is
    not the one stored. A check that could not finish (Unknown) is no news."""
    if now.status is None:
        return False
    status = "True" if now.status else "False"
    return before is None or (before.status, before.reason, before.message) != (
        status,
        now.reason,
        now.message,
    )


def hold(observation: StorageObservation | None, running: bool) -> tuple[str, str] | None:
    """In enforce mode, why the workload may not start or change now, as (reason, message);
    None when it may. A workload that already runs the wanted configuration is left running
    whatever a check finds: enforce holds what would start or change, the condition tells
    the rest. A check that could not finish holds like one still to come (Reconciling): it
    is neither a pass nor a failure."""
    if observation is None or observation.mode is not Mode.ENFORCE or running:
        return None
    verdict = observation.verdict
    if verdict is None:
        return (
            CHECK_PENDING,
            "The Connector starts once the check of its storage passes (enforce mode).",
        )
    if verdict.reachable:
        return None
    if verdict.reason is Reason.CHECK_FAILED:
        return (
            CHECK_PENDING,
            f"{verdict.message} The Connector starts once a check of its storage passes "
            "(enforce mode).",
        )
    return (
        STORAGE_UNREACHABLE,
        f"The storage check failed: {verdict.message} The operator starts or changes no "
        "workload until a check passes (enforce mode); it checks again by itself.",
    )
