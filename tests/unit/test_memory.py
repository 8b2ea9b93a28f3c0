"""The garbage collector's quiet-moment settling (`memory.settle`)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from connector_operator import memory


class Node:
    """An object that can be part of a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the suite runs with the collector as usual


def test_what_is_alive_at_a_quiet_moment_is_set_aside_from_later_collections() -> None:
    held = [Node() for _ in range(100)]
    memory.settle()
    assert gc.get_freeze_count() >= len(held)
    assert all(not any(n is o for o in gc.get_objects(generation=2)) for n in held[:3])


def test_a_cycle_that_became_garbage_after_being_set_aside_is_freed_at_the_next_settle() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    memory.settle()  # the cycle is alive: set aside
    del a, b
    gc.collect()
    assert gone() is not None  # a collection alone does not look at what was set aside
    memory.settle()
    assert gone() is None
