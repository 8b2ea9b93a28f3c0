"""The tests' free ports: two asked for in a row are never the same."""

from __future__ import annotations

import pytest

from tests.cluster import controlplane


def test_a_port_handed_out_is_not_handed_out_again(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter([24001, 24001, 24001, 24002])  # the same number drawn three times
    monkeypatch.setattr(controlplane.random, "randint", lambda _a, _b: next(drawn))
    monkeypatch.setattr(controlplane, "_GIVEN", set(), raising=False)
    assert (controlplane.free_port(), controlplane.free_port()) == (24001, 24002)
