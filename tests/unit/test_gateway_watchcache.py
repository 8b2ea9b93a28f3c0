"""Unit tests of the gateway's watch cache: entries rendered once per change, a listing per
namespace, pushes to the namespace's subscribers only, and no credential kept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from connector_operator.gateway.watchcache import QUEUE_LIMIT, ConnectorView


class Unused:
    """The view is never started here: changes come in through remember() and _on_change."""

    async def list_page(self, path: str, query: list[tuple[str, str]], accept: str) -> Any:
        raise AssertionError("not listed in unit tests")

    def watch(self, path: str, query: list[tuple[str, str]], accept: str) -> AsyncIterator[Any]:
        raise AssertionError("not watched in unit tests")


def body(name: str, namespace: str = "a", version: int = 1, phase: str | None = None,
         **status: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "dataspace.dev/v1alpha1", "kind": "Connector",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(version)},
        "spec": {"storage_type": "AmazonS3",
                 "storage_config": {"bucket_name": "b", "region": "r", "username_read": "AKIA-1",
                                    "password_read": "pw-1", "username_write": "AKIA-2",
                                    "password_write": "pw-2"}},
        "status": {"phase": phase, **status} if phase else {},
    }  # fmt: skip


def test_a_write_is_seen_at_once_and_keeps_no_credential() -> None:
    view = ConnectorView(Unused(), with_bpn=False)
    shown = view.remember(body("orders"))
    assert shown == {"status": "STARTING", "storageType": "AmazonS3", "bucketName": "b",
                     "region": "r"}  # fmt: skip
    assert json.loads(view.listing("a")) == {"orders": shown}
    assert view.entry("b", "orders") is None and json.loads(view.listing("b")) == {}
    kept = json.dumps(view.store.values())
    assert not any(secret in kept for secret in ("AKIA-1", "pw-1", "AKIA-2", "pw-2"))


def test_subscribers_get_what_changes_for_them_and_nothing_else() -> None:
    async def scenario() -> list[tuple[str, str, Any]]:
        view = ConnectorView(Unused(), with_bpn=False)
        with view.subscribe("a") as mine, view.subscribe("b") as theirs:
            view.remember(body("orders", version=1))
            view.remember(body("orders", version=1))  # the watch brings the same version
            view.remember(body("orders", version=2, phase="Running"))
            # A status write that changes nothing a client reads is no push.
            view.remember(body("orders", version=3, phase="Running", conditions=[{}]))
            view.remember(body("other", namespace="b", version=4))
            view._on_change(body("orders", version=2), None)
            assert theirs.queue.qsize() == 1
            return [mine.queue.get_nowait() for _ in range(mine.queue.qsize())]

    events = asyncio.run(scenario())
    assert [(kind, name) for kind, name, _ in events] == [
        ("ADDED", "orders"), ("MODIFIED", "orders"), ("DELETED", "orders"),
    ]  # fmt: skip
    assert events[1][2]["status"] == "RUNNING" and events[2][2] is None


def test_the_listing_follows_every_change() -> None:
    view = ConnectorView(Unused(), with_bpn=True)
    view.remember(body("orders"))
    first = view.listing("a")
    assert view.listing("a") is first  # rendered once, sent many times
    view.remember(body("orders", version=2, phase="Stopped"))
    listed = json.loads(view.listing("a"))
    assert listed["orders"]["status"] == "STOPPED" and listed["orders"]["bpn"].startswith("BPNL")


def test_a_subscriber_too_far_behind_is_ended() -> None:
    async def scenario() -> bool:
        view = ConnectorView(Unused(), with_bpn=False)
        with view.subscribe("a") as slow:
            for version in range(1, QUEUE_LIMIT + 3):
                view.remember(body(f"c{version}", version=version))
            return slow.lagging

    assert asyncio.run(scenario())
