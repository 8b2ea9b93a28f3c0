"""Leader election over a coordination.k8s.io/v1 Lease (I/O through kube only): only the holder
reconciles; the others wait and take over once the holder stops renewing.

One writer, provably: a standby takes the Lease only after it has seen the holder's record
unchanged for a whole lease duration (judged by its own clock). The holder stops counting
itself leader `renew_deadline` seconds after the start of its last successful renewal, which is
shorter than the lease duration; `leading()` is the fence every write of the operator asks
first. Any failure to renew counts (an error, a refusal, a call that hangs: each attempt has a
deadline), and a holder that is paused (SIGSTOP, a frozen VM) finds its fence closed when it
wakes, since the monotonic clock kept running.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connector_operator.kube import ConflictError, Kube, NotFoundError

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
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    clock: Callable[[], float] = time.monotonic
    # What the current holder last wrote, and when we saw it change: expiry is judged by our
    # own clock since that observation, never by comparing the two machines' clocks.
    _seen: tuple[str, str] | None = None
    _seen_at: float = 0.0
    _renewed_at: float | None = None  # when the last successful renewal was *sent*

    @property
    def path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"

    def leading(self) -> bool:
        """Whether this replica may still write: it renewed within the renew deadline."""
        return (
            self._renewed_at is not None and self.clock() - self._renewed_at < self.renew_deadline
        )

    def _spec(self, transitions: int, acquired: str | None = None) -> dict[str, Any]:
        now = _now()
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": round(self.duration),
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
                await self.kube.create(self.path.rsplit("/", 1)[0], body, "Lease", fenced=False)
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
        if mine and not self.leading() and self._renewed_at is not None:
            return False  # our own record, but our deadline passed: we may have been replaced
        transitions = int(spec.get("leaseTransitions", 0)) + (0 if mine else 1)
        lease["spec"] = self._spec(transitions, spec.get("acquireTime") if mine else None)
        try:
            await self.kube.replace(self.path, lease, "Lease", fenced=False)
        except (ConflictError, NotFoundError):
            return False
        return True

    async def _attempt(self, deadline: float) -> bool:
        """One try_acquire within `deadline` seconds; every failure is a failed attempt."""
        started = self.clock()
        try:
            won = await asyncio.wait_for(self.try_acquire(), timeout=max(deadline, 0.1))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("leader election: %s", error or type(error).__name__)
            return False
        if won:
            self._renewed_at = started
        return won

    async def acquire(self) -> None:
        log.info("waiting to lead (Lease %s/%s) as %s", self.namespace, self.name, self.identity)
        while not await self._attempt(self.renew_deadline):
            await asyncio.sleep(self.retry_period)
        log.info("leading as %s", self.identity)

    async def hold(self, lost: asyncio.Event) -> None:
        """Renews every retry period; sets `lost` once the renew deadline has passed."""
        while not lost.is_set():
            await asyncio.sleep(self.retry_period)
            if self.leading():
                assert self._renewed_at is not None
                left = self.renew_deadline - (self.clock() - self._renewed_at)
                if await self._attempt(left):
                    continue
            if not self.leading():
                log.error(
                    "lost the lead (Lease %s/%s): not renewed within %.0fs",
                    self.namespace, self.name, self.renew_deadline,
                )  # fmt: skip
                lost.set()
