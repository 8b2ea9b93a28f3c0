"""Unit tests of connector_operator.workqueue: dedup, re-runs, retries, isolation, shutdown.

Plain `asyncio.run` in sync tests: no pytest-asyncio. Every wait is bounded by `within`, so a
broken queue fails a test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from connector_operator.workqueue import Retry, WorkQueue

T = TypeVar("T")
TIMEOUT = 5.0


async def within(awaitable: Awaitable[T], timeout: float = TIMEOUT) -> T:
    return await asyncio.wait_for(awaitable, timeout)


async def until(check: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.001)

    await within(poll(), timeout)


async def settle(queue: WorkQueue[str]) -> None:
    """Until the queue has nothing queued or running (pending retries do not count)."""
    await asyncio.sleep(0)
    await until(queue.idle)


@dataclass
class Recorder:
    """A handler that records each pass: the key, when it started, and the concurrency."""

    loop_time: Callable[[], float]
    runs: list[tuple[str, float]] = field(default_factory=list)
    running: set[str] = field(default_factory=set)
    overlaps: list[str] = field(default_factory=list)
    gate: dict[str, asyncio.Event] = field(default_factory=dict)
    failures: dict[str, list[Exception]] = field(default_factory=dict)

    async def __call__(self, key: str) -> None:
        if key in self.running:
            self.overlaps.append(key)
        self.running.add(key)
        self.runs.append((key, self.loop_time()))
        try:
            if key in self.gate:
                await self.gate[key].wait()
            planned = self.failures.get(key)
            if planned:
                raise planned.pop(0)
        finally:
            self.running.discard(key)

    def count(self, key: str) -> int:
        return sum(1 for k, _ in self.runs if k == key)

    def times(self, key: str) -> list[float]:
        return [t for k, t in self.runs if k == key]


def others() -> set[asyncio.Task[Any]]:
    """The tasks still alive besides the test's own."""
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


def recorder() -> Recorder:
    return Recorder(asyncio.get_running_loop().time)


class TestDeduplication:
    def test_a_key_added_many_times_while_queued_runs_once(self) -> None:
        async def scenario() -> int:
            handler = recorder()
            queue = WorkQueue(handler, workers=2)
            for _ in range(10):
                queue.add("team-a/orders")
            queue.start()
            try:
                await settle(queue)
                await asyncio.sleep(0.02)
            finally:
                await queue.stop()
            return handler.count("team-a/orders")

        assert asyncio.run(scenario()) == 1

    def test_distinct_keys_each_run_once(self) -> None:
        async def scenario() -> list[str]:
            handler = recorder()
            queue = WorkQueue(handler, workers=3)
            for key in ["a", "b", "a", "c", "b", "a"]:
                queue.add(key)
            queue.start()
            try:
                await settle(queue)
            finally:
                await queue.stop()
            return sorted(k for k, _ in handler.runs)

        assert asyncio.run(scenario()) == ["a", "b", "c"]

    def test_a_key_added_while_running_runs_again_after_and_never_twice_at_once(self) -> None:
        async def scenario() -> tuple[int, int, list[str]]:
            handler = recorder()
            handler.gate["k"] = asyncio.Event()
            queue = WorkQueue(handler, workers=4)
            queue.start()
            try:
                queue.add("k")
                await until(lambda: "k" in handler.running)
                for _ in range(5):
                    queue.add("k")  # four idle workers could take it: none may
                await asyncio.sleep(0.02)
                during = handler.count("k")
                handler.gate["k"].set()
                await settle(queue)
                await asyncio.sleep(0.02)
            finally:
                await queue.stop()
            return during, handler.count("k"), handler.overlaps

        during, total, overlaps = asyncio.run(scenario())

        assert during == 1
        assert total == 2
        assert overlaps == []

    def test_idle_reports_queued_and_running_work(self) -> None:
        async def scenario() -> list[bool]:
            handler = recorder()
            handler.gate["k"] = asyncio.Event()
            queue = WorkQueue(handler, workers=1)
            seen = [queue.idle()]
            queue.add("k")
            seen.append(queue.idle())
            queue.start()
            try:
                await until(lambda: "k" in handler.running)
                seen.append(queue.idle())
                handler.gate["k"].set()
                await settle(queue)
                seen.append(queue.idle())
            finally:
                await queue.stop()
            return seen

        assert asyncio.run(scenario()) == [True, False, False, True]


