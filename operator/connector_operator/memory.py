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
    """Once the operator has started and its caches are filled: one full collection, then
    everything still alive set aside (`gc.freeze`), so that the collector's later full passes
    walk only what was made since, not the modules, schemas and first listings of a start.

    Done once, not at every quiet moment: a full collection of everything costs tens of
    milliseconds of CPU, and on a busy machine a user's stop that came meanwhile waited for it.
    What is set aside is still freed by its reference count (a cache entry replaced), but a
    cycle in it that dies later is never collected: a bounded cost, as this happens once."""
    gc.collect()
    gc.freeze()
