"""The gateway's watch cache of Connectors: each one's entry, rendered once per change and kept
by namespace, and the live-update subscribers of each namespace (lists and watches only, through
the client given; it never writes).

GET /connectors answers from here, not with a LIST per request. What is kept is `slim`: no
credential of a spec ever sits in the gateway's memory longer than one event takes to handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from connector_operator.edc.identity import bpn_of
from connector_operator.gateway.payload import entry, slim
from connector_operator.informer import Informer, Object, Store, WatchClient, key_of
from connector_operator.models import GROUP, PLURAL, VERSION

Entry = dict[str, Any]  # a ConnectorEntry as sent (JSON-ready, None fields left out)
QUEUE_LIMIT = 1024  # events a slow stream may fall behind before it is ended


@dataclass(eq=False)  # one per stream, kept in a set
class Subscription:
    """One live-update stream's queue of (type, name, entry) events."""

    queue: asyncio.Queue[tuple[str, str, Entry | None]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT)
    )
    lagging: bool = False  # it fell too far behind: the stream ends, the client reconnects

    def put(self, event: tuple[str, str, Entry | None]) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagging = True


class ConnectorView:
    def __init__(
        self, client: WatchClient, namespaces: tuple[str, ...] = (), with_bpn: bool = True
    ) -> None:
        self.store = Store(transform=slim)
        self.with_bpn = with_bpn
        self._entries: dict[str, dict[str, Entry]] = {}
        self._listings: dict[str, bytes] = {}  # each namespace's GET /connectors, as sent
        self._subscribers: dict[str, set[Subscription]] = {}
        base = f"/apis/{GROUP}/{VERSION}"
        scopes: list[str | None] = list(namespaces) or [None]
        self.informers = [
            Informer(
                client,
                f"{base}/namespaces/{ns}/{PLURAL}" if ns else f"{base}/{PLURAL}",
                self._on_change,
                store=self.store,
                namespace=ns,
            )
            for ns in scopes
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(i.run()) for i in self.informers]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)

    async def wait_synced(self) -> None:
        for informer in self.informers:
            await informer.synced.wait()

    def entries(self, namespace: str) -> dict[str, Entry]:
        return dict(sorted(self._entries.get(namespace, {}).items()))

    def listing(self, namespace: str) -> bytes:
        """The namespace's entries by name, in JSON: rendered once per change, not per GET."""
        if (cached := self._listings.get(namespace)) is None:
            cached = json.dumps(self.entries(namespace)).encode()
            self._listings[namespace] = cached
        return cached

    def entry(self, namespace: str, name: str) -> Entry | None:
        return self._entries.get(namespace, {}).get(name)

    def remember(self, written: Object) -> Entry:
        """Takes in what a write returned, so that the writer's next read sees it (the watch
        brings the same version later, which then changes nothing)."""
        if (change := self.store.upsert(written)) is not None:
            self._on_change(*change)
        namespace, name = key_of(written)
        return self.entry(namespace, name) or self.render(slim(written))

    def forget(self, namespace: str, name: str) -> None:
        """Drops a Connector whose deletion the caller saw succeed (the watch confirms it)."""
        if (change := self.store.remove((namespace, name))) is not None:
            self._on_change(*change)

    def render(self, body: Object) -> Entry:
        namespace, name = key_of(body)
        bpn = bpn_of(namespace, name) if self.with_bpn else None
        return entry(body, bpn).model_dump(mode="json", exclude_none=True)

    @contextlib.contextmanager
    def subscribe(self, namespace: str) -> Iterator[Subscription]:
        subscription = Subscription()
        self._subscribers.setdefault(namespace, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers.get(namespace, set())
            subscribers.discard(subscription)
            if not subscribers:
                self._subscribers.pop(namespace, None)

    def _on_change(self, old: Object | None, new: Object | None) -> None:
        namespace, name = key_of(new or old or {})
        self._listings.pop(namespace, None)
        entries = self._entries.setdefault(namespace, {})
        before = entries.get(name)
        if new is None:
            entries.pop(name, None)
            if not entries:
                self._entries.pop(namespace, None)
            event: tuple[str, str, Entry | None] = ("DELETED", name, None)
        else:
            after = self.render(new)
            if after == before:
                return  # a status write that changes nothing a client reads
            entries[name] = after
            event = ("ADDED" if before is None else "MODIFIED", name, after)
        for subscription in self._subscribers.get(namespace, ()):
            subscription.put(event)
