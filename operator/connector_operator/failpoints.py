"""Test-only crash points (stdlib only): `CONNECTOR_OPERATOR_FAILPOINT=<name>` makes the process
kill itself with SIGKILL when it reaches that point, so that tests can prove recovery from a
crash at an exact place. Unset (always, in production) it costs one set lookup."""

from __future__ import annotations

import os
import signal

_ARMED = frozenset(filter(None, os.environ.get("CONNECTOR_OPERATOR_FAILPOINT", "").split(",")))


def reach(name: str) -> None:
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
