"""A Connector's children made to match what the operator wants: created, updated, and
restored after a change made by someone else (drift), writing only what differs (I/O through
kube; it reads the cache)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from connector_operator import drift, failpoints, resources
from connector_operator.cache import Cache
from connector_operator.informer import Key, controller_uid
from connector_operator.kube import ApiError, Kube, path_of
from connector_operator.models import Connector
from connector_operator.workqueue import Retry

log = logging.getLogger(__name__)


class ChildConflictError(Exception):
    """An object of a child's name exists and belongs to someone else."""


class Children:
    """Writes a Connector's children when they differ from the cache."""

    def __init__(self, kube: Kube, cache: Cache) -> None:
        self.kube, self.cache = kube, cache
        # Paths the API server rewrites in what the operator applies, per child and stamp.
        self._tolerated: dict[Key, dict[tuple[str, str], tuple[str | None, frozenset[str]]]] = {}
        # The children this process has seen or written, per Connector: one of them missing
        # later was deleted by someone (a child not made yet, such as a data plane waiting for
        # its control plane, or one new after an upgrade, is not reported as recreated).
        self._seen: dict[Key, set[tuple[str, str]]] = {}

    def forget(self, key: Key) -> None:
        self._tolerated.pop(key, None)
        self._seen.pop(key, None)

    async def held(
        self, body: Mapping[str, Any], kind: str, api_version: str, name: str
    ) -> dict[str, Any] | None:
        """The Connector's child of this kind and name: from the cache or, when the cache has
        none (a child made a moment ago, a cold cache), from the API server."""
        found = self.cache.child(self.cache.store_for(kind), body, name)
        if found is not None:
            return found
        meta = {"name": name, "namespace": body["metadata"]["namespace"]}
        return await self._unlisted(
            {"apiVersion": api_version, "kind": kind, "metadata": meta}, body
        )

    async def converge(
        self,
        key: Key,
        body: Mapping[str, Any],
        connector: Connector,
        wanted: list[dict[str, Any]],
    ) -> list[tuple[str, str]]:
        """Writes only what differs from the server: a converged Connector costs no write.
        Returns (kind, message) for each child restored after a change made by someone else."""
        tolerated = self._tolerated.setdefault(key, {})
        seen = self._seen.setdefault(key, set())
        repairs: list[tuple[str, str]] = []
        for desired in wanted:
            kind, name = desired["kind"], desired["metadata"]["name"]
            store = self.cache.store_for(kind)
            actual = self.cache.child(store, body, name)
            if actual is None:
                actual = await self._unlisted(desired, body)
            stamp = resources.stamp_of(desired)
            held = tolerated.get((kind, name))
            allowed = held[1] if held and held[0] == stamp else frozenset()
            why, drifted = drift.judge(desired, actual, allowed)
            deleted = actual is None and (kind, name) in seen
            seen.add((kind, name))
            if why is None:
                continue
            current = self.cache.connectors.get(key)
            if current is None or current["metadata"].get("uid") != body["metadata"].get("uid"):
                # Deleted (and perhaps made anew) while this pass awaited the API server: a
                # child written now would belong to a Connector that no longer exists.
                raise Retry(f"{key[0]}/{key[1]} changed identity during the pass", delay=0.2)
            applied, rewritten = await self._write_child(desired, actual, why)
            failpoints.reach(f"after-apply:{kind}")
            self.cache.remember(store, applied)
            tolerated[(kind, name)] = (stamp, frozenset(rewritten))
            if why is drift.Why.REPAIR:
                fields = ", ".join(drifted[:5]) + (" ..." if len(drifted) > 5 else "")
                repairs.append(
                    (kind, f"Restored {kind} {name}: {fields} changed outside the operator.")
                )
            elif why is drift.Why.CREATE and deleted:
                repairs.append((kind, f"Recreated {kind} {name}, deleted outside the operator."))
        return repairs

    async def _unlisted(
        self, desired: Mapping[str, Any], connector: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """What holds a child's name when the cache has no child there (one GET): nothing,
        the Connector's own child without the operator's label (to be repaired), or an object
        of someone else's, which the operator does not take over."""
        found = await self.kube.get(path_of(desired))
        if found is None or controller_uid(found) == connector["metadata"].get("uid"):
            return found
        kind, name = desired["kind"], desired["metadata"]["name"]
        if _predecessor(found, connector):
            # A Connector of this name was deleted and made anew. The garbage collector removes
            # the old one's children, but only if it saw the deletion: after API server
            # restarts it may never act. A child being deleted is waited for; one left standing
            # is taken over by the new Connector (the apply replaces the ownerReference the
            # operator itself set), as if made now.
            if found.get("metadata", {}).get("deletionTimestamp"):
                raise Retry(f"{kind} {name} is being deleted with a deleted Connector", delay=1)
            log.info(
                "%s %s was left by a deleted Connector of this name: taking it over", kind, name
            )
            return None
        raise ChildConflictError(
            f"{kind} {name!r} exists and is not owned by this Connector (owner: "
            f"{_owner_name(found)}); rename or delete it, the Connector proceeds once the name "
            "is free."
        )

    async def _write_child(
        self, desired: dict[str, Any], actual: Mapping[str, Any] | None, why: drift.Why
    ) -> tuple[dict[str, Any], list[str]]:
        """Server-side apply, then a merge patch for what apply could not make. Returns the
        object written and the paths where it still departs from `desired` (what the API
        server rewrites, such as a normalized quantity).

        Apply keeps what another manager owns: a port or a Secret key added by hand, or a
        Service port whose number was changed by hand (to apply, someone else's port beside
        the operator's; the two then clash by name). A merge patch replaces lists whole and
        removes the keys it sets to null.
        """
        applied: Mapping[str, Any] | None = None
        try:
            applied = await self.kube.apply(desired)
        except ApiError as error:
            if why is not drift.Why.REPAIR or error.status != 422:
                raise
            log.info("apply could not repair %s: %s", desired["metadata"]["name"], error)
        if applied is not None and not (rewritten := drift.differences(desired, applied)):
            return dict(applied), rewritten
        patched = await self.kube.merge_patch(drift.repair_patch(desired, applied or actual or {}))
        return patched, drift.differences(desired, patched)


def _predecessor(child: Mapping[str, Any], connector: Mapping[str, Any]) -> bool:
    """Whether `child` belongs to an earlier Connector of the same name."""
    refs = child.get("metadata", {}).get("ownerReferences") or []
    owner = next((r for r in refs if r.get("controller")), None)
    return (
        owner is not None
        and owner.get("kind") == "Connector"
        and owner.get("name") == connector["metadata"]["name"]
    )


def _owner_name(obj: Mapping[str, Any]) -> str:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    owner = next((r for r in refs if r.get("controller")), None)
    return f"{owner.get('kind')} {owner.get('name')}" if owner else "none"
