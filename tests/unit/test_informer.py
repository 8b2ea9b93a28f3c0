"""Unit tests of connector_operator.informer: the store's owner index and list-replace, and the
informer's paginated LIST, WATCH and 410 relist against a fake API client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import pytest

from connector_operator.informer import (
    GONE_KEPT,
    METADATA_ONLY,
    Informer,
    Object,
    Store,
    controller_uid,
    without_managed_fields,
)


def obj(name: str, rv: int, owner: str | None = None, **extra: Any) -> Object:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "resourceVersion": str(rv)}
    if owner is not None:
        meta["ownerReferences"] = [
            {"kind": "Connector", "name": "c", "uid": owner, "controller": True}
        ]
    return {"metadata": meta, **extra}


class TestStore:
    def test_indexes_by_controller_owner_only(self) -> None:
        store = Store()
        store.upsert(obj("a", 1, owner="u1"))
        store.upsert(obj("b", 1, owner="u1"))
        follower = obj("c", 1)
        follower["metadata"]["ownerReferences"] = [{"uid": "u1", "controller": False}]
        store.upsert(follower)
        assert [o["metadata"]["name"] for o in store.owned_by("u1")] == ["a", "b"]
        assert store.owned_by("u2") == []

    def test_a_new_owner_moves_the_index(self) -> None:
        store = Store()
        store.upsert(obj("a", 1, owner="u1"))
        store.upsert(obj("a", 2, owner="u2"))
        assert store.owned_by("u1") == []
        assert len(store.owned_by("u2")) == 1

    def test_an_older_version_is_ignored(self) -> None:
        store = Store()
        store.upsert(obj("a", 5, spec={"x": 2}))
        assert store.upsert(obj("a", 4, spec={"x": 1})) is None
        assert store.get(("ns", "a")) == obj("a", 5, spec={"x": 2})

    def test_an_unchanged_object_is_no_change(self) -> None:
        store = Store()
        store.upsert(obj("a", 1))
        assert store.upsert(obj("a", 1)) is None

    def test_replace_reports_what_vanished_as_deleted(self) -> None:
        store = Store()
        for name in ("a", "b", "c"):
            store.upsert(obj(name, 1, owner="u"))
        changes = store.replace([obj("a", 1, owner="u"), obj("c", 2, owner="u"), obj("d", 3)])
        deleted = [old["metadata"]["name"] for old, new in changes if new is None and old]
        updated = [new["metadata"]["name"] for old, new in changes if new is not None]
        assert deleted == ["b"]
        assert sorted(updated) == ["c", "d"]
        assert sorted(o["metadata"]["name"] for o in store.values()) == ["a", "c", "d"]
        assert [o["metadata"]["name"] for o in store.owned_by("u")] == ["a", "c"]

    def test_managed_fields_are_not_kept(self) -> None:
        body = obj("a", 1)
        body["metadata"]["managedFields"] = [{"manager": "kubectl"}]
        store = Store()
        store.upsert(body)
        held = store.get(("ns", "a"))
        assert held is not None and "managedFields" not in held["metadata"]
        assert "managedFields" in body["metadata"], "the caller's object is not mutated"
        assert without_managed_fields(held) == held  # idempotent

    def test_objects_held_share_their_keys_and_short_values(self) -> None:
        import json  # noqa: PLC0415 -- objects as a watch parses them: each its own strings

        store = Store()
        long_value = "x" * 65
        for name in ("a", "b"):
            body = obj(name, 1)
            body["spec"] = {"imagePullPolicy": "IfNotPresent", "note": long_value}
            store.upsert(json.loads(json.dumps(body)))
        a, b = store.get(("ns", "a")), store.get(("ns", "b"))
        assert a is not None and b is not None
        (key_a,), (key_b,) = [[k for k in o if k == "spec"] for o in (a, b)]
        assert key_a is key_b
        assert a["spec"]["imagePullPolicy"] is b["spec"]["imagePullPolicy"]
        assert a["spec"]["note"] == b["spec"]["note"]
        assert a["spec"]["note"] is not b["spec"]["note"]  # a long value stays its own

    def test_a_secrets_values_are_never_shared(self) -> None:
        import json  # noqa: PLC0415 -- objects as a watch parses them: each its own strings

        store = Store()
        for name in ("a", "b"):
            body = obj(name, 1)
            body["data"] = {"password": "c2VjcmV0"}
            store.upsert(json.loads(json.dumps(body)))
        a, b = store.get(("ns", "a")), store.get(("ns", "b"))
        assert a is not None and b is not None
        assert a["data"]["password"] == b["data"]["password"]
        assert a["data"]["password"] is not b["data"]["password"]

    def test_controller_uid(self) -> None:
        assert controller_uid(obj("a", 1, owner="u")) == "u"
        assert controller_uid(obj("a", 1)) is None


@dataclass
class FakeApi:
    """Serves LIST pages from `pages` (items, and whether more pages follow) and WATCH streams
    from `streams`, recording every request."""

    pages: list[tuple[list[dict[str, Any]], bool]] = field(default_factory=list)
    streams: list[list[dict[str, Any]]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    version: int = 100

    async def list_page(
        self, path: str, query: list[tuple[str, str]], accept: str
    ) -> dict[str, Any]:
        params = dict(query)
        self.requests.append(("LIST", params, accept))
        page, more = self.pages.pop(0)
        meta = {"resourceVersion": str(self.version)}
        if more:
            meta["continue"] = f"token-{len(self.requests)}"
        return {"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": meta, "items": page}

    async def watch(
        self, path: str, query: list[tuple[str, str]], accept: str
    ) -> AsyncGenerator[dict[str, Any], None]:
        self.requests.append(("WATCH", dict(query), accept))
        if not self.streams:
            await asyncio.Event().wait()  # a quiet watch
        for event in self.streams.pop(0):
            yield event


def run(informer: Informer, api: FakeApi, until_requests: int) -> None:
    async def go() -> None:
        task = asyncio.create_task(informer.run())
        for _ in range(1000):
            if len(api.requests) >= until_requests:
                break
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(go(), 5))


def recording() -> tuple[list[tuple[str | None, str | None]], Any]:
    seen: list[tuple[str | None, str | None]] = []

    def on_change(old: Object | None, new: Object | None) -> None:
        name = lambda o: None if o is None else o["metadata"]["name"]  # noqa: E731
        seen.append((name(old), name(new)))

    return seen, on_change


class TestInformer:
    def test_lists_page_by_page_then_watches_from_the_list_version(self) -> None:
        api = FakeApi(pages=[([obj("a", 1)], True), ([obj("b", 2)], False)])
        seen, on_change = recording()
        informer = Informer(
            api, "/p", on_change, label_selector="x=y", field_selector="a!=b", page_size=1
        )
        run(informer, api, until_requests=3)
        (_, first, _), (_, second, _), (_, watch, _) = api.requests[:3]
        assert first["limit"] == "1" and "continue" not in first
        assert second["continue"] == "token-1"
        assert first["labelSelector"] == "x=y" == watch["labelSelector"]
        assert first["fieldSelector"] == "a!=b" == watch["fieldSelector"]
        assert watch["resourceVersion"] == "100" and watch["allowWatchBookmarks"] == "true"
        assert seen == [(None, "a"), (None, "b")]
        assert informer.synced.is_set()
        listed = informer.store.get(("ns", "a"))
        assert listed is not None, "a listed item is typed as a watched one is"
        assert (listed["apiVersion"], listed["kind"]) == ("apps/v1", "Deployment")

    def test_watch_events_update_the_store(self) -> None:
        api = FakeApi(
            pages=[([obj("a", 1)], False)],
            streams=[
                [
                    {"type": "ADDED", "object": obj("b", 101)},
                    {"type": "MODIFIED", "object": obj("a", 102, spec={"x": 1})},
                    {"type": "DELETED", "object": obj("b", 103)},
                    {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "150"}}},
                ]
            ],
        )
        seen, on_change = recording()
        informer = Informer(api, "/p", on_change)
        run(informer, api, until_requests=3)
        assert seen == [(None, "a"), (None, "b"), ("a", "a"), ("b", None)]
        assert informer.store.keys() == [("ns", "a")]
        assert api.requests[2][1]["resourceVersion"] == "150", "resumed after the bookmark"

    def test_a_410_relists_and_reports_what_was_deleted_in_the_gap(self) -> None:
        gone = {"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}
        api = FakeApi(
            pages=[([obj("a", 1), obj("b", 2)], False), ([obj("a", 1)], False)], streams=[[gone]]
        )
        seen, on_change = recording()
        relists: list[str] = []
        informer = Informer(api, "/p", on_change, on_relist=relists.append)
        run(informer, api, until_requests=4)
        assert [r[0] for r in api.requests[:4]] == ["LIST", "WATCH", "LIST", "WATCH"]
        assert seen == [(None, "a"), (None, "b"), ("b", None)]
        assert relists == ["/p"]

    def test_a_dropped_watch_resumes_from_its_version_without_a_list(self) -> None:
        api = FakeApi(
            pages=[([obj("a", 1)], False)],
            streams=[[{"type": "MODIFIED", "object": obj("a", 120)}], []],
        )
        informer = Informer(api, "/p", lambda old, new: None, retry_delay=0)
        run(informer, api, until_requests=4)
        kinds = [r[0] for r in api.requests[:4]]
        assert kinds == ["LIST", "WATCH", "WATCH", "WATCH"]
        assert api.requests[2][1]["resourceVersion"] == "120"

    def test_metadata_only_asks_for_partial_objects(self) -> None:
        api = FakeApi(pages=[([], False)])
        informer = Informer(api, "/p", lambda old, new: None, metadata_only=True)
        run(informer, api, until_requests=2)
        assert api.requests[0][2] == METADATA_ONLY
        assert "PartialObjectMetadata;" in api.requests[1][2]

    def test_a_failing_watch_is_retried(self) -> None:
        error = {"type": "ERROR", "object": {"code": 500, "message": "boom"}}
        api = FakeApi(pages=[([], False)], streams=[[error]])
        informer = Informer(api, "/p", lambda old, new: None, retry_delay=0)
        run(informer, api, until_requests=3)
        assert [r[0] for r in api.requests[:3]] == ["LIST", "WATCH", "WATCH"]

    def test_every_answer_of_the_server_is_a_contact(self) -> None:
        """The list, each event or bookmark, and a watch that ran to its end (the metric
        connector_operator_watch_last_contact_timestamp_seconds); a failure is an error."""
        error = {"type": "ERROR", "object": {"code": 500, "message": "boom"}}
        api = FakeApi(
            pages=[([obj("a", 1)], False)],
            streams=[
                [
                    {"type": "MODIFIED", "object": obj("a", 101)},
                    {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "150"}}},
                ],
                [error],
            ],
        )
        seen: list[tuple[str, str, str]] = []
        informer = Informer(
            api, "/p", lambda old, new: None, label_selector="x=y", retry_delay=0,
            on_contact=lambda path, selector: seen.append(("contact", path, selector)),
            on_error=lambda path, selector: seen.append(("error", path, selector)),
        )  # fmt: skip
        run(informer, api, until_requests=4)
        # the LIST, the event, the bookmark, the watch's end; then the failed watch
        assert seen == [("contact", "/p", "x=y")] * 4 + [("error", "/p", "x=y")]

    def test_a_paused_watch_makes_no_contact(self) -> None:
        """The failpoint that drops a watch's events drops their contacts too."""
        api = FakeApi(pages=[([], False)], streams=[[{"type": "ADDED", "object": obj("a", 101)}]])
        contacts: list[str] = []
        informer = Informer(
            api, "/p", lambda old, new: None, paused=lambda: True,
            on_contact=lambda path, selector: contacts.append(selector),
        )  # fmt: skip
        run(informer, api, until_requests=3)
        assert contacts == ["", ""], "the LIST and the watch's end, never the event"


