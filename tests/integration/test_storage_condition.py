"""The StorageReachable condition end to end: the operator (a real process, the real API
server) checks Connectors' storage against moto (S3, with SigV4 and IAM policies per key) and
Azurite (Azure Blob, with SharedKey), and says what is wrong without a credential anywhere."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from connector_operator.storage.verdict import Reason
from tests.integration.conftest import (
    Connectors,
    Operator,
    connector,
    free_port,
    secret_manifest,
)
from tests.storage import azurite, moto, silent
from tests.storage.azurite import Azurite
from tests.storage.moto import Moto
from tests.support import eventually

pytestmark = pytest.mark.cluster

REGION = "eu-central-1"
ACCOUNT = "blobacct7q"  # an account name is a credential field: never shown either
ACCOUNT_KEY = base64.b64encode(b"account-key-" * 6).decode()
WRONG_KEY = base64.b64encode(b"wrong-key-" * 6).decode()
WRONG_SECRET = "wrong-secret-7Hq2xPz"  # noqa: S105 -- a made-up credential
STORAGE = "StorageReachable"
STORAGE_EVENTS = (STORAGE, *(r.value for r in Reason if r is not Reason.REACHABLE))
Pair = tuple[str, str]


@dataclass
class Peers:
    s3: Moto
    reader: Pair  # an access key that may list and read
    writer: Pair  # one that may also write
    blob: Azurite

    def secrets(self) -> list[str]:
        return [*self.reader, *self.writer, ACCOUNT, ACCOUNT_KEY, WRONG_KEY, WRONG_SECRET]


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    with (
        moto.running(tmp_path_factory.mktemp("moto")) as s3,
        azurite.running(tmp_path_factory.mktemp("azurite"), {ACCOUNT: ACCOUNT_KEY}) as blob,
    ):
        s3.create_bucket("orders", REGION)
        s3.create_bucket("archive", "us-west-2")
        reader = s3.create_user("reader", write=False)
        writer = s3.create_user("writer", write=True)
        s3.enable_auth()
        blob.create_container(ACCOUNT, "reports")
        yield Peers(s3, reader, writer, blob)


def s3_pairs(read: Pair, write: Pair) -> dict[str, str]:
    return {"username_read": read[0], "password_read": read[1],
            "username_write": write[0], "password_write": write[1]}  # fmt: skip


def on_s3(
    name: str,
    peers: Peers,
    *,
    bucket: str = "orders",
    read: Pair | None = None,
    write: Pair | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    pairs = s3_pairs(read or peers.reader, write or peers.writer)
    return connector(name, "AmazonS3", bucket_name=bucket, region=REGION,
                     url=url or peers.s3.endpoint, **pairs)  # fmt: skip


def on_s3_by_secret(name: str, peers: Peers, secret: str) -> dict[str, Any]:
    return connector(name, "AmazonS3", bucket_name="orders", region=REGION,
                     url=peers.s3.endpoint, credentials_secret_ref={"name": secret})  # fmt: skip


def on_blob(
    name: str,
    peers: Peers,
    *,
    container: str = "reports",
    key: str = ACCOUNT_KEY,
    default_endpoint: bool = False,
) -> dict[str, Any]:
    url = {} if default_endpoint else {"url": peers.blob.blob_endpoint(ACCOUNT)}
    return connector(name, "AzureStorage", container_name=container, **url,
                     account_name_read=ACCOUNT, account_key_read=key,
                     account_name_write=ACCOUNT, account_key_write=key)  # fmt: skip


def checking(start_operator: Callable[..., Operator], mode: str = "warn", **env: str) -> Operator:
    settings = {"timeout_seconds": "3", **env}
    return start_operator(
        CONNECTOR_OPERATOR_STORAGE_CHECK=mode,
        **{f"CONNECTOR_OPERATOR_STORAGE_CHECK_{k.upper()}": v for k, v in settings.items()},
    )


def storage_says(connectors: Connectors, name: str, reason: str) -> dict[str, Any]:
    def shown() -> dict[str, Any] | None:
        found = connectors.condition(name, STORAGE)
        return found if found and found["reason"] == reason else None

    return eventually(shown, what=f"{name}: {STORAGE} {reason}")


def storage_events(connectors: Connectors, name: str) -> list[tuple[str, str]]:
    return [e for e in connectors.event_reasons(name) if e[1] in STORAGE_EVENTS]


def shows_no_credential(connectors: Connectors, operator: Operator, peers: Peers) -> None:
    for name in (c["metadata"]["name"] for c in connectors.custom.list_namespaced_custom_object(
            "dataspace.dev", "v1alpha1", connectors.namespace, "connectors")["items"]):  # fmt: skip
        shown = [str(connectors.status(name)), *(str(e.message) for e in connectors.events(name))]
        for text in shown:
            assert not any(s in text for s in peers.secrets()), (name, text)
    for where, text in (("log", operator.logs()), ("metrics", operator.metrics())):
        assert not any(s in text for s in peers.secrets()), where


def test_warn_mode_names_what_is_wrong_and_leaves_ready_alone(
    peers: Peers, start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    operator = checking(start_operator)
    cases = {
        "s3-ok": (on_s3("s3-ok", peers), "Reachable", "the write pair writes"),
        "s3-wrong-secret": (on_s3("s3-wrong-secret", peers, read=(peers.reader[0], WRONG_SECRET)),
                            "InvalidCredentials", "read pair (username_read, password_read)"),
        "s3-unknown-key": (on_s3("s3-unknown-key", peers,
                                 read=("AKIAUNKNOWN000000000", peers.reader[1])),
                           "InvalidCredentials", "read pair"),
        "s3-read-only": (on_s3("s3-read-only", peers, write=peers.reader),
                         "AccessDenied", "write pair (username_write, password_write)"),
        "s3-no-bucket": (on_s3("s3-no-bucket", peers, bucket="absent"),
                         "BucketNotFound", "bucket_name"),
        "s3-wrong-region": (on_s3("s3-wrong-region", peers, bucket="archive"),
                            "WrongRegion", "us-west-2"),
        "s3-down": (on_s3("s3-down", peers, url=f"http://127.0.0.1:{free_port()}"),
                    "EndpointUnreachable", "refused the connection"),
        "blob-ok": (on_blob("blob-ok", peers), "Reachable", "container"),
        "blob-wrong-key": (on_blob("blob-wrong-key", peers, key=WRONG_KEY),
                           "InvalidCredentials", "account_name_read, account_key_read"),
        "blob-no-container": (on_blob("blob-no-container", peers, container="absent"),
                              "ContainerNotFound", "container_name"),
        # Azure's own endpoint, made of the account name: no such host here (nor on Azure).
        "blob-default": (on_blob("blob-default", peers, default_endpoint=True),
                         "EndpointUnreachable", "<account_name_read>.blob.core.windows.net"),
    }  # fmt: skip
    for manifest, _, _ in cases.values():
        connectors.apply(manifest)

    for name, (_, reason, said) in cases.items():
        shown = storage_says(connectors, name, reason)
        assert shown["status"] == ("True" if reason == "Reachable" else "False"), (name, shown)
        assert said in shown["message"], (name, shown)
    for name, (_, reason, _) in cases.items():
        connectors.wait_phase(name, "Running")  # warn: the workload runs all the same
        ready = connectors.condition(name, "Ready")
        assert ready is not None and ready["status"] == "True", name
        kind = "Normal" if reason == "Reachable" else "Warning"
        shown_as = STORAGE if reason == "Reachable" else reason
        connectors.wait_event(name, kind, shown_as)
        assert storage_events(connectors, name) == [(kind, shown_as)], name

    probes = peers.s3.client("s3", REGION).list_objects_v2(
        Bucket="orders", Prefix="connector-operator-probe/"
    )
    assert probes.get("KeyCount") == 0, "each probe object is deleted at once"
    metrics = operator.metrics()
    assert 'connector_operator_storage_checks_total{result="AccessDenied",' in metrics
    assert 'result="Reachable",storage_type="AzureStorage"' in metrics
    shows_no_credential(connectors, operator, peers)


def test_with_writing_off_only_the_read_pair_is_checked(
    peers: Peers, start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    checking(start_operator, write="false")
    connectors.apply(on_s3("read-only", peers, write=peers.reader))

    shown = storage_says(connectors, "read-only", "Reachable")

    assert "write" not in shown["message"]


def test_a_revoked_key_flips_the_condition_and_its_restoration_flips_it_back(
    peers: Peers, start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    checking(start_operator, interval_seconds="2")
    connectors.apply(on_s3("orders", peers))
    storage_says(connectors, "orders", "Reachable")
    connectors.wait_phase("orders", "Running")

    peers.s3.revoke(peers.reader[0])
    try:
        revoked = storage_says(connectors, "orders", "InvalidCredentials")
    finally:
        peers.s3.restore(peers.reader[0])
    assert "read pair" in revoked["message"]
    assert connectors.status("orders")["phase"] == "Running"
    storage_says(connectors, "orders", "Reachable")

    connectors.wait_event("orders", "Normal", STORAGE)
    assert storage_events(connectors, "orders") == [
        ("Normal", STORAGE),
        ("Warning", "InvalidCredentials"),
        ("Normal", STORAGE),
    ]


def checks_made(operator: Operator) -> float:
    prefix = "connector_operator_storage_checks_total{"
    return sum(float(line.rsplit(" ", 1)[1])
               for line in operator.metrics().splitlines() if line.startswith(prefix))  # fmt: skip


def test_a_deleted_connectors_storage_is_no_longer_checked(
    peers: Peers, start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    operator = checking(start_operator, interval_seconds="1")
    connectors.apply(on_s3("orders", peers))
    storage_says(connectors, "orders", "Reachable")
    eventually(lambda: checks_made(operator) >= 2, what="a second check, by the timer")

    connectors.kubectl("delete", "connector", "orders", "--wait=true")
    time.sleep(2)  # a check in flight at the deletion ends
    before = checks_made(operator)
    time.sleep(5)  # about five intervals: a check still scheduled would have run
    assert checks_made(operator) == before, "the storage of a deleted Connector is checked"


def test_a_rotated_secret_or_an_edit_is_checked_at_once(
    peers: Peers, start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    checking(start_operator, interval_seconds="3600")  # no timer helps within the test
    connectors.apply(secret_manifest("orders-keys", s3_pairs(peers.reader, peers.reader)))
    connectors.apply(on_s3_by_secret("orders", peers, "orders-keys"))
    denied = storage_says(connectors, "orders", "AccessDenied")
    assert "write pair" in denied["message"]

    connectors.apply(secret_manifest("orders-keys", s3_pairs(peers.reader, peers.writer)))
    storage_says(connectors, "orders", "Reachable")

    edited = on_s3_by_secret("orders", peers, "orders-keys")
    edited["spec"]["storage_config"]["bucket_name"] = "absent"
    connectors.apply(edited)
    missing = storage_says(connectors, "orders", "BucketNotFound")
    assert missing["observedGeneration"] == connectors.get("orders")["metadata"]["generation"]

    connectors.apply(connector("orders"))  # HttpData: no storage of its own
    eventually(lambda: connectors.condition("orders", STORAGE) is None, what="no condition")


def test_enforce_holds_the_workload_until_a_check_passes(
    peers: Peers, start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    checking(start_operator, "enforce", interval_seconds="2")
    connectors.apply(secret_manifest("held-keys", s3_pairs(peers.reader, peers.reader)))
    connectors.apply(on_s3_by_secret("held", peers, "held-keys"))

    storage_says(connectors, "held", "AccessDenied")
    stalled = eventually(lambda: connectors.condition("held", "Stalled"), what="held Stalled")
    assert stalled["reason"] == "StorageUnreachable"
    assert "write pair" in stalled["message"]
    assert connectors.deployment("held") is None, "no workload while the storage fails"

    connectors.apply(secret_manifest("held-keys", s3_pairs(peers.reader, peers.writer)))
    connectors.wait_phase("held", "Running")
    assert connectors.condition("held", "Stalled") is None

    peers.s3.stop()
    try:
        connectors.apply(on_s3("later", peers))
        storage_says(connectors, "later", "EndpointUnreachable")
        assert connectors.deployment("later") is None
    finally:
        peers.s3.start()
    connectors.wait_phase("later", "Running")  # by the next check, with nothing changed


def test_a_hung_storage_delays_no_other_connector(
    peers: Peers, start_operator: Callable[..., Operator], connectors: Connectors
) -> None:
    # One check at a time, and one that cannot end within the test: the hung storage holds
    # the only slot.
    checking(start_operator, concurrency="1", timeout_seconds="60")
    with silent.listening() as hung:
        connectors.apply(on_s3("hung", peers, url=hung.url))
        eventually(lambda: hung.accepted == 1, what="the check of the hung storage to call it")

        connectors.apply(connector("plain"))
        connectors.apply(on_s3("orders", peers))
        for name in ("hung", "plain", "orders"):
            connectors.wait_phase(name, "Running")

        assert hung.accepted == 1, "the hung check is still on its first call, never retried"
        for name in ("hung", "orders"):
            waiting = connectors.condition(name, STORAGE)
            assert waiting is not None, name
            assert (waiting["status"], waiting["reason"]) == ("Unknown", "Checking"), name
