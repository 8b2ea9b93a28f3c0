"""Helpers shared by the integration tests: polling until the cluster shows what we expect."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float = 60.0, what: str = "") -> T:
    """Polls `probe` until it returns a truthy value. The timeout bounds a hang; it is not a
    performance assertion (those live in `make bench`)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}; last: {last!r}")
