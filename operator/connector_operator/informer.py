"""List-watch caches, one kind each (stdlib and `memory`; I/O through the `WatchClient` given).

A `Store` holds objects by (namespace, name) and indexes them by the uid of their controller
ownerReference. An `Informer` fills one with a paginated LIST, *replacing* its contents (what
vanished is reported as deleted), then follows a WATCH from the list's resourceVersion. A watch
that the API server can no longer continue (410 Gone, e.g. after a restart or a compaction) is
answered with a fresh LIST, so a deletion that happened while the watch was down is noticed.
This is what Kopf's watch stream does not report, and why the operator keeps its own caches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from connector_operator import memory

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
Object = dict[str, Any]
Change = tuple[Object | None, Object | None]  # (old, new); new is None for a deletion
OnChange = Callable[[Object | None, Object | None], None]
GONE_KEPT = 4096  # deletions remembered, oldest forgotten first
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_ONLY_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


class GoneError(Exception):
    """The watch cannot continue from its resourceVersion (410 Gone): list again."""


class WatchClient(Protocol):
    """What an informer needs of the API server."""

    async def list_page(
        self, path: str, query: list[tuple[str, str]], accept: str
    ) -> dict[str, Any]: ...

    def watch(
        self, path: str, query: list[tuple[str, str]], accept: str
    ) -> AsyncGenerator[dict[str, Any], None]: ...


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller ownerReference: that, not a label, makes it a child."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("controller"):
            uid = ref.get("uid")
            return uid if isinstance(uid, str) else None
    return None


def resource_version(obj: Mapping[str, Any]) -> int | None:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def is_newer(candidate: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    """Whether `candidate` is not older than `current` (resourceVersions are etcd revisions in
    practice; anything unparsable counts as newer)."""
    if current is None:
        return True
    new, old = resource_version(candidate), resource_version(current)
    return new is None or old is None or new >= old


def without_managed_fields(obj: Object) -> Object:
    """The default transform: managedFields are large and never read by the operator."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


SHARED_LENGTH = 64  # strings up to this long are shared between the objects held
# A Secret's values are never interned: they stay the Secret's own, freed with it. (Interned
# strings are freed once unused on the CPython 3.11 the image runs; some 3.12 releases made
# them immortal.)
UNSHARED = frozenset({"data", "stringData"})


