"""What a Connector's status says of an action asked with `kubectl connector start|stop|fail`:
reached, refused (or blocked), or not yet. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from connector_operator.conditions import STALLED
from connector_operator.models import Action, Phase

TARGET = {Action.START: Phase.RUNNING, Action.STOP: Phase.STOPPED, Action.FAIL: Phase.FAILED}


class Exit(IntEnum):
    """The plugin's exit codes (README: the kubectl plugin)."""

    REACHED = 0
    ERROR = 1  # usage, a Connector not found, the API server refused or did not answer
    BLOCKED = 2  # the operator refused the action, or the Connector cannot get there
    TIMEOUT = 3  # still on its way when --timeout ran out


@dataclass(frozen=True)
class Outcome:
    code: Exit
    message: str


def judge(action: Action, body: Mapping[str, Any]) -> Outcome | None:
    """The outcome once the operator has acted on `action`; None while it has not, or while the
    Connector is on its way."""
    status = body.get("status") or {}
    record = status.get("action") or {}
    if record.get("requested") != action.value:
        return None  # the operator has not seen this action yet
    target = TARGET[action]
    if record.get("accepted") is False:
        return Outcome(Exit.BLOCKED, f"refused: {record.get('message', '')}")
    phase = status.get("phase")
    if phase == target.value:
        return Outcome(Exit.REACHED, f"{target.value}: {status.get('message', '')}".rstrip(": "))
    if phase == Phase.FAILED.value:
        return Outcome(Exit.BLOCKED, f"Failed: {status.get('message', '')}")
    stalled = _condition(status, STALLED)
    if stalled is not None and stalled.get("status") == "True":
        reason, message = stalled.get("reason", ""), stalled.get("message", "")
        return Outcome(Exit.BLOCKED, f"Stalled ({reason}): {message}")
    return None


def where(body: Mapping[str, Any]) -> str:
    """Where the Connector stands, for a timeout's message."""
    status = body.get("status") or {}
    phase = status.get("phase") or "no phase yet"
    message = status.get("message")
    return f"{phase}: {message}" if message else phase


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return condition  # type: ignore[no-any-return]
    return None
