"""The controller of the leading replica: its cache, work queue, reconciler and periodic resync,
started once the Lease is won and stopped with the process (I/O through kube and the cache)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from connector_operator import memory, metrics
from connector_operator.cache import Cache
from connector_operator.config import OperatorConfig
from connector_operator.informer import Key
from connector_operator.kube import Kube
from connector_operator.profiles import Profile
from connector_operator.reconcile import Reconciler
from connector_operator.storage.checks import StorageChecks
from connector_operator.storage.settings import Mode
from connector_operator.vault import Folders, VaultError
from connector_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)
# A leader whose caches cannot be filled (a LIST that is refused, a missing CRD) exits after
# this long, so that it neither holds the Lease for nothing nor looks healthy.
PRIME_TIMEOUT = 120.0
RELEASE_PERIOD = 10.0  # seconds between looks at whether the queue has drained


class Controller:
    def __init__(
        self,
        kube: Kube,
        cfg: OperatorConfig,
        profile: Profile,
        folders: Folders | None,
        rng: random.Random,
    ) -> None:
        self.kube, self.cfg, self.rng, self.folders = kube, cfg, rng, folders
        # As many workers again for users' own changes and the passes that follow them as for
        # the bulk: a pass acknowledging an action makes three writes in a row, and at a few
        # actions a second under load one worker for them was not enough. Two more take only
        # users' new changes, so that one does not wait for a pass of either kind to end
        # (unless two others are being handled at that moment).
        self.queue: WorkQueue[Key] = WorkQueue(
            self._reconcile, workers=cfg.workers, fast_workers=cfg.workers, user_workers=2
        )
        ingresses = cfg.edc is not None and cfg.edc.ingress_class is not None
        self.cache = Cache(
            kube,
            cfg.namespaces,
            enqueue=self.queue.add,
            forget=self._forget,
            ingresses=ingresses,
            expedite=self.queue.expedite,
        )
        self.storage = (
            None
            if cfg.storage_check.mode is Mode.OFF
            else StorageChecks(cfg.storage_check, self.queue.add, rng)
        )
        self.reconciler = Reconciler(
            kube, self.cache, profile, folders=folders, storage=self.storage
        )
        self.running = False
        self._resync: asyncio.Task[None] | None = None
        self._release: asyncio.Task[None] | None = None
        metrics.count_phases_with(self.cache.phases)

    async def _reconcile(self, key: Key) -> None:
        await self.reconciler.reconcile(key)

    def _forget(self, key: Key) -> None:
        self.queue.forget(key)
        self.reconciler.forget(key)
        # One more pass, without the Connector: it empties its vault folder and ends what a
        # pass still running may have begun again (its storage checks).
        self.queue.add(key)

    async def start(self) -> None:
        """Primes the cache (every informer listed), then reconciles: a restart therefore
        neither rewrites converged objects nor reports a Secret missing that exists."""
        try:
            await asyncio.wait_for(self.cache.start(), PRIME_TIMEOUT)
        except TimeoutError:
            waiting = [i.path for i in self.cache.informers if not i.synced.is_set()]
            raise RuntimeError(
                f"the caches were not filled within {PRIME_TIMEOUT:.0f}s (still listing "
                f"{', '.join(waiting)}; see the warnings above): giving up the lead"
            ) from None
        memory.settle()  # once: what the start and the lists brought in, later passes skip
        self.queue.start()
        self._resync = asyncio.create_task(self._resync_forever(), name="resync")
        self._release = asyncio.create_task(self._release_memory(), name="release memory")
        if self.folders is not None:
            await self._sweep_vault(self.folders)
        self.running = True
        log.info("reconciling %d Connectors", len(self.cache.connectors))

    async def stop(self) -> None:
        self.running = False
        for task in (self._resync, self._release):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.queue.stop()
        if self.storage is not None:
            await self.storage.stop()
        await self.cache.stop()
        if self.folders is not None:
            await self.folders.vault.close()

    async def _sweep_vault(self, folders: Folders) -> None:
        """Folders of Connectors deleted while no leader ran are emptied by a pass each."""
        try:
            present = await folders.present(self.cfg.namespaces)
        except VaultError as error:
            log.warning("listing the vault folders: %s; they are swept at the next start", error)
            return
        for key in present:
            if self.cache.connectors.get(key) is None:
                self.queue.add(key)

    async def _resync_forever(self) -> None:
        """Every resync period (jittered by up to a tenth either way, so replicas and restarts
        do not align) each Connector is reconciled again: what a watch missed is caught, and a
        converged Connector costs no write."""
        while True:
            period = self.cfg.resync_seconds * self.rng.uniform(0.9, 1.1)
            await asyncio.sleep(period)
            keys = self.cache.connectors.keys()
            log.debug("resync of %d Connectors", len(keys))
            for key in keys:
                self.queue.add(key)

    async def _release_memory(self) -> None:
        """Once the queue has drained after a busy spell, the memory freed meanwhile goes back
        to the system: a burst parses thousands of watch events, whose pages the allocator
        would otherwise keep for the rest of the process's life."""
        released_at = 0
        while True:
            await asyncio.sleep(RELEASE_PERIOD)
            if self.queue.idle() and self.queue.passes != released_at:
                released_at = self.queue.passes
                memory.release()

    async def check(self, grace: float) -> dict[str, int]:
        """The liveness check of a leader: workers alive, and the watch not behind the server
        (one metadata LIST of the Connectors, paginated)."""
        self.queue.check_workers()
        server = []
        for path in self.cache.connector_collections():
            server.extend(await self.kube.list_metadata(path))
        return self.cache.check_freshness(server, grace)
