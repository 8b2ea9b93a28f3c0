"""A keyed work queue for reconciles (asyncio only): a key is never processed twice at once,
a key added while queued is queued once, and failures retry with capped exponential backoff,
so one Connector that cannot be reconciled never blocks the others."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from connector_operator import metrics

K = TypeVar("K", bound=Hashable)
log = logging.getLogger(__name__)


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
    _queue: asyncio.Queue[K] = field(default_factory=asyncio.Queue)
    _queued: set[K] = field(default_factory=set)
    _active: set[K] = field(default_factory=set)
    _dirty: set[K] = field(default_factory=set)
    _failures: dict[K, int] = field(default_factory=dict)
    _timers: dict[K, asyncio.TimerHandle] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"reconcile-{i}") for i in range(self.workers)
        ]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def add(self, key: K) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if key in self._active:
            self._dirty.add(key)  # picked up again once the running pass ends
            return
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)
            metrics.QUEUE_DEPTH.set(len(self._queued))

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

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            metrics.QUEUE_DEPTH.set(len(self._queued))
            self._active.add(key)
            try:
                await self._run(key)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)

    async def _run(self, key: K) -> None:
        try:
            with metrics.RECONCILE_SECONDS.time():
                await self.handler(key)
        except asyncio.CancelledError:
            raise
        except Retry as retry:
            metrics.RECONCILES.labels(result="retry").inc()
            delay = retry.delay if retry.delay is not None else self._backoff(key)
            log.info("reconcile of %s retries in %.1fs: %s", key, delay, retry)
            self.add_after(key, delay)
        except Exception:
            metrics.RECONCILES.labels(result="error").inc()
            delay = self._backoff(key)
            log.exception("reconcile of %s failed; retrying in %.1fs", key, delay)
            self.add_after(key, delay)
        else:
            metrics.RECONCILES.labels(result="ok").inc()
            self._failures.pop(key, None)

    def _backoff(self, key: K) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return float(min(self.base_delay * 2**failures, self.max_delay))
