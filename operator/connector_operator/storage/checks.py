"""The storage checks of the leading controller (I/O: the storage services, through client
libraries imported on the first check that needs them).

The reconcile path asks `observe` for the verdict on a Connector's current target; it never
waits for a check. A check runs in its own task, at most one per Connector and at most
`concurrency` overall, each call with a short timeout and no retry. A Connector is enqueued
again when its verdict changes, and its storage is checked again every interval (jittered)
for as long as the Connector exists; a changed target (an edit, a rotated key) is checked at
once, after a check still in flight ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from connector_operator import memory, metrics
from connector_operator.informer import Key
from connector_operator.storage.settings import Mode, StorageCheckSettings
from connector_operator.storage.target import S3Target, Target, endpoint_shown, fingerprint
from connector_operator.storage.verdict import Transport, Verdict, check_failed, from_transport

if TYPE_CHECKING:  # imported for real only by the first S3 check
    from connector_operator.storage.s3_clients import S3Clients

log = logging.getLogger(__name__)
# A check makes at most five calls (list, read, locate; write, delete), each bounded by the
# timeout; this bounds a storage that answers, but slowly, byte by byte.
CALLS_PER_CHECK = 5
# When no check is in flight, the heap the clients left is handed back, at most this often.
RELEASE_EVERY_SECONDS = 30.0


class StorageChecks:
    def __init__(
        self,
        settings: StorageCheckSettings,
        notify: Callable[[Key], None],
        rng: random.Random,
    ) -> None:
        self.settings, self.notify, self.rng = settings, notify, rng
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._targets: dict[Key, tuple[str, Target]] = {}  # what to check: fingerprint, target
        self._verdicts: dict[Key, tuple[str, Verdict]] = {}  # what was found, for which
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._s3: S3Clients | None = None  # the shared S3 clients, made by the first S3 check
        self._in_flight = 0
        self._released_at = 0.0

    @property
    def mode(self) -> Mode:
        return self.settings.mode

    def observe(self, key: Key, target: Target) -> Verdict | None:
        """The verdict on `target`, or None while it has none (a check is then on its way)."""
        print_ = fingerprint(target)
        self._targets[key] = (print_, target)
        found = self._verdicts.get(key)
        if found is not None and found[0] == print_:
            return found[1]
        if key not in self._tasks:
            self._start(key)
        return None

    def forget(self, key: Key) -> None:
        """The Connector is gone: its checks end."""
        self._targets.pop(key, None)
        self._verdicts.pop(key, None)
        if (timer := self._timers.pop(key, None)) is not None:
            timer.cancel()
        if (task := self._tasks.pop(key, None)) is not None:
            task.cancel()

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._timers.clear()
        self._tasks.clear()
        if self._s3 is not None:
            await self._s3.close()

    def _start(self, key: Key) -> None:
        if (timer := self._timers.pop(key, None)) is not None:
            timer.cancel()
        self._tasks[key] = asyncio.create_task(self._check(key), name=f"storage-check-{key}")

    def _due(self, key: Key) -> None:
        self._timers.pop(key, None)
        if key in self._targets and key not in self._tasks:
            self._start(key)

    async def _check(self, key: Key) -> None:
        try:
            while (wanted := self._targets.get(key)) is not None:
                verdict = await self._run(key, wanted[1])
                if self._targets.get(key, ("",))[0] == wanted[0]:
                    self._found(key, wanted[0], verdict)
                    return
                # The target changed while it was checked: that verdict is of no use.
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]

    def _found(self, key: Key, print_: str, verdict: Verdict) -> None:
        before = self._verdicts.get(key)
        self._verdicts[key] = (print_, verdict)
        if before != (print_, verdict):
            if before is None or before[1] != verdict:
                log.info("storage of %s/%s: %s", key[0], key[1], verdict.reason.value)
            self.notify(key)
        delay = self.settings.interval_seconds * self.rng.uniform(0.8, 1.2)
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._due, key)

    async def _run(self, key: Key, target: Target) -> Verdict:
        kind = "AmazonS3" if isinstance(target, S3Target) else "AzureStorage"
        async with self._slots:
            self._in_flight += 1
            metrics.STORAGE_CHECKS_IN_FLIGHT.inc()
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.settings.timeout_seconds * CALLS_PER_CHECK):
                    verdict = await self._call(target)
            except TimeoutError:
                verdict = from_transport(endpoint_shown(target), Transport.UNREACHABLE)
            except Exception as error:  # a check must never take the operator down
                # Only the type: an error's text can quote what was sent.
                log.warning("a storage check broke: %s", type(error).__name__)
                verdict = check_failed(type(error).__name__)
            finally:
                self._in_flight -= 1
                metrics.STORAGE_CHECKS_IN_FLIGHT.dec()
            finished = time.monotonic()
            metrics.STORAGE_CHECK_SECONDS.labels(storage_type=kind).observe(finished - started)
        if self._in_flight == 0 and finished - self._released_at > RELEASE_EVERY_SECONDS:
            # Each check makes and drops clients (tens of MiB over a burst of checks); the
            # allocator would keep that peak for good.
            self._released_at = finished
            memory.release()
        metrics.STORAGE_CHECKS.labels(storage_type=kind, result=verdict.reason.value).inc()
        log.debug("storage check of %s/%s: %s", key[0], key[1], verdict.reason.value)
        return verdict

    async def _call(self, target: Target) -> Verdict:
        write, timeout = self.settings.write, float(self.settings.timeout_seconds)
        if isinstance(target, S3Target):
            # Imported here: the client libraries cost tens of MiB that an installation
            # without S3 (or with checks off) never pays.
            from connector_operator.storage.s3 import check_s3  # noqa: PLC0415
            from connector_operator.storage.s3_clients import S3Clients  # noqa: PLC0415

            if self._s3 is None:
                self._s3 = S3Clients(timeout)
            return await check_s3(self._s3, target, write=write)
        from connector_operator.storage.azure import check_azure  # noqa: PLC0415

        return await check_azure(target, write=write, timeout=timeout)