class TestRetries:
    @pytest.mark.parametrize(
        "error",
        [RuntimeError("API server said 500"), Retry("not yet")],
        ids=["exception", "retry-without-delay"],
    )
    def test_a_failing_handler_retries_with_growing_backoff(self, error: Exception) -> None:
        base = 0.02

        async def scenario() -> list[float]:
            handler = recorder()
            handler.failures["k"] = [error, error, error]
            queue = WorkQueue(handler, workers=1, base_delay=base, max_delay=10)
            queue.start()
            try:
                queue.add("k")
                await until(lambda: handler.count("k") == 4)
                await settle(queue)
            finally:
                await queue.stop()
            return handler.times("k")

        times = asyncio.run(scenario())
        gaps = [b - a for a, b in itertools.pairwise(times)]

        assert len(times) == 4
        # base, 2*base, 4*base; a little slack for the loop's clock resolution.
        for gap, expected in zip(gaps, [base, 2 * base, 4 * base], strict=True):
            assert gap >= expected * 0.9, gaps

    def test_backoff_is_capped(self) -> None:
        async def scenario() -> int:
            handler = recorder()
            handler.failures["k"] = [RuntimeError("boom")] * 3
            # Uncapped, the first retry would wait 30 seconds and the test would time out.
            queue = WorkQueue(handler, workers=1, base_delay=30, max_delay=0.01)
            queue.start()
            try:
                queue.add("k")
                await until(lambda: handler.count("k") == 4, timeout=2)
            finally:
                await queue.stop()
            return handler.count("k")

        assert asyncio.run(scenario()) == 4

    def test_success_resets_the_backoff(self) -> None:
        async def scenario() -> float:
            handler = recorder()
            handler.failures["k"] = [RuntimeError("1"), RuntimeError("2"), RuntimeError("3")]
            queue = WorkQueue(handler, workers=1, base_delay=0.05, max_delay=10)
            queue.start()
            try:
                queue.add("k")
                await until(lambda: handler.count("k") == 4)
                await settle(queue)
                # A fresh failure after a success waits the base delay again, not 8x.
                handler.failures["k"] = [RuntimeError("4")]
                queue.add("k")
                await until(lambda: handler.count("k") == 6, timeout=0.3)
            finally:
                await queue.stop()
            times = handler.times("k")
            return times[5] - times[4]

        assert asyncio.run(scenario()) >= 0.045

    def test_retry_with_a_delay_schedules_after_that_delay(self) -> None:
        async def scenario() -> tuple[int, float]:
            handler = recorder()
            handler.failures["k"] = [Retry("conflict", delay=0.05)]
            # The backoff alone would wait 30 seconds: the Retry's own delay must win.
            queue = WorkQueue(handler, workers=1, base_delay=30, max_delay=60)
            queue.start()
            try:
                queue.add("k")
                await until(lambda: handler.count("k") == 2, timeout=2)
            finally:
                await queue.stop()
            first, second = handler.times("k")
            return handler.count("k"), second - first

        count, gap = asyncio.run(scenario())

        assert count == 2
        assert gap >= 0.045

    def test_a_retry_is_not_run_before_its_delay(self) -> None:
        async def scenario() -> int:
            handler = recorder()
            handler.failures["k"] = [Retry("later", delay=0.3)]
            queue = WorkQueue(handler, workers=1)
            queue.start()
            try:
                queue.add("k")
                await settle(queue)
                await asyncio.sleep(0.1)
            finally:
                await queue.stop()
            return handler.count("k")

        assert asyncio.run(scenario()) == 1

    def test_an_add_runs_a_key_now_instead_of_at_its_retry(self) -> None:
        async def scenario() -> int:
            handler = recorder()
            handler.failures["k"] = [Retry("later", delay=30)]
            queue = WorkQueue(handler, workers=1)
            queue.start()
            try:
                queue.add("k")
                await settle(queue)
                queue.add("k")  # e.g. a watch event: the object changed
                await until(lambda: handler.count("k") == 2, timeout=1)
                await asyncio.sleep(0.02)
            finally:
                await queue.stop()
            return handler.count("k")

        assert asyncio.run(scenario()) == 2

    def test_forget_drops_a_pending_retry(self) -> None:
        async def scenario() -> int:
            handler = recorder()
            handler.failures["k"] = [Retry("later", delay=0.03)]
            queue = WorkQueue(handler, workers=1)
            queue.start()
            try:
                queue.add("k")
                await settle(queue)
                queue.forget("k")  # the Connector was deleted
                await asyncio.sleep(0.1)
            finally:
                await queue.stop()
            return handler.count("k")

        assert asyncio.run(scenario()) == 1