def compact(value: Any, like: Any = None) -> Any:
    """`value` with its keys and short strings shared (interned) with every other object held,
    and the parts equal to those of `like` (the version it replaces) taken from it.

    Each object parsed from a watch event has its own copy of every key ("metadata", "name",
    ...) and of the values that all objects of its kind repeat ("IfNotPresent", "True", ...):
    shared, a Deployment held costs about half. An update mostly repeats the version before
    (a Deployment's status changes, its pod template does not): what is equal is compared in
    C and kept, not walked again (`==` takes 1 for true and for 1.0, which two versions of an
    object of one schema never differ by). Interned strings are freed as usual once no object holds
    them. Idempotent; held objects are never changed in place, so sharing parts is safe."""
    if like is not None and type(value) is type(like) and value == like:
        return like
    if isinstance(value, dict):
        before = like if isinstance(like, dict) else _NOTHING
        return {
            _intern(k): v if k in UNSHARED else compact(v, before.get(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        if isinstance(like, list) and len(like) == len(value):
            return [compact(v, w) for v, w in zip(value, like, strict=True)]
        return [compact(v) for v in value]
    if isinstance(value, str) and len(value) <= SHARED_LENGTH:
        return _intern(value)
    return value


_NOTHING: Mapping[str, Any] = {}


_intern = sys.intern


def _typed(item: Object, page: Mapping[str, Any]) -> Object:
    """A listed item as a watch or a GET returns it: the items of a LIST carry no apiVersion
    and kind of their own (the list has them)."""
    if "kind" in item:
        return item
    kind = str(page.get("kind", ""))
    return {
        "apiVersion": page.get("apiVersion"),
        "kind": kind.removesuffix("List"),
        **item,
    }


class Store:
    """Objects by key, with an index by controller owner uid (pure)."""

    def __init__(self, transform: Callable[[Object], Object] = without_managed_fields) -> None:
        # Applied to every object stored, which is then held `compact`ed: it must be idempotent.
        self.transform = transform
        self._items: dict[Key, Object] = {}
        self._by_owner: dict[str, set[Key]] = defaultdict(set)
        # Deletions by the version they happened at: an older copy that arrives later (the
        # response of a write that raced the deletion) must not bring the object back.
        self._gone: dict[Key, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Key) -> Object | None:
        return self._items.get(key)

    def keys(self) -> list[Key]:
        return list(self._items)

    def values(self) -> list[Object]:
        return list(self._items.values())

    def owned_by(self, uid: str) -> list[Object]:
        """The objects whose controller ownerReference is `uid`."""
        return [self._items[k] for k in sorted(self._by_owner.get(uid, ()))]

    def upsert(self, obj: Object) -> Change | None:
        """Stores `obj` unless an equal or newer version is held; returns the change, if any."""
        key = key_of(obj)
        old = self._items.get(key)
        if old is not None and not is_newer(obj, old):
            return None
        version, deleted = resource_version(obj), self._gone.get(key)
        if deleted is not None:
            if version is not None and version <= deleted:
                return None
            del self._gone[key]
        new = compact(self.transform(obj), old)
        if new is old:
            return None  # a relist of an unchanged object
        self._unindex(key, old)
        self._items[key] = new
        if (owner := controller_uid(new)) is not None:
            self._by_owner[owner].add(key)
        return (old, new)

    def remove(self, key: Key, version: int | None = None) -> Change | None:
        """Drops the object; `version` is the deletion's, when known."""
        if version is not None:
            self._gone[key] = version
            if len(self._gone) > GONE_KEPT:  # a late write response comes within seconds
                for stale in list(self._gone)[: GONE_KEPT // 2]:
                    del self._gone[stale]
        old = self._items.pop(key, None)
        if old is None:
            return None
        self._unindex(key, old)
        return (old, None)

    def replace(
        self, items: Iterable[Object], version: int | None = None, namespace: str | None = None
    ) -> list[Change]:
        """Makes the store hold exactly `items` (a fresh LIST at `version`) in `namespace`
        (all namespaces when None: one store may be filled by an informer per namespace);
        returns every change, deletions of what the list no longer has included."""
        for key in [k for k in self._gone if namespace is None or k[0] == namespace]:
            del self._gone[key]
        changes: list[Change] = []
        listed: set[Key] = set()
        for obj in items:
            listed.add(key_of(obj))
            if (change := self.upsert(obj)) is not None:
                changes.append(change)
        scope = [k for k in self._items if namespace is None or k[0] == namespace]
        for key in [k for k in scope if k not in listed]:
            if (change := self.remove(key, version)) is not None:
                changes.append(change)
        return changes

    def _unindex(self, key: Key, old: Object | None) -> None:
        if old is not None and (owner := controller_uid(old)) is not None:
            keys = self._by_owner.get(owner)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_owner[owner]


@dataclass
class Informer:
    """Keeps one Store in step with the API server for one collection path."""

    client: WatchClient
    path: str  # e.g. /apis/apps/v1/namespaces/ns/deployments, or cluster-wide without namespaces
    on_change: OnChange
    label_selector: str | None = None
    field_selector: str | None = None
    metadata_only: bool = False
    store: Store = field(default_factory=Store)
    page_size: int = 500
    watch_timeout: int = 300  # the server ends a watch after this; it is then resumed
    retry_delay: float = 1.0
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    on_relist: Callable[[str], None] = lambda _path: None
    # (path, label selector or ""): the API server answered (a LIST, an event or bookmark, a
    # watch that ran to its timeout); a LIST or watch failed and is retried.
    on_contact: Callable[[str, str], None] = lambda _path, _selector: None
    on_error: Callable[[str, str], None] = lambda _path, _selector: None
    paused: Callable[[], bool] = lambda: False  # tests: a watch that stalls silently
    namespace: str | None = None  # the namespace of `path`; None for a cluster-wide one
    _version: str | None = None

    def _query(self) -> list[tuple[str, str]]:
        selectors = (("labelSelector", self.label_selector), ("fieldSelector", self.field_selector))
        return [(name, value) for name, value in selectors if value]

    async def list(self) -> None:
        """A paginated LIST that replaces the store; the watch resumes from its version."""
        items: list[Object] = []
        token: str | None = None
        while True:
            query = [*self._query(), ("limit", str(self.page_size))]
            if token:
                query.append(("continue", token))
            accept = METADATA_ONLY if self.metadata_only else "application/json"
            page = await self.client.list_page(self.path, query, accept)
            # Each page is cut down to what the store keeps before the next one is read, so a
            # LIST of large objects never sits in memory whole.
            items.extend(self.store.transform(_typed(i, page)) for i in page.get("items") or [])
            del page["items"]
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                self._version = (page.get("metadata") or {}).get("resourceVersion")
                break
        version = int(self._version) if self._version and self._version.isdigit() else None
        for old, new in self.store.replace(items, version, self.namespace):
            self.on_change(old, new)
        del items
        memory.release()  # the pages were parsed and dropped: hand their memory back
        self.on_contact(self.path, self.label_selector or "")
        self.synced.set()

    async def watch_once(self) -> None:
        """Follows one WATCH request until the server ends it; raises GoneError for a 410."""
        query = [
            *self._query(),
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(self.watch_timeout)),
        ]
        if self._version:
            query.append(("resourceVersion", self._version))
        accept = METADATA_ONLY_WATCH if self.metadata_only else "application/json"
        # Closed when left by a raise too: its response (and connection) is released at once.
        async with contextlib.aclosing(self.client.watch(self.path, query, accept)) as events:
            async for event in events:
                self._take(event)

    def _take(self, event: Mapping[str, Any]) -> None:
        """One watch event into the store (a 410 raises GoneError)."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise GoneError(str(obj.get("message", "")))
            raise RuntimeError(f"watch of {self.path} failed: {obj.get('message', obj)}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self._version = version
        if self.paused():
            return
        self.on_contact(self.path, self.label_selector or "")
        if kind == "BOOKMARK":
            return
        if kind == "DELETED":
            change = self.store.remove(key_of(obj), resource_version(obj))
        else:
            change = self.store.upsert(obj)
        if change is not None:
            self.on_change(*change)

    async def run(self) -> None:
        """LIST, then WATCH for ever; a 410 lists again, other failures retry after a pause."""
        while True:
            try:
                if self._version is None:
                    await self.list()
                await self.watch_once()
                self.on_contact(self.path, self.label_selector or "")  # it ran to its end
            except asyncio.CancelledError:
                raise
            except GoneError:
                log.info("watch of %s expired (410 Gone): listing again", self.path)
                self.on_relist(self.path)
                self._version = None
            except Exception as error:
                log.warning("watch of %s failed, retrying: %s", self.path, error)
                self.on_error(self.path, self.label_selector or "")
                await asyncio.sleep(self.retry_delay)
