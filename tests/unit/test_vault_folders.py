"""The operator's vault client and folders against the KV v2 stand-in of the test support
(tests/edc/vault.py, a real HTTP server on loopback): what is written, what is removed and
what is left alone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from connector_operator.vault import MANAGED, Folders, Vault, VaultError
from tests.edc.vault import Vault as StandIn

T = TypeVar("T")
KEY = ("team-a", "orders")
FOLDER = "connectors/team-a/orders"


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    with StandIn("the-token") as vault:
        yield vault


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def folders(
    stand_in: StandIn,
    token: str = "the-token",  # noqa: S107 -- the stand-in's test token
    clock: list[float] | None = None,
) -> Folders:
    now = clock if clock is not None else [0.0]
    return Folders(Vault(stand_in.url, "/v1/secret", token), "connectors", 60, lambda: now[0])


def contents(stand_in: StandIn) -> dict[str, str]:
    return {
        p.removeprefix(FOLDER + "/"): d["content"]
        for p, d in stand_in.entries().items()
        if p.startswith(FOLDER + "/")
    }


async def converge(f: Folders, wanted: dict[str, str]) -> list[str]:
    try:
        return await f.converge(KEY, wanted)
    finally:
        await f.vault.close()


def test_entries_are_written_as_edc_reads_them(stand_in: StandIn) -> None:
    assert run(converge(folders(stand_in), {"a-key1": "v1", "b": "v2"})) == ["a-key1", "b"]
    assert contents(stand_in) == {"a-key1": "v1", "b": "v2", MANAGED: json.dumps(["a-key1", "b"])}


def test_only_what_the_operator_wrote_is_removed(stand_in: StandIn) -> None:
    stand_in.put_edc_secret(f"{FOLDER}/sts-client-secret", "from the identity provisioning")
    run(converge(folders(stand_in), {"old-key1": "v", "kept": "k"}))
    assert run(converge(folders(stand_in), {"new-key1": "v", "kept": "k"})) == [
        "new-key1",
        "old-key1",
    ]
    found = contents(stand_in)
    assert "old-key1" not in found and found["new-key1"] == "v"
    assert found["sts-client-secret"] == "from the identity provisioning"


def test_a_converged_folder_is_read_again_after_the_recheck_period(stand_in: StandIn) -> None:
    clock = [0.0]
    f = folders(stand_in, clock=clock)

    async def scenario() -> tuple[list[str], list[str]]:
        await f.converge(KEY, {"a": "1"})
        stand_in.put_edc_secret(f"{FOLDER}/a", "changed by hand")
        soon = await f.converge(KEY, {"a": "1"})
        clock[0] = 61
        later = await f.converge(KEY, {"a": "1"})
        await f.vault.close()
        return soon, later

    soon, later = run(scenario())
    assert soon == [] and later == ["a"] and contents(stand_in)["a"] == "1"


def test_remove_leaves_foreign_entries_and_present_finds_the_operators_folders(
    stand_in: StandIn,
) -> None:
    f = folders(stand_in)

    async def scenario() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        await f.converge(KEY, {"a": "1"})
        await f.converge(("team-b", "other"), {"a": "2"})
        stand_in.put_edc_secret("connectors/team-c/foreign/x", "not ours")
        before = await f.present(())
        await f.remove(KEY)
        after = await f.present(("team-a",))
        await f.vault.close()
        return before, after

    before, after = run(scenario())
    assert sorted(before) == [("team-a", "orders"), ("team-b", "other")]
    assert after == []
    assert stand_in.entries().keys() >= {"connectors/team-b/other/a", "connectors/team-c/foreign/x"}


def test_a_wrong_token_is_an_error_that_names_the_path_not_the_value(stand_in: StandIn) -> None:
    with pytest.raises(VaultError) as error:
        run(converge(folders(stand_in, token="wrong"), {"a": "secret-value-1"}))  # noqa: S106
    assert "403" in str(error.value) and "secret-value-1" not in str(error.value)
