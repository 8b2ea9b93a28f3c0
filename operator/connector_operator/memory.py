"""Giving freed memory back to the system, and keeping the garbage collector's pauses short
(stdlib only: ctypes, glibc where present; gc)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    with contextlib.suppress(OSError, AttributeError):
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
        return trim
    return None


def release() -> None:
    """Returns the pages that freed objects left behind to the system (glibc's malloc_trim).

    A LIST of large objects (Secrets whose annotations repeat their data, say) is parsed and
    dropped page by page, but the allocator keeps the freed heap, and the process would stay at
    that peak for the rest of its life. Elsewhere than glibc this does nothing.
    """
    if (trim := _malloc_trim()) is not None:
        trim(0)


def settle() -> None:
    """At a quiet moment (the caches just filled, the queue drained after a busy spell): one
    full collection, then everything still alive set aside (`gc.freeze`), so that until the
    next quiet moment the collector's full passes walk only what was made since.

    A full pass over the caches of thousands of Connectors stopped the event loop for up to a
    quarter of a second on a busy machine, and anything waiting (a user's stop) waited with it.
    What was set aside is taken back (`gc.unfreeze`) before the next full collection, so a
    cycle that became garbage meanwhile is still freed."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