class TestDeletions:
    def test_a_late_copy_of_a_deleted_object_does_not_bring_it_back(self) -> None:
        """The response of a write that raced a deletion arrives after the DELETED event."""
        store = Store()
        store.upsert(obj("a", 5))
        store.remove(("ns", "a"), version=7)
        assert store.upsert(obj("a", 6)) is None
        assert store.get(("ns", "a")) is None
        assert store.upsert(obj("a", 8)) is not None, "a newer object of the name is new"

    def test_a_relist_forgets_the_deletions(self) -> None:
        store = Store()
        store.remove(("ns", "a"), version=7)
        store.replace([obj("a", 3)], version=9)
        assert store.get(("ns", "a")) is not None


def test_the_deletions_remembered_are_bounded() -> None:
    store = Store()
    for index in range(GONE_KEPT + 10):
        store.remove(("ns", f"o{index}"), version=index)
    assert store.upsert(obj(f"o{GONE_KEPT + 9}", 1)) is None, "a recent deletion is remembered"
    assert store.upsert(obj("o0", 1)) is not None, "the oldest are forgotten"


def test_a_list_of_one_namespace_leaves_the_others_objects_in_a_shared_store() -> None:
    """With several watched namespaces, one informer per namespace fills one store: the first
    LIST of an empty namespace must not report the other namespace's objects deleted."""
    store = Store()
    in_a = obj("x", 1)
    in_a["metadata"]["namespace"] = "a"
    store.replace([in_a], 1, namespace="a")
    changes = store.replace([], 2, namespace="b")
    assert changes == [] and store.get(("a", "x")) is not None
    gone = store.replace([], 3, namespace="a")
    assert [old["metadata"]["name"] for old, new in gone if new is None] == ["x"]


class TestSharingWithTheVersionReplaced:
    """An update is held sharing what it repeats of the version it replaces."""

    @staticmethod
    def _deployment(version: str, ready: int) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "ns", "resourceVersion": version},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c"}]}}},
            "status": {"readyReplicas": ready},
        }  # fmt: skip

    def test_the_unchanged_parts_are_the_old_versions_and_the_changes_are_new(self) -> None:
        store = Store()
        store.upsert(self._deployment("1", 0))
        old = store.get(("ns", "d"))
        change = store.upsert(self._deployment("2", 1))
        new = store.get(("ns", "d"))
        assert change is not None and old is not None and new is not None
        assert new["spec"] is old["spec"]
        assert new["status"] == {"readyReplicas": 1} and old["status"] == {"readyReplicas": 0}
        assert new["metadata"]["resourceVersion"] == "2"
