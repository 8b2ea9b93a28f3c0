"""A keyed work queue for reconciles (asyncio only): a key is never processed twice at once,
a key added while queued is queued once, and failures retry with capped exponential backoff,
so one Connector that cannot be reconciled never blocks the others.

Three lanes, taken in order: a key `expedite`d (a user's own change: an action, an edit) goes
to the first; it then stays in the fast lane for `expedite_seconds`, long enough for the events
its transition causes (its pods going, its ReplicaSet scaling) to be handled as promptly; the
rest (new Connectors, resyncs, children's events) is bulk. A user's stop thus never waits
behind a thousand Connectors being created, nor behind the passes that other users' earlier
changes set off. Nor behind the passes already running: `fast_workers` more workers take only
from the first two lanes, and `user_workers` more only from the first, so one is free for a
user's change even while every other is busy (with bulk work, or with the passes that follow
other users' changes, waiting on a busy API server, say)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from connector_operator import metrics

K = TypeVar("K", bound=Hashable)
log = logging.getLogger(__name__)
USER, FAST, BULK = 0, 1, 2  # the lanes, in the order they are taken from
LANES = (USER, FAST, BULK)


class Retry(Exception):  # noqa: N818 -- a signal to the queue, not an error condition
    """Reconcile again after `delay` seconds (None: the queue's backoff decides)."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass
class WorkQueue(Generic[K]):
    handler: Callable[[K], Awaitable[None]]
    workers: int = 4
    base_delay: float = 0.5
    max_delay: float = 60.0
    expedite_seconds: float = 30.0
    fast_workers: int = 1
    user_workers: int = 0
    # Per lane, a token for each key that entered it or a lane before it: a worker that takes
    # from the lanes up to that one waits on its tokens, and once woken takes the next key it
    # may, or none when a worker of a nearer reach took it first. So no worker ever has fewer
    # tokens than the keys it may take. The lanes hold keys in order, with stale entries (a
    # key taken from another lane, or moved ahead after it was queued) skipped when reached.
    _tokens: tuple[asyncio.Semaphore, ...] = field(
        default_factory=lambda: tuple(asyncio.Semaphore(0) for _ in LANES)
    )
    _lanes: tuple[deque[K], ...] = field(default_factory=lambda: tuple(deque() for _ in LANES))
    _queued: dict[K, int] = field(default_factory=dict)  # key -> its lane (USER, FAST, BULK)
    _expedited: dict[K, float] = field(default_factory=dict)  # key -> until (loop time)
    _active: set[K] = field(default_factory=set)
    _dirty: dict[K, int] = field(default_factory=dict)  # key -> the lane it comes back to
    _failures: dict[K, int] = field(default_factory=dict)
    _timers: dict[K, asyncio.TimerHandle] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    passes: int = 0  # reconcile passes ended, of any outcome

    def start(self) -> None:
        reaches = ((BULK, "reconcile", self.workers), (FAST, "fast", self.fast_workers),
                   (USER, "user", self.user_workers))  # fmt: skip
        self._tasks = [
            asyncio.create_task(self._work(reach), name=f"{name}-{i}")
            for reach, name, count in reaches
            for i in range(count)
        ]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def expedite(self, key: K) -> None:
        """Adds `key` to the first lane; it stays in the fast lane for `expedite_seconds`."""
        now = asyncio.get_running_loop().time()
        self._expedited[key] = now + self.expedite_seconds
        self._add(key, USER)

    def add(self, key: K) -> None:
        self._add(key, FAST if self._fast_lane(key) else BULK)

    def _add(self, key: K, lane: int) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if key in self._active:
            # Queued again once the running pass ends, in the first lane asked for meanwhile.
            self._dirty[key] = min(lane, self._dirty.get(key, lane))
            return
        queued = self._queued.get(key, len(LANES))
        if lane < queued:
            self._queued[key] = lane
            self._lanes[lane].append(key)
            for reach in range(lane, min(queued, len(LANES))):
                self._tokens[reach].release()  # the workers of that reach may now take it
            metrics.QUEUE_DEPTH.set(len(self._queued))

    def _fast_lane(self, key: K) -> bool:
        until = self._expedited.get(key)
        if until is None:
            return False
        if until < asyncio.get_running_loop().time():
            del self._expedited[key]
            return False
        return True

    def _take(self, reach: int) -> K | None:
        """The next key, lane by lane up to `reach`; None when the token was one whose key
        another worker took."""
        for lane in LANES[: reach + 1]:
            entries = self._lanes[lane]
            while entries:
                key = entries.popleft()
                if self._queued.get(key) == lane:
                    del self._queued[key]
                    return key
        return None

    def add_after(self, key: K, delay: float) -> None:
        if key in self._timers:
            return
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)
        self._expedited.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def check_workers(self) -> None:
        """Raises when a worker died: the queue would silently stop reconciling."""
        dead = [t.get_name() for t in self._tasks if t.done()]
        if dead:
            raise RuntimeError(f"reconcile workers stopped: {', '.join(dead)}")

    def idle(self) -> bool:
        return not self._queued and not self._active

    async def _work(self, reach: int) -> None:
        while True:
            await self._tokens[reach].acquire()
            key = self._take(reach)
            if key is None:
                continue
            metrics.QUEUE_DEPTH.set(len(self._queued))
            self._active.add(key)
            try:
                await self._run(key)
            finally:
                self.passes += 1
                self._active.discard(key)
                if (lane := self._dirty.pop(key, None)) is not None:
                    self._add(key, lane)

    async def _run(self, key: K) -> None:
        try:
            with metrics.RECONCILE_SECONDS.time():
                await self.handler(key)
        except asyncio.CancelledError:
            raise
        except Retry as retry:
            metrics.RECONCILE_RESULTS["retry"].inc()
            delay = retry.delay if retry.delay is not None else self._backoff(key)
            log.info("reconcile of %s retries in %.1fs: %s", key, delay, retry)
            self.add_after(key, delay)
        except Exception:
            metrics.RECONCILE_RESULTS["error"].inc()
            delay = self._backoff(key)
            log.exception("reconcile of %s failed; retrying in %.1fs", key, delay)
            self.add_after(key, delay)
        else:
            metrics.RECONCILE_RESULTS["ok"].inc()
            self._failures.pop(key, None)

    def _backoff(self, key: K) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return float(min(self.base_delay * 2**failures, self.max_delay))
