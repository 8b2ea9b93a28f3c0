"""Test-only fault points (stdlib only): `CONNECTOR_OPERATOR_FAILPOINT=<name>[,<name>]` makes the
process kill itself with SIGKILL when it reaches that point, or misbehave there, so that tests
can prove recovery from a fault at an exact place. Unset (always, in production) it costs one
set lookup."""

from __future__ import annotations

import os
import signal

_ARMED = frozenset(filter(None, os.environ.get("CONNECTOR_OPERATOR_FAILPOINT", "").split(",")))


def armed(name: str) -> bool:
    return name in _ARMED


def reach(name: str) -> None:
    """Dies here, as a crash would, when `name` is armed."""
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