class TestIsolation:
    def test_one_failing_key_does_not_block_the_others(self) -> None:
        async def scenario() -> tuple[int, int]:
            handler = recorder()
            handler.failures["broken"] = [RuntimeError("always")] * 1000
            queue = WorkQueue(handler, workers=1, base_delay=0.001, max_delay=0.002)
            queue.start()
            try:
                queue.add("broken")
                await until(lambda: handler.count("broken") >= 3)
                for key in ("orders", "invoices"):
                    queue.add(key)
                await until(lambda: handler.count("orders") == handler.count("invoices") == 1)
            finally:
                await queue.stop()
            return handler.count("orders"), handler.count("invoices")

        assert asyncio.run(scenario()) == (1, 1)

    def test_a_slow_key_does_not_block_the_others(self) -> None:
        async def scenario() -> list[str]:
            handler = recorder()
            handler.gate["slow"] = asyncio.Event()
            queue = WorkQueue(handler, workers=2)
            queue.start()
            try:
                queue.add("slow")
                await until(lambda: "slow" in handler.running)
                for key in ("a", "b", "c"):
                    queue.add(key)
                await until(lambda: all(handler.count(k) == 1 for k in "abc"))
                still_running = sorted(handler.running)
                handler.gate["slow"].set()
            finally:
                await queue.stop()
            return still_running

        assert asyncio.run(scenario()) == ["slow"]


class TestStop:
    def test_stop_cancels_the_workers_and_a_running_handler(self) -> None:
        async def scenario() -> tuple[list[str], set[asyncio.Task[Any]]]:
            started: list[str] = []
            cancelled: list[str] = []

            async def handler(key: str) -> None:
                started.append(key)
                try:
                    await asyncio.Event().wait()  # never set
                except asyncio.CancelledError:
                    cancelled.append(key)
                    raise

            queue: WorkQueue[str] = WorkQueue(handler, workers=3)
            queue.start()
            queue.add("k")
            await until(lambda: started == ["k"])
            await within(queue.stop(), timeout=1)
            return cancelled, others()

        cancelled, remaining = asyncio.run(scenario())

        assert cancelled == ["k"]
        assert remaining == set()

    def test_stop_cancels_pending_retries(self) -> None:
        async def scenario() -> tuple[int, bool]:
            handler = recorder()
            handler.failures["k"] = [Retry("later", delay=0.03)]
            queue = WorkQueue(handler, workers=1)
            queue.start()
            queue.add("k")
            await settle(queue)
            await within(queue.stop(), timeout=1)
            await asyncio.sleep(0.1)
            # A retry that fired after stop() would leave the key queued forever.
            return handler.count("k"), queue.idle()

        assert asyncio.run(scenario()) == (1, True)

    def test_stop_of_an_idle_queue_returns(self) -> None:
        async def scenario() -> set[asyncio.Task[Any]]:
            queue = WorkQueue(recorder(), workers=4)
            queue.start()
            await asyncio.sleep(0)
            await within(queue.stop(), timeout=1)
            return others()

        assert asyncio.run(scenario()) == set()


