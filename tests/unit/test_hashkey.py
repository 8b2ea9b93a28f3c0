"""Unit tests of connector_operator.hashkey: the Secret that holds the installation's hash key,
against an in-memory API server that answers as the real one does (404, 409, 403)."""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from connector_operator.hashkey import HashKeyError, ensure_hash_key, key_secret
from connector_operator.kube import ApiError, ConflictError, Kube, NotFoundError

NAMESPACE = "connector-operator-system"
NAME = "connector-operator-hash-key"
PATH = f"/api/v1/namespaces/{NAMESPACE}/secrets/{NAME}"
KEY = bytes(range(100, 132))
OTHER_KEY = bytes(range(200, 232))


class FakeApiServer(Kube):
    """Secrets by path, in the namespaces that exist; `before_create` runs as another client
    would between this client's GET and its POST."""

    def __init__(self, namespaces: tuple[str, ...] = (NAMESPACE,)) -> None:
        self.namespaces = set(namespaces)
        self.objects: dict[str, dict[str, Any]] = {}
        self.before_create: Callable[[], None] | None = None
        self.refuse_create: ApiError | None = None

    async def get(self, path: str) -> dict[str, Any] | None:
        found = self.objects.get(path)
        return copy.deepcopy(found) if found is not None else None

    async def create(self, collection: str, body: Mapping[str, Any], kind: str) -> dict[str, Any]:
        assert kind == "Secret"
        if self.before_create is not None:
            self.before_create()
        namespace = collection.split("/")[4]
        if namespace not in self.namespaces:
            raise NotFoundError(f"POST {collection}: 404 namespaces {namespace!r} not found")
        if self.refuse_create is not None:
            raise self.refuse_create
        path = f"{collection}/{body['metadata']['name']}"
        if path in self.objects:
            raise ConflictError(f"POST {collection}: 409 secrets already exists")
        self.objects[path] = copy.deepcopy(dict(body))
        return copy.deepcopy(self.objects[path])

    def put_secret(self, data: dict[str, str]) -> None:
        self.objects[PATH] = {**key_secret(NAMESPACE, NAME, b""), "data": data}


def ensure(server: FakeApiServer, generate: Callable[[], bytes] = lambda: KEY) -> bytes:
    return asyncio.run(ensure_hash_key(server, NAMESPACE, NAME, generate))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class TestCreate:
    def test_a_missing_secret_is_created_with_the_generated_key(self) -> None:
        server = FakeApiServer()

        assert ensure(server) == KEY
        assert server.objects[PATH] == {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": NAME,
                "namespace": NAMESPACE,
                "labels": {
                    "app.kubernetes.io/managed-by": "connector-operator",
                    "app.kubernetes.io/name": "connector-operator",
                },
            },
            "type": "Opaque",
            "data": {"key": b64(KEY)},
        }

    def test_a_restart_reads_the_same_key(self) -> None:
        server = FakeApiServer()
        first = ensure(server)

        assert ensure(server, generate=lambda: OTHER_KEY) == first == KEY
        assert server.objects[PATH]["data"] == {"key": b64(KEY)}

    def test_an_existing_secret_is_kept(self) -> None:
        server = FakeApiServer()
        server.put_secret({"key": b64(OTHER_KEY)})

        assert ensure(server) == OTHER_KEY
        assert server.objects[PATH]["data"] == {"key": b64(OTHER_KEY)}

    def test_the_replica_that_loses_the_race_uses_the_winners_key(self) -> None:
        server = FakeApiServer()
        server.before_create = lambda: server.put_secret({"key": b64(OTHER_KEY)})

        assert ensure(server) == OTHER_KEY
        assert server.objects[PATH]["data"] == {"key": b64(OTHER_KEY)}

    def test_the_default_key_is_32_random_bytes(self) -> None:
        first, second = FakeApiServer(), FakeApiServer()

        one = asyncio.run(ensure_hash_key(first, NAMESPACE, NAME))
        other = asyncio.run(ensure_hash_key(second, NAMESPACE, NAME))

        assert len(one) == len(other) == 32
        assert one != other

    def test_a_short_generated_key_is_refused_before_it_is_stored(self) -> None:
        server = FakeApiServer()

        with pytest.raises(ValueError, match="at least 16 bytes"):
            ensure(server, generate=lambda: b"short")
        assert server.objects == {}


class TestErrors:
    @pytest.mark.parametrize(
        ("data", "detail"),
        [
            pytest.param({}, "has no data key 'key'", id="no-key"),
            pytest.param({"other": b64(KEY)}, "has no data key 'key'", id="other-key"),
            pytest.param({"key": b64(b"fifteen-bytes!!")}, "15 bytes long", id="too-short"),
            pytest.param({"key": "not base64!"}, "is not base64", id="not-base64"),
        ],
    )
    def test_a_malformed_secret_is_named(self, data: dict[str, str], detail: str) -> None:
        server = FakeApiServer()
        server.put_secret(data)

        with pytest.raises(HashKeyError) as raised:
            ensure(server)

        message = str(raised.value)
        assert f"Secret {NAME!r} in namespace {NAMESPACE!r}" in message
        assert detail in message
        assert [value for value in data.values() if value in message] == []

    def test_a_missing_namespace_is_said_to_be_missing(self) -> None:
        server = FakeApiServer(namespaces=())

        with pytest.raises(HashKeyError, match=f"namespace '{NAMESPACE}' does not exist"):
            ensure(server)

    def test_a_refused_create_names_the_secret(self) -> None:
        server = FakeApiServer()
        server.refuse_create = ApiError(403, "POST secrets: 403 secrets is forbidden")

        with pytest.raises(HashKeyError) as raised:
            ensure(server)

        assert f"Secret {NAME!r}" in str(raised.value)
        assert "403 secrets is forbidden" in str(raised.value)


def test_the_key_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    created, raced = FakeApiServer(), FakeApiServer()
    raced.before_create = lambda: raced.put_secret({"key": b64(OTHER_KEY)})

    ensure(created)
    ensure(raced)
    ensure(created)

    assert caplog.records  # the creation is logged, without the key
    for key in (KEY, OTHER_KEY):
        for form in (b64(key), key.hex(), repr(key)):
            assert form not in caplog.text
