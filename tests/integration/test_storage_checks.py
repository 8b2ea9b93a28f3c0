"""The storage checks against real peers: moto (S3 with SigV4 and IAM policies per key) and
Azurite (Azure Blob with SharedKey), each reason produced by a real failure, and never a
credential in a message."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector_operator.storage.azure import check_azure
from connector_operator.storage.s3 import check_s3
from connector_operator.storage.s3_clients import MissingPairError, S3Clients
from connector_operator.storage.target import AzureTarget, S3Target
from connector_operator.storage.verdict import Reason, Verdict
from tests.storage import azurite as azurite_support
from tests.storage import moto as moto_support
from tests.storage.azurite import Azurite
from tests.storage.moto import Moto

REGION = "eu-central-1"
KEY = base64.b64encode(b"k" * 64).decode()
OTHER_KEY = base64.b64encode(b"o" * 64).decode()
TIMEOUT = 3.0
Keys = dict[str, tuple[str, str]]


@pytest.fixture(scope="module")
def s3(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Moto, dict[str, tuple[str, str]]]]:
    with moto_support.running(tmp_path_factory.mktemp("moto")) as server:
        server.create_bucket("orders", REGION)
        server.create_bucket("archive", "us-west-2")
        server.create_bucket("empties", REGION)
        server.client("s3", REGION).put_object(Bucket="empties", Key="empty", Body=b"")
        keys = {
            "reader": server.create_user("reader", write=False),
            "writer": server.create_user("writer", write=True),
        }
        server.enable_auth()
        yield server, keys


@pytest.fixture(scope="module")
def blob(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    accounts = {"acct": KEY, "other": OTHER_KEY}
    with azurite_support.running(tmp_path_factory.mktemp("azurite"), accounts) as server:
        server.create_container("acct", "reports")
        server.create_container("acct", "empties")
        with server.service("acct") as service:
            service.get_container_client("empties").upload_blob("empty", b"")
        yield server


def s3_check(target: S3Target, write: bool = True) -> Verdict:
    async def run() -> Verdict:
        async with S3Clients(TIMEOUT) as clients:
            return await check_s3(clients, target, write=write)

    return asyncio.run(run())


def shows_no_secret(verdict: Verdict, *secrets: str) -> Verdict:
    text = json.dumps([verdict.reason, verdict.message])
    assert not any(s in text for s in secrets), verdict
    return verdict


def test_s3_every_reason_from_a_real_failure(s3: tuple[Moto, Keys], tmp_path: Path) -> None:
    server, keys = s3
    reader, writer = keys["reader"], keys["writer"]
    good = S3Target("orders", REGION, server.endpoint, read=reader, write=writer)
    secrets = (*reader, *writer)
    cases = {
        "reachable": (good, Reason.REACHABLE, None),
        "wrong secret": (S3Target("orders", REGION, server.endpoint, (reader[0], "wrong"), writer),
                         Reason.INVALID_CREDENTIALS, "read pair"),
        "unknown key id": (S3Target("orders", REGION, server.endpoint,
                                    ("AKIAUNKNOWN000000000", reader[1]), writer),
                           Reason.INVALID_CREDENTIALS, "read pair"),
        "read-only key as the write pair": (S3Target("orders", REGION, server.endpoint, reader,
                                                     reader),
                                            Reason.ACCESS_DENIED, "write pair"),
        "missing bucket": (S3Target("absent", REGION, server.endpoint, reader, writer),
                           Reason.BUCKET_NOT_FOUND, "bucket_name"),
        "wrong region": (S3Target("archive", REGION, server.endpoint, reader, writer),
                         Reason.WRONG_REGION, "us-west-2"),
        "TLS to a plain endpoint": (S3Target("orders", REGION,
                                             server.endpoint.replace("http:", "https:"),
                                             reader, writer),
                                    Reason.TLS_ERROR, "TLS"),
    }  # fmt: skip
    for case, (target, reason, said) in cases.items():
        verdict = shows_no_secret(s3_check(target), *secrets)
        assert verdict.reason is reason, (case, verdict)
        assert said is None or said in verdict.message, (case, verdict)
    assert s3_check(good, write=False).reason is Reason.REACHABLE
    # Reading the first byte of an empty object is refused (InvalidRange), yet was allowed.
    empties = S3Target("empties", REGION, server.endpoint, read=reader, write=writer)
    assert s3_check(empties).reason is Reason.REACHABLE

    server.revoke(reader[0])
    try:
        assert s3_check(good).reason is Reason.INVALID_CREDENTIALS
    finally:
        server.restore(reader[0])
    assert s3_check(good).reason is Reason.REACHABLE

    server.stop()
    try:
        down = shows_no_secret(s3_check(good), *secrets)
        assert down.reason is Reason.ENDPOINT_UNREACHABLE, down
    finally:
        server.start()


def test_moto_gives_back_a_key_though_a_request_came_between_seed_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness's promise that a test's key comes back after a restart of Moto or a
    `restore`, also when another request (an operator's storage check, in the suite) draws
    from Moto's random generator between the seed and the key: here one does after the
    reader's seed on the restart, and after the seed of its restore."""
    with moto_support.running(tmp_path) as server:
        server.create_bucket("kept", REGION)
        reader = server.create_user("reader", write=False)
        server.enable_auth()
        kept = S3Target("kept", REGION, server.endpoint, read=reader, write=reader)
        seeds: list[str] = []
        call = server._moto_api

        def seed_then_draw(method: str, path: str, *args: Any, **kwargs: Any) -> str:
            answer = call(method, path, *args, **kwargs)
            if path.startswith("seed"):
                seeds.append(path)
                if len(seeds) in (2, 4):  # an IAM user's id is drawn from the seeded generator
                    server.client("iam").create_user(UserName=f"interloper-{len(seeds)}")
            return answer

        monkeypatch.setattr(server, "_moto_api", seed_then_draw)
        server.stop()
        server.start()  # seeds: the admin's, the reader's (a draw follows), the reader's again
        assert len(seeds) == 3, f"the drawn key was not made again: {seeds}"
        assert s3_check(kept, write=False).reason is Reason.REACHABLE, "the key works again"
        server.revoke(reader[0])
        server.restore(reader[0])  # seeds: the reader's (a draw follows), the reader's again
        assert len(seeds) == 5, f"the drawn key was not made again: {seeds}"
        assert s3_check(kept, write=False).reason is Reason.REACHABLE, "the key works again"