class TestLanes:
    """A user's change is taken before the bulk of work, whatever is queued ahead of it."""

    @staticmethod
    async def _order(prepare: Callable[[WorkQueue[str]], Awaitable[None]]) -> list[str]:
        handler = recorder()
        queue = WorkQueue(handler, workers=1)
        await prepare(queue)
        queue.start()
        try:
            await settle(queue)
        finally:
            await queue.stop()
        return [k for k, _ in handler.runs]

    def test_an_expedited_key_runs_before_the_bulk_queued_ahead_of_it(self) -> None:
        async def prepare(queue: WorkQueue[str]) -> None:
            for i in range(100):
                queue.add(f"new-{i}")
            queue.expedite("stop-me")

        runs = asyncio.run(self._order(prepare))
        assert runs[0] == "stop-me"
        assert sorted(runs[1:]) == sorted(f"new-{i}" for i in range(100))

    def test_a_queued_key_once_expedited_moves_ahead_and_still_runs_once(self) -> None:
        async def prepare(queue: WorkQueue[str]) -> None:
            for i in range(10):
                queue.add(f"k-{i}")
            queue.expedite("k-7")

        runs = asyncio.run(self._order(prepare))
        assert runs[0] == "k-7"
        assert runs.count("k-7") == 1
        assert len(runs) == 10

    def test_an_expedited_key_keeps_the_fast_lane_for_the_events_that_follow(self) -> None:
        async def prepare(queue: WorkQueue[str]) -> None:
            queue.expedite("mine")
            await asyncio.sleep(0)  # not yet started: the key stays queued once
            for i in range(10):
                queue.add(f"bulk-{i}")
            queue.add("mine")  # its pods' event: still ahead of the bulk

        runs = asyncio.run(self._order(prepare))
        assert runs[0] == "mine"
        assert runs.count("mine") == 1

    @staticmethod
    async def _after(ending: Callable[[WorkQueue[str]], Awaitable[None]]) -> list[str]:
        """`ending` once "once-mine" ran in the fast lane; then "once-mine" is added behind a
        running blocker and five bulk keys: the order they ran in."""
        handler = recorder()
        queue = WorkQueue(handler, workers=1, expedite_seconds=0.05)
        queue.expedite("once-mine")
        queue.start()
        try:
            await settle(queue)
            await ending(queue)
            handler.runs.clear()
            gate = handler.gate["blocker"] = asyncio.Event()
            queue.add("blocker")
            await until(lambda: "blocker" in handler.running)
            for i in range(5):
                queue.add(f"bulk-{i}")
            queue.add("once-mine")
            gate.set()
            await settle(queue)
        finally:
            await queue.stop()
        return [k for k, _ in handler.runs]

    def test_the_fast_lane_ends_after_expedite_seconds(self) -> None:
        async def expire(queue: WorkQueue[str]) -> None:
            await asyncio.sleep(0.1)

        runs = asyncio.run(self._after(expire))
        assert runs == ["blocker", *(f"bulk-{i}" for i in range(5)), "once-mine"]

    def test_within_expedite_seconds_it_stays_in_the_fast_lane(self) -> None:
        async def nothing(queue: WorkQueue[str]) -> None:
            queue.expedite_seconds = 60  # the window of expedite("once-mine") is 0.05 s
            queue.expedite("once-mine")
            await settle(queue)

        runs = asyncio.run(self._after(nothing))
        assert runs == ["blocker", "once-mine", *(f"bulk-{i}" for i in range(5))]

    def test_forget_ends_the_fast_lane(self) -> None:
        async def forget(queue: WorkQueue[str]) -> None:
            queue.expedite_seconds = 60
            queue.expedite("once-mine")
            await settle(queue)
            queue.forget("once-mine")

        runs = asyncio.run(self._after(forget))
        assert runs == ["blocker", *(f"bulk-{i}" for i in range(5)), "once-mine"]

    def test_a_users_change_runs_while_every_worker_is_busy_with_bulk_work(self) -> None:
        async def scenario() -> list[str]:
            handler = recorder()
            queue = WorkQueue(handler, workers=2)
            gates = [handler.gate.setdefault(f"slow-{i}", asyncio.Event()) for i in range(2)]
            queue.start()
            try:
                for i in range(2):
                    queue.add(f"slow-{i}")
                for i in range(10):
                    queue.add(f"bulk-{i}")
                await until(lambda: len(handler.running) == 2)  # both workers held
                queue.expedite("stop-me")
                await until(lambda: "stop-me" in [k for k, _ in handler.runs])
                ran = [k for k, _ in handler.runs]
                for gate in gates:
                    gate.set()
                await settle(queue)
            finally:
                await queue.stop()
            assert sorted(k for k, _ in handler.runs if k.startswith("bulk")) == sorted(
                f"bulk-{i}" for i in range(10)
            )  # the bulk all ran, once each, after
            return ran

        assert asyncio.run(scenario()) == ["slow-0", "slow-1", "stop-me"]

    def test_bulk_work_never_takes_the_fast_worker(self) -> None:
        async def scenario() -> int:
            handler = recorder()
            queue = WorkQueue(handler, workers=1)
            gate = handler.gate.setdefault("slow", asyncio.Event())
            queue.start()
            try:
                queue.add("slow")
                queue.add("bulk")
                await until(lambda: "slow" in handler.running)
                await asyncio.sleep(0.05)
                waiting = len(handler.runs)  # bulk waits for the one general worker
                gate.set()
                await settle(queue)
            finally:
                await queue.stop()
            return waiting

        assert asyncio.run(scenario()) == 1


