"""Which changes of a Connector are a user's own (the work queue's fast lane)."""

from __future__ import annotations

from typing import Any

import pytest

from connector_operator.cache import users_change
from connector_operator.models import ACTION_ANNOTATION


def body(generation: int = 1, action: str | None = None, phase: str = "Running") -> dict[str, Any]:
    annotations = {} if action is None else {ACTION_ANNOTATION: action}
    return {
        "metadata": {"name": "c", "generation": generation, "annotations": annotations},
        "status": {"phase": phase},
    }


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (None, body(), False),  # created: bulk, as a thousand applied at once
        (body(), body(action="stop"), True),  # a first action
        (body(action="stop"), body(action="start"), True),
        (body(action="stop"), body(), True),  # the annotation removed: start
        (body(), body(generation=2), True),  # an edit of the spec
        (body(), body(phase="Stopping"), False),  # the operator's own status write
        (body(action="stop"), body(action="stop", phase="Stopped"), False),
    ],
    ids=["created", "first action", "new action", "action removed", "edited", "status", "same"],
)
def test_a_users_change_is_an_edit_or_an_action(
    old: dict[str, Any] | None, new: dict[str, Any], expected: bool
) -> None:
    assert users_change(old, new) is expected
