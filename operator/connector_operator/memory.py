"""Giving freed memory back to the system (stdlib only: ctypes, glibc where present)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
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