def test_concurrent_s3_checks_over_one_client_each_sign_with_their_own_pair(
    s3: tuple[Moto, Keys],
) -> None:
    server, keys = s3
    reader, writer = keys["reader"], keys["writer"]
    wrong = (reader[0], "wrong-secret")
    targets = {
        "good": S3Target("orders", REGION, server.endpoint, read=reader, write=writer),
        "bad read": S3Target("orders", REGION, server.endpoint, read=wrong, write=writer),
        "read-only writer": S3Target("orders", REGION, server.endpoint, read=reader,
                                     write=reader),
    }  # fmt: skip
    expected = {
        "good": Reason.REACHABLE,
        "bad read": Reason.INVALID_CREDENTIALS,
        "read-only writer": Reason.ACCESS_DENIED,
    }

    async def run() -> list[tuple[str, Reason]]:
        async with S3Clients(TIMEOUT) as clients:
            names = list(targets) * 10  # interleaved, all at once, one shared client
            found = await asyncio.gather(
                *(check_s3(clients, targets[name], write=True) for name in names)
            )
            return [(name, verdict.reason) for name, verdict in zip(names, found, strict=True)]

    for name, reason in asyncio.run(run()):
        assert reason is expected[name], name


def test_a_request_without_a_checks_pair_is_never_sent(s3: tuple[Moto, Keys]) -> None:
    server, keys = s3
    target = S3Target("orders", REGION, server.endpoint, keys["reader"], keys["writer"])

    async def unsigned() -> None:
        async with S3Clients(TIMEOUT) as clients, clients.using(target) as client:
            await client.list_objects_v2(Bucket="orders")

    with pytest.raises(MissingPairError):
        asyncio.run(unsigned())


def azure_check(target: AzureTarget) -> Verdict:
    return asyncio.run(check_azure(target, write=True, timeout=TIMEOUT))


def test_azure_every_reason_from_a_real_failure(blob: Azurite) -> None:
    url = blob.blob_endpoint("acct")
    good = AzureTarget("reports", url, read=("acct", KEY), write=("acct", KEY))
    cases = {
        "reachable": (good, Reason.REACHABLE),
        "wrong key": (AzureTarget("reports", url, ("acct", OTHER_KEY), ("acct", KEY)),
                      Reason.INVALID_CREDENTIALS),
        "wrong key for writing": (AzureTarget("reports", url, ("acct", KEY), ("acct", OTHER_KEY)),
                                  Reason.INVALID_CREDENTIALS),
        "key not base64": (AzureTarget("reports", url, ("acct", "not base64!"), ("acct", KEY)),
                           Reason.INVALID_CREDENTIALS),
        "missing container": (AzureTarget("absent", url, ("acct", KEY), ("acct", KEY)),
                              Reason.CONTAINER_NOT_FOUND),
        "TLS to a plain endpoint": (AzureTarget("reports", url.replace("http:", "https:"),
                                                ("acct", KEY), ("acct", KEY)),
                                    Reason.TLS_ERROR),
    }  # fmt: skip
    for case, (target, reason) in cases.items():
        verdict = shows_no_secret(azure_check(target), KEY, OTHER_KEY)
        assert verdict.reason is reason, (case, verdict)
    empties = AzureTarget("empties", url, read=("acct", KEY), write=("acct", KEY))
    assert azure_check(empties).reason is Reason.REACHABLE  # an empty blob read: allowed
    write = azure_check(AzureTarget("reports", url, ("acct", KEY), ("acct", OTHER_KEY)))
    assert "write pair" in write.message

    blob.stop()
    try:
        assert azure_check(good).reason is Reason.ENDPOINT_UNREACHABLE
    finally:
        blob.start()
