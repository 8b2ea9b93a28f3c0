"""Leader election over a coordination.k8s.io/v1 Lease (I/O through kube only): only the holder
reconciles; the others wait and take over once the holder stops renewing."""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connector_operator.kube import ConflictError, Kube, NotFoundError, TransientError

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaderElector:
    kube: Kube
    name: str
    namespace: str
    identity: str
    duration: float = 15.0
    clock: Callable[[], float] = time.monotonic
    # What the current holder last wrote, and when we saw it change: expiry is judged by our
    # own clock since that observation, never by comparing the two machines' clocks.
    _seen: tuple[str, str] | None = None
    _seen_at: float = 0.0

    @property
    def path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"

    def _spec(self, transitions: int, acquired: str | None = None) -> dict[str, Any]:
        now = _now()
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.duration),
            "acquireTime": acquired or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def try_acquire(self) -> bool:
        """One attempt to become or stay the leader."""
        lease = await self.kube.get(self.path)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(0),
            }
            try:
                await self.kube.create(self.path.rsplit("/", 1)[0], body, "Lease")
            except ConflictError:
                return False
            return True
        spec = lease.get("spec", {})
        holder = spec.get("holderIdentity") or ""
        observed = (holder, str(spec.get("renewTime")))
        if observed != self._seen:
            self._seen, self._seen_at = observed, self.clock()
        mine = holder == self.identity
        expired = self.clock() - self._seen_at > float(spec.get("leaseDurationSeconds", 15))
        if not (mine or expired or not holder):
            return False
        transitions = int(spec.get("leaseTransitions", 0)) + (0 if mine else 1)
        lease["spec"] = self._spec(transitions, spec.get("acquireTime") if mine else None)
        try:
            await self.kube.replace(self.path, lease, "Lease")
        except (ConflictError, NotFoundError):
            return False
        return True

    async def acquire(self, retry: float = 2.0) -> None:
        log.info("waiting to lead (Lease %s/%s) as %s", self.namespace, self.name, self.identity)
        while True:
            try:
                if await self.try_acquire():
                    log.info("leading as %s", self.identity)
                    return
            except (TransientError, NotFoundError) as error:
                # NotFound: the Lease's namespace does not exist (yet); say so and keep trying.
                log.warning("leader election: %s", error)
            await asyncio.sleep(retry)

    async def hold(self, lost: asyncio.Event) -> None:
        """Renews every third of the duration; sets `lost` when it cannot renew in time."""
        last_renewal = self.clock()
        while not lost.is_set():
            await asyncio.sleep(self.duration / 3)
            try:
                if await self.try_acquire():
                    last_renewal = self.clock()
                    continue
            except TransientError as error:
                log.warning("leader election: renewal failed: %s", error)
            if self.clock() - last_renewal > self.duration * 2 / 3:
                log.error("lost the lead (Lease %s/%s)", self.namespace, self.name)
                lost.set()
