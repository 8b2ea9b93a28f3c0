"""The operator's view of the cluster: one informer per kind and namespace, and the lookups the
reconcile path needs, children found by ownership (I/O only through the informers' client; it
lists and watches, it never writes).

What is held scales with the Connectors, not with the cluster: children are selected by the
operator's label (and then proven by their controller ownerReference), and the namespace's other
Secrets are watched as metadata only, so a thousand unrelated Secrets cost a few hundred bytes
each. A referenced Secret's data is read on demand by the reconcile path. Pods are counted from
their Deployment's status; only where it does not count terminating pods (before Kubernetes
1.35) are ReplicaSets and pods watched, from the first such Deployment a pass reads, as
metadata only (the pods that have not ended only) and cut down to their ownership.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from connector_operator import failpoints, metrics, resources, states
from connector_operator.informer import (
    Informer,
    Key,
    Object,
    OnChange,
    Store,
    WatchClient,
    controller_uid,
    is_newer,
    key_of,
    without_managed_fields,
)
from connector_operator.models import ACTION_ANNOTATION, GROUP, PLURAL, VERSION, Action

log = logging.getLogger(__name__)
MANAGED = f"{resources.MANAGED_BY_LABEL}={resources.MANAGER}"
# The pods the watch delivers: those that have not ended. One that ends leaves the selection,
# which the watch reports as its deletion, so every pod held is a live one.
LIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"


# An informer's collection (API base, plural), store, handler and options.
Kind = tuple[str, str, Store, OnChange, dict[str, Any]]


class WatchStalledError(RuntimeError):
    """The watch stopped delivering changes that the API server has."""


# What a workload controller keeps on the objects it manages for itself: the Deployment
# controller's revision, set on a Deployment once it has made its first ReplicaSet (one update
# per Connector made). No decision or repair of the operator reads it.
BOOKKEEPING = frozenset({"deployment.kubernetes.io/revision"})


def ownership_only(obj: Object) -> Object:
    """What a ReplicaSet or a live pod tells the operator: whose it is (a Deployment's pods are
    found through its ReplicaSets)."""
    meta = obj.get("metadata", {})
    kept = ("name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences")
    return {"metadata": {k: meta[k] for k in kept if k in meta}}


def _version_only(secret: Object) -> Object:
    """What the operator keeps of a Secret it only watches: its name and version (its
    annotations may hold a copy of its data: kubectl's last-applied configuration)."""
    meta = secret.get("metadata", {})
    kept = ("name", "namespace", "resourceVersion")
    return {"metadata": {k: meta[k] for k in kept if k in meta}}


# Secrets the operator only watches are listed a few at a time: their metadata can hold a copy
# of their data (kubectl's last-applied annotation), up to 1 MiB each, and a page is parsed
# whole. Ten per page bound a LIST's peak to a few MiB over the operator's size, and so what
# the allocator may keep of it afterwards; 1,000 Secrets cost 100 requests, once per relist.
SECRET_PAGE = 10


def _collection(base: str, plural: str, namespace: str | None) -> str:
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


class Cache:
    """Stores of Connectors and of what they own, kept current by informers.

    `enqueue` is called with a Connector's key whenever something it depends on changes,
    `expedite` instead when a user changed the Connector itself (an action, an edit: see
    `users_change`); `forget` when a Connector is gone.
    """

    def __init__(
        self,
        client: WatchClient,
        namespaces: tuple[str, ...],
        enqueue: Callable[[Key], None],
        forget: Callable[[Key], None],
        *,
        ingresses: bool = False,
        expedite: Callable[[Key], None] | None = None,
    ) -> None:
        self.client = client
        self.namespaces = namespaces
        self._enqueue, self._forget = enqueue, forget
        self._expedite = expedite or enqueue
        self.connectors = Store()
        self.deployments = Store()
        self.services = Store()
        self.ingresses = Store()  # watched only when the profile makes Ingresses
        self._watch_ingresses = ingresses
        self.secrets = Store()  # the operator's own Secrets, data included
        self.secret_versions = Store(transform=_version_only)  # every Secret in scope
        self.replicasets = Store(transform=ownership_only)
        self.pods = Store(transform=ownership_only)  # the live ones only: see LIVE_PODS
        self._uids: dict[str, Key] = {}  # Connector uid -> key
        self._names: dict[str, set[Key]] = defaultdict(set)  # Connector name -> keys
        self._references: dict[Key, Key] = {}  # Connector -> the Secret it references
        self._referrers: dict[Key, set[Key]] = defaultdict(set)  # Secret -> Connectors
        self._behind: dict[Key, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.informers = self._informers()
        self._pods_watched: list[Informer] | None = None  # see `live_pods`

    def _informers(self) -> list[Informer]:
        core, apps = "/api/v1", "/apis/apps/v1"
        labelled: dict[str, Any] = {"label_selector": MANAGED}
        paused = {"paused": lambda: failpoints.armed("drop-connector-events")}
        kinds: list[Kind] = [
            (f"/apis/{GROUP}/{VERSION}", PLURAL, self.connectors, self._on_connector, paused),
            (apps, "deployments", self.deployments, self._on_child, labelled),
            (core, "services", self.services, self._on_child, labelled),
            (core, "secrets", self.secrets, self._on_child, labelled),
            (core, "secrets", self.secret_versions, self._on_secret,
             {"metadata_only": True, "page_size": SECRET_PAGE}),
        ]  # fmt: skip
        if self._watch_ingresses:
            networking = "/apis/networking.k8s.io/v1"
            kinds.append((networking, "ingresses", self.ingresses, self._on_child, labelled))
        return self._build_informers(kinds)

    def _pod_informers(self) -> list[Informer]:
        labelled: dict[str, Any] = {"label_selector": MANAGED, "metadata_only": True}
        return self._build_informers([
            ("/apis/apps/v1", "replicasets", self.replicasets, self._on_labelled, labelled),
            ("/api/v1", "pods", self.pods, self._on_labelled,
             {**labelled, "field_selector": LIVE_PODS}),
        ])  # fmt: skip

    def _build_informers(self, kinds: list[Kind]) -> list[Informer]:
        informers = [
            Informer(
                self.client,
                _collection(base, plural, namespace),
                on_change,
                store=store,
                on_relist=lambda path: metrics.WATCH_RELISTS.labels(path=path).inc(),
                on_contact=_contact,
                on_error=_error,
                namespace=namespace,
                **options,
            )
            for base, plural, store, on_change, options in kinds
            for namespace in (self.namespaces or (None,))
        ]
        for informer in informers:  # at 0 from the start: rate() then sees the first failure
            metrics.WATCH_RELISTS.labels(path=informer.path)
            metrics.WATCH_ERRORS.labels(path=informer.path, selector=informer.label_selector or "")
        return informers

    async def start(self) -> None:
        """Starts every informer and returns once each has listed (the caches are primed). A
        Deployment listed that does not count its terminating pods starts the pods' watch
        first (`live_pods`), so that no pass finds them not counted yet."""
        self._tasks = [self._run(i) for i in self.informers]
        await self._listed(self.informers)
        uncounted = next((d for d in self.deployments.values() if _uncounted(d)), None)
        if uncounted is not None:
            await self._listed(self._watch_pods(uncounted))

    async def _listed(self, informers: list[Informer]) -> None:
        """Returns once each of `informers` has listed; raises if one of them ended first."""
        waiting = {asyncio.create_task(i.synced.wait()) for i in informers}
        while waiting:
            done, _ = await asyncio.wait(
                [*waiting, *self._tasks], return_when=asyncio.FIRST_COMPLETED
            )
            for task in done & set(self._tasks):
                task.result()  # an informer that ended: raise why
                raise RuntimeError(f"{task.get_name()} ended before its first list")
            waiting -= done

    def _run(self, informer: Informer) -> asyncio.Task[None]:
        return asyncio.create_task(informer.run(), name=f"informer {informer.path}")

    def _watch_pods(self, deployment: Mapping[str, Any]) -> list[Informer]:
        """Starts watching ReplicaSets and pods, once (`deployment`: the first that does not
        count its terminating pods): on such a cluster they are how a stop is known to be
        finished. Once both have listed, every Connector asked to stop is woken."""
        if self._pods_watched is not None:
            return self._pods_watched
        meta = deployment.get("metadata", {})
        log.info(
            "Deployment %s/%s has no status.terminatingReplicas (Kubernetes before 1.35, or "
            "the DeploymentReplicaSetTerminatingReplicas feature off): watching ReplicaSets "
            "and pods to know when a stopped Connector's pods are gone",
            meta.get("namespace"), meta.get("name"),
        )  # fmt: skip
        informers = self._pods_watched = self._pod_informers()
        self.informers.extend(informers)
        self._tasks.extend(self._run(i) for i in informers)
        self._tasks.append(asyncio.create_task(self._wake_stopping(informers), name="pods listed"))
        return informers

    async def _wake_stopping(self, informers: list[Informer]) -> None:
        """Each pass that needed the pods before they were listed counted none: its Connector
        is woken again once they are (a Connector whose pods are all gone gets no event)."""
        await asyncio.gather(*(i.synced.wait() for i in informers))
        for connector in self.connectors.values():
            if asked_to_stop(connector):
                self._enqueue(key_of(connector))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- what changes mean ----------------------------------------------------------------------
    def _on_connector(self, old: Object | None, new: Object | None) -> None:
        key = key_of(new or old or {})
        if old is not None:
            self._uids.pop(str(old["metadata"].get("uid")), None)
        if (ref := self._references.pop(key, None)) is not None:
            self._referrers[ref].discard(key)
        if new is None:
            self._forget(key)
            namesakes = self._names.get(key[1], set())
            namesakes.discard(key)
            if not namesakes:
                self._names.pop(key[1], None)
            # A Connector of this name elsewhere may have waited for this one (NameTaken).
            for other in sorted(namesakes):
                self._enqueue(other)
            return
        self._names[key[1]].add(key)
        self._uids[str(new["metadata"].get("uid"))] = key
        ref_name = ((new.get("spec") or {}).get("storage_config") or {}).get(
            "credentials_secret_ref"
        )
        if isinstance(ref_name, Mapping) and isinstance(ref_name.get("name"), str):
            self._references[key] = (key[0], ref_name["name"])
            self._referrers[(key[0], ref_name["name"])].add(key)
        (self._expedite if users_change(old, new) else self._enqueue)(key)

    def _on_child(self, old: Object | None, new: Object | None) -> None:
        """A Deployment, Service or Secret: its controller, if a known Connector, reconciles.
        Not for a Deployment's status update that changes no decision (`deciding_facts`: its
        conditions' times, the counts on the way to a rollout): most of them."""
        if (
            old is not None
            and new is not None
            and same_but_status(old, new)
            and _deciding(old) == _deciding(new)
        ):
            return
        for obj in (old, new):
            owner = self._uids.get(controller_uid(obj) or "") if obj is not None else None
            if owner is not None:
                self._enqueue(owner)
                return

    def _on_labelled(self, old: Object | None, new: Object | None) -> None:
        """A ReplicaSet or pod: the label names the Connector to look at; whether the object
        counts is decided by ownership when the Connector is reconciled. Only a Connector asked
        to stop is woken: its pass alone counts pods (Stopped once none is left); the others'
        follow their Deployments. An update that leaves what is kept of it as it was (a pod's
        status, a ReplicaSet's: most of their updates) asks for nothing."""
        if old is not None and new is not None and same_but_version(old, new):
            return
        obj = new or old or {}
        instance = (obj.get("metadata", {}).get("labels") or {}).get(resources.INSTANCE_LABEL)
        key = (key_of(obj)[0], instance or "")
        connector = self.connectors.get(key) if instance else None
        if connector is not None and asked_to_stop(connector):
            self._enqueue(key)

    def _on_secret(self, old: Object | None, new: Object | None) -> None:
        for connector in sorted(self._referrers.get(key_of(new or old or {}), ())):
            self._enqueue(connector)

    # -- lookups for the reconcile path ---------------------------------------------------------
    def child(
        self, store: Store, connector: Mapping[str, Any], name: str | None = None
    ) -> Object | None:
        """The Connector's child in `store`: the object of the child name (`name`, else the
        generic profile's) whose controller is this Connector (an object of that name owned by
        another is not a child)."""
        meta = connector["metadata"]
        found = store.get((meta["namespace"], name or resources.child_name(meta["name"])))
        if found is None or controller_uid(found) != meta.get("uid"):
            return None
        return found

    def live_pods(self, deployment: Mapping[str, Any] | None) -> int | None:
        """Pods of the Deployment's ReplicaSets that have not ended (the only pods held),
        counted from the pods themselves; None until their watch, started on first use (or at
        the start: `start`), has listed them."""
        if deployment is None:
            return 0
        if not all(i.synced.is_set() for i in self._watch_pods(deployment)):
            return None
        uid = str(deployment["metadata"].get("uid"))
        return sum(
            len(self.pods.owned_by(str(replicaset["metadata"].get("uid"))))
            for replicaset in self.replicasets.owned_by(uid)
        )

    def store_for(self, kind: str) -> Store:
        """The store of a child kind the operator writes."""
        return {
            "Secret": self.secrets,
            "Service": self.services,
            "Deployment": self.deployments,
            "Ingress": self.ingresses,
        }[kind]

    def same_name_elsewhere(self, connector: Mapping[str, Any]) -> list[Object]:
        """Connectors of this one's name in other namespaces (in scope)."""
        meta = connector["metadata"]
        keys = self._names.get(meta["name"], set())
        found = (self.connectors.get(k) for k in sorted(keys) if k[0] != meta["namespace"])
        return [c for c in found if c is not None]

    def remember(self, store: Store, written: Object) -> None:
        """Keeps what the operator just wrote, so that the next pass reads its own write
        (the watch will deliver the same version, or a newer one, later)."""
        if is_newer(written, store.get(key_of(written))):
            store.upsert(without_managed_fields(written))

    def check_freshness(self, server: list[Object], grace: float) -> dict[str, int]:
        """Raises WatchStalledError when `server` (a metadata LIST of the Connectors) holds a
        change the watch has not delivered for longer than `grace` seconds: a stalled watch,
        which only a restart mends."""
        now = time.monotonic()
        behind: set[Key] = set()
        for item in server:
            held = self.connectors.get(key_of(item))
            if held is None or not is_newer(held, item):
                behind.add(key_of(item))
        self._behind = {k: self._behind.get(k, now) for k in behind}
        stalled = sorted(k for k, since in self._behind.items() if now - since > grace)
        if stalled:
            names = ", ".join(f"{ns}/{name}" for ns, name in stalled[:5])
            raise WatchStalledError(f"the watch has not delivered changes of {names}")
        return {"connectors": len(self.connectors), "behind": len(behind)}

    def phases(self) -> dict[Key, str]:
        """Each Connector's phase (Unknown: not reconciled yet)."""
        return {key_of(c): _phase(c) for c in self.connectors.values()}

    def connector_collections(self) -> list[str]:
        base = f"/apis/{GROUP}/{VERSION}"
        return [_collection(base, PLURAL, ns) for ns in (self.namespaces or (None,))]


def _contact(path: str, selector: str) -> None:
    metrics.watch_contacted(path, selector)


def _error(path: str, selector: str) -> None:
    metrics.WATCH_ERRORS.labels(path=path, selector=selector).inc()


def _uncounted(deployment: Object) -> bool:
    """Whether a Deployment's status does not count its terminating pods."""
    return states.reported_pods(states.summarize_deployment(deployment)) is None


def _deciding(deployment: Object) -> tuple[object, ...] | None:
    return states.deciding_facts(states.summarize_deployment(deployment))


def _phase(connector: Mapping[str, Any]) -> str:
    return str((connector.get("status") or {}).get("phase") or "Unknown")


def asked_to_stop(connector: Mapping[str, Any]) -> bool:
    annotations = connector["metadata"].get("annotations") or {}
    return bool(annotations.get(ACTION_ANNOTATION) == Action.STOP.value)


def same_but_version(old: Object, new: Object) -> bool:
    """Whether two versions of an object differ in their resourceVersion alone."""
    return _same_except(old, new, "metadata")


def same_but_status(old: Object, new: Object) -> bool:
    """Whether two versions of an object differ in their status, resourceVersion and their
    controller's bookkeeping (`BOOKKEEPING`) alone."""
    return _same_except(old, new, "metadata", "status", bookkeeping=BOOKKEEPING)


def _same_except(
    old: Object, new: Object, *skipped: str, bookkeeping: frozenset[str] = frozenset()
) -> bool:
    if old.keys() != new.keys():
        return False
    before, after = old.get("metadata") or {}, new.get("metadata") or {}
    if not all(old[k] == new[k] for k in old if k not in skipped):
        return False
    if before.keys() - {"annotations"} != after.keys() - {"annotations"}:
        return False
    return all(
        before[k] == after[k] for k in before if k not in ("resourceVersion", "annotations")
    ) and _without(before.get("annotations"), bookkeeping) == _without(
        after.get("annotations"), bookkeeping
    )


def _without(annotations: Mapping[str, str] | None, keys: frozenset[str]) -> Mapping[str, str]:
    if not annotations or not keys.intersection(annotations):
        return annotations or {}
    return {k: v for k, v in annotations.items() if k not in keys}


def users_change(old: Object | None, new: Object) -> bool:
    """Whether a Connector's change is a user's own to an existing Connector: a new generation
    (an edit of its spec) or a new action annotation. Not its creation (bulk work, as a
    thousand Connectors applied at once), nor the operator's own status writes."""
    if old is None:
        return False
    before, after = old.get("metadata") or {}, new.get("metadata") or {}
    if before.get("generation") != after.get("generation"):
        return True
    was, now = before.get("annotations") or {}, after.get("annotations") or {}
    return bool(was.get(ACTION_ANNOTATION) != now.get(ACTION_ANNOTATION))