class TestUsersLane:
    """A user's change is taken before the passes that earlier changes set off (the fast lane
    of the Connectors just acted on), not only before the bulk."""

    @staticmethod
    async def _order(
        acted: list[str],
        held: str,
        meanwhile: Callable[[WorkQueue[str]], None],
        release: Callable[[Recorder], None] = lambda _: None,
    ) -> list[str]:
        """One worker and no fast one: `acted` are expedited and run, then `held` runs behind
        a gate while `meanwhile` queues work; the order of what ran from `held` on."""
        handler = recorder()
        queue = WorkQueue(handler, workers=1, fast_workers=0)
        queue.start()
        try:
            for key in acted:
                queue.expedite(key)  # earlier changes: in the fast lane for 30 s
            await settle(queue)
            handler.runs.clear()
            gate = handler.gate[held] = asyncio.Event()
            queue.add(held)
            await until(lambda: held in handler.running)
            meanwhile(queue)
            release(handler)
            gate.set()
            await settle(queue)
        finally:
            await queue.stop()
        return [k for k, _ in handler.runs]

    def test_a_users_change_runs_before_the_fast_lane_queued_ahead_of_it(self) -> None:
        acted = [f"acted-{i}" for i in range(3)]

        def meanwhile(queue: WorkQueue[str]) -> None:
            for key in acted:
                queue.add(key)  # the events their transitions cause
            queue.add("bulk")
            queue.expedite("new-change")

        runs = asyncio.run(self._order(acted, "blocker", meanwhile))
        assert runs == ["blocker", "new-change", *acted, "bulk"]

    def test_a_change_made_during_its_own_pass_runs_next(self) -> None:
        def meanwhile(queue: WorkQueue[str]) -> None:
            queue.add("other")  # fast lane
            queue.expedite("mine")  # the user acts while its pass runs

        def ungate(handler: Recorder) -> None:
            handler.gate.pop("mine")  # its next pass runs through

        runs = asyncio.run(self._order(["other"], "mine", meanwhile, ungate))
        assert runs == ["mine", "mine", "other"]

    def test_a_users_change_runs_while_every_other_worker_is_busy(self) -> None:
        async def scenario() -> list[str]:
            handler = recorder()
            queue = WorkQueue(handler, workers=1, fast_workers=1, user_workers=1)
            acted = ["acted-0", "acted-1"]
            for key in acted:
                queue.expedite(key)  # earlier changes: in the fast lane for 30 s
            queue.start()
            try:
                await settle(queue)
                handler.runs.clear()
                gates = [handler.gate.setdefault(k, asyncio.Event()) for k in ("bulk", *acted)]
                queue.add("bulk")  # only the general worker may take it
                await until(lambda: "bulk" in handler.running)
                for key in acted:
                    queue.add(key)  # the fast lane: one for the fast worker, one waiting
                await until(lambda: "acted-0" in handler.running)
                queue.expedite("stop-me")  # only the user's worker is left
                await until(lambda: "stop-me" in [k for k, _ in handler.runs])
                queue.add("more-bulk")
                await asyncio.sleep(0.05)
                ran = [k for k, _ in handler.runs]  # the user's worker took no other work
                for gate in gates:
                    gate.set()
                await settle(queue)
            finally:
                await queue.stop()
            return ran

        assert asyncio.run(scenario()) == ["bulk", "acted-0", "stop-me"]

    def test_a_key_moved_ahead_still_runs_once(self) -> None:
        async def scenario() -> list[str]:
            handler = recorder()
            queue = WorkQueue(handler, workers=1)
            queue.expedite("k")  # the fast lane for 30 s
            queue.add("b")
            queue.add("k")  # already queued
            queue.expedite("k")  # moved to the first lane: one entry taken, two stale
            queue.start()
            try:
                await settle(queue)
            finally:
                await queue.stop()
            return [k for k, _ in handler.runs]

        assert asyncio.run(scenario()) == ["k", "b"]
