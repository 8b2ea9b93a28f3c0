"""Unit tests of connector_operator.conditions: kstatus bookkeeping of the conditions."""

from __future__ import annotations

import pytest

from connector_operator.conditions import (
    READY,
    RECONCILING,
    STALLED,
    STORAGE_REACHABLE,
    Wanted,
    merge,
)
from connector_operator.models import Condition

T0 = "2025-01-01T00:00:00Z"
T1 = "2025-01-01T00:05:00Z"


def condition(type_: str, status: str, reason: str = "Before", since: str = T0) -> Condition:
    return Condition.model_validate(
        {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": f"{type_} was {status}.",
            "lastTransitionTime": since,
            "observedGeneration": 1,
        }
    )


def by_type(conditions: list[Condition]) -> dict[str, Condition]:
    return {c.type: c for c in conditions}


class TestPresence:
    @pytest.mark.parametrize("status", [True, False])
    def test_ready_is_stored_whatever_its_status(self, status: bool) -> None:
        merged = merge([], {READY: Wanted(status, "Running", "The Connector is running.")}, T1, 2)

        assert [(c.type, c.status) for c in merged] == [(READY, "True" if status else "False")]

    @pytest.mark.parametrize("type_", [RECONCILING, STALLED])
    def test_abnormal_true_conditions_are_dropped_when_false(self, type_: str) -> None:
        existing = [condition(READY, "False"), condition(type_, "True")]
        wanted = {
            READY: Wanted(True, "Running", "The Connector is running."),
            type_: Wanted(False, "Done", "Nothing to do."),
        }

        merged = merge(existing, wanted, T1, 2)

        assert [c.type for c in merged] == [READY]

    @pytest.mark.parametrize("type_", [RECONCILING, STALLED])
    def test_abnormal_true_conditions_are_dropped_when_not_wanted(self, type_: str) -> None:
        existing = [condition(READY, "False"), condition(type_, "True")]

        merged = merge(existing, {READY: Wanted(True, "Running", "Running.")}, T1, 2)

        assert [c.type for c in merged] == [READY]

    @pytest.mark.parametrize("type_", [RECONCILING, STALLED])
    def test_abnormal_true_conditions_are_stored_when_true(self, type_: str) -> None:
        wanted = {READY: Wanted(False, "Why", "Why."), type_: Wanted(True, "Why", "Why.")}

        merged = merge([], wanted, T1, 2)

        assert [(c.type, c.status) for c in merged] == [(READY, "False"), (type_, "True")]


class TestLastTransitionTime:
    @pytest.mark.parametrize(
        ("before", "wanted", "expected_since"),
        [
            pytest.param(None, True, T1, id="first-appearance-True"),
            pytest.param(None, False, T1, id="first-appearance-False"),
            pytest.param("False", True, T1, id="flip-False-to-True"),
            pytest.param("True", False, T1, id="flip-True-to-False"),
            pytest.param("Unknown", True, T1, id="flip-Unknown-to-True"),
            pytest.param("True", True, T0, id="same-True"),
            pytest.param("False", False, T0, id="same-False"),
        ],
    )
    def test_ready_moves_only_on_a_flip(
        self, before: str | None, wanted: bool, expected_since: str
    ) -> None:
        existing = [] if before is None else [condition(READY, before)]

        (ready,) = merge(existing, {READY: Wanted(wanted, "Now", "Now.")}, T1, 2)

        assert ready.last_transition_time == expected_since

    def test_reason_message_and_generation_follow_the_wish_without_a_flip(self) -> None:
        existing = [condition(READY, "False", reason="Starting")]

        (ready,) = merge(
            existing, {READY: Wanted(False, "Restarting", "The Connector is restarting.")}, T1, 7
        )

        assert (ready.reason, ready.message, ready.observed_generation) == (
            "Restarting",
            "The Connector is restarting.",
            7,
        )
        assert ready.last_transition_time == T0

    def test_a_condition_that_reappears_gets_a_new_time(self) -> None:
        # Reconciling True at T0, dropped in between, True again: the stored history is gone,
        # so the new True is a transition.
        wanted = {READY: Wanted(False, "Starting", "."), RECONCILING: Wanted(True, "Starting", ".")}

        merged = by_type(merge([condition(READY, "False")], wanted, T1, 2))

        assert merged[RECONCILING].last_transition_time == T1
        assert merged[READY].last_transition_time == T0

    def test_stalled_kept_true_keeps_its_time(self) -> None:
        existing = [condition(READY, "False"), condition(STALLED, "True", reason="Failed")]
        wanted = {READY: Wanted(False, "Failed", "."), STALLED: Wanted(True, "Failed", ".")}

        merged = by_type(merge(existing, wanted, T1, 2))

        assert merged[STALLED].last_transition_time == T0


class TestForeignConditionsAndOrder:
    def test_foreign_conditions_are_kept_unchanged_after_ours(self) -> None:
        foreign = [
            condition("Available", "True", reason="SomeoneElse"),
            condition("example.com/Audited", "False", reason="NotYet"),
        ]
        existing = [foreign[0], condition(READY, "False"), foreign[1]]
        wanted = {READY: Wanted(True, "Running", "Running.")}

        merged = merge(existing, wanted, T1, 2)

        assert [c.type for c in merged] == [READY, "Available", "example.com/Audited"]
        assert merged[1:] == foreign

    def test_ours_come_in_kstatus_order_whatever_the_input_order(self) -> None:
        existing = [condition(STALLED, "True"), condition(RECONCILING, "True")]
        wanted = {
            STALLED: Wanted(True, "S", "S."),
            RECONCILING: Wanted(True, "R", "R."),
            READY: Wanted(False, "R", "R."),
        }

        merged = merge(existing, wanted, T1, 2)

        assert [c.type for c in merged] == [READY, RECONCILING, STALLED]

    def test_unknown_wanted_types_are_not_stored(self) -> None:
        wanted = {READY: Wanted(True, "Running", "."), "Progressing": Wanted(True, "X", ".")}

        assert [c.type for c in merge([], wanted, T1, 2)] == [READY]

    def test_merge_does_not_modify_the_existing_list(self) -> None:
        existing = [condition(READY, "False")]
        snapshot = [c.model_copy() for c in existing]

        merge(existing, {READY: Wanted(True, "Running", ".")}, T1, 2)

        assert existing == snapshot


class TestKeptAndUnknown:
    def test_a_kept_condition_stays_exactly_as_stored(self) -> None:
        before = condition(STORAGE_REACHABLE, "False", reason="InvalidCredentials")

        merged = merge(
            [condition(READY, "True"), before],
            {READY: Wanted(True, "Running", "Running.")},
            T1,
            2,
            keep=(STORAGE_REACHABLE,),
        )

        assert by_type(merged)[STORAGE_REACHABLE] == before

    def test_an_operator_condition_neither_wanted_nor_kept_is_dropped(self) -> None:
        existing = [condition(READY, "True"), condition(STORAGE_REACHABLE, "True")]

        merged = merge(existing, {READY: Wanted(True, "Running", "Running.")}, T1, 2)

        assert [c.type for c in merged] == [READY]

    def test_unknown_is_stored_as_unknown_and_flips_the_transition_time(self) -> None:
        existing = [condition(READY, "True"), condition(STORAGE_REACHABLE, "True")]
        wanted = {
            READY: Wanted(True, "Running", "Running."),
            STORAGE_REACHABLE: Wanted(None, "CheckFailed", "The check could not finish."),
        }

        stored = by_type(merge(existing, wanted, T1, 2))[STORAGE_REACHABLE]

        assert (stored.status, stored.last_transition_time) == ("Unknown", T1)
