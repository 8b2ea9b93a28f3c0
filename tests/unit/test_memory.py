"""The garbage collector settled once the operator has started (`memory.settle`)."""

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


def test_garbage_is_collected_and_what_is_alive_set_aside_from_later_passes() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    garbage = weakref.ref(a)
    del a, b
    held = [Node() for _ in range(100)]
    memory.settle()
    assert garbage() is None  # collected, not set aside
    assert gc.get_freeze_count() >= len(held)
    young = gc.get_objects(generation=2)
    assert not any(o is held[0] for o in young)  # no longer walked by a full pass
