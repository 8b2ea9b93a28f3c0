"""Azurite (Microsoft's Azure Storage emulator) as a real Azure Blob peer for tests: its Blob
service only, as a local Node.js process on 127.0.0.1, tied to its parent by a parent-death
signal, keeping its data in memory.

Azurite comes from tests/storage/build.sh, which installs it from the npm registry into a cache
outside the repository. Each account is a name and a base64 key (Azurite takes a second key per
account as "name:key1:key2"); Azurite then serves those accounts only, not devstoreaccount1:

    with azurite.running(workdir, {"acme": base64.b64encode(b"k" * 32).decode()}) as blob:
        blob.blob_endpoint("acme")               # http://127.0.0.1:<port>/acme (path style)
        blob.create_container("acme", "orders")
        blob.stop()    # the port refuses connections
        blob.start()   # the same port answers again, with the same accounts and containers

Azurite keeps everything in memory, so `start` after `stop` gives a fresh Azurite with the
containers this object made, but not the blobs written since.

An Azurite that does not come up raises AzuriteError with its log tail: tests fail, never skip.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT / "tests" / "cluster") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "cluster"))

import controlplane  # noqa: E402 -- lives beside the go.mod files, not in a package
from tests import peer  # noqa: E402 -- after the path above

PORT_TAKEN = "address already in use"  # Node's EADDRINUSE message, compared in lower case


class AzuriteError(RuntimeError):
    """Azurite failed to install, start or answer, or a set-up call failed; the message says
    why, with the log tail when the process is to blame."""


def binaries() -> Path:
    """The directory of `azurite-blob`, installed first when missing."""
    script = HERE / "build.sh"
    # The install's progress goes to stderr so that a user sees it; the last stdout line is
    # the path.
    out = subprocess.run([str(script)], check=False, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise AzuriteError(f"installing Azurite failed ({script})")
    return Path(out.stdout.strip().splitlines()[-1])


@dataclass
class Azurite:
    """One Azurite Blob service on 127.0.0.1:`port` serving `accounts` (name -> base64 key)."""

    workdir: Path
    bin_dir: Path
    port: int
    accounts: dict[str, str] = field(repr=False)
    process: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0  # seconds from the last launch to Azurite answering
    containers: list[tuple[str, str]] = field(default_factory=list)  # (account, name)

    def blob_endpoint(self, account: str) -> str:
        """The account's Blob endpoint, path style as Azurite serves it on an IP address."""
        return f"http://127.0.0.1:{self.port}/{account}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "azurite.log"

    # -- lifecycle -----------------------------------------------------------------------------
    def launch(self, timeout: float = 60.0) -> None:
        """Starts the process and returns once Azurite answers; no container is made."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Azurite's `#!/usr/bin/env node` keeps the parent-death signal through each exec.
        argv = peer.with_parent("Azurite", [
            str(self.bin_dir / "azurite-blob"),
            "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry",
            "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
        ])  # fmt: skip
        # No --location: Azurite 3.35 refuses it beside --inMemoryPersistence ("not supported
        # when the --location option is set"); its working directory is `workdir` instead.
        accounts = ";".join(f"{name}:{key}" for name, key in self.accounts.items())
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "AZURITE_ACCOUNTS": accounts},
                cwd=self.workdir,
            )
        launched = time.monotonic()
        deadline = launched + timeout
        while not self._answers():
            if not self.alive():
                raise AzuriteError(self._failure("exited"))
            if time.monotonic() > deadline:
                self.stop()
                raise AzuriteError(self._failure(f"did not answer in {timeout:.0f}s"))
            time.sleep(0.1)
        self.started_in = time.monotonic() - launched

    def start(self, timeout: float = 60.0) -> None:
        """After `stop`: Azurite again on the same port, with the accounts and the containers
        that this object made (blobs are gone)."""
        if self.alive():
            return
        self.launch(timeout)
        try:
            for account, name in self.containers:
                self._create(account, name)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 15.0) -> None:
        """Stops Azurite: the port refuses connections until `start`."""
        peer.stop(self.process, timeout)
        self.process = None

    def alive(self) -> bool:
        return peer.alive(self.process)

    def log_tail(self, lines: int = 40) -> str:
        return peer.log_tail(self.log_path, lines)

    def _failure(self, what: str) -> str:
        return peer.failure("Azurite", self.process, self.log_path, what)

    def _answers(self) -> bool:
        # Any HTTP answer will do: an unsigned request gets 403 from a listening Azurite.
        url = f"http://127.0.0.1:{self.port}/"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    # -- what tests call -----------------------------------------------------------------------
    def service(self, account: str) -> BlobServiceClient:
        """A synchronous client of the account, with its key, that never retries."""
        return BlobServiceClient(
            self.blob_endpoint(account),
            credential={"account_name": account, "account_key": self.accounts[account]},
            retry_total=0,
            connection_timeout=5,
            read_timeout=30,
        )

    def create_container(self, account: str, name: str) -> None:
        self._create(account, name)
        self.containers.append((account, name))

    def _create(self, account: str, name: str) -> None:
        with self.service(account) as service, contextlib.suppress(ResourceExistsError):
            service.create_container(name)


def start(
    workdir: Path, accounts: Mapping[str, str], *, timeout: float = 60.0, attempts: int = 3
) -> Azurite:
    """A started Azurite logging to `workdir`/azurite.log. A port taken between its pick and
    Azurite's bind is retried on a new port; any other failure raises AzuriteError at once."""
    if not accounts:
        raise AzuriteError("Azurite needs at least one account")
    bin_dir = binaries()
    for attempt in range(1, attempts + 1):
        azurite = Azurite(workdir, bin_dir, controlplane.free_port(), dict(accounts))
        try:
            azurite.launch(timeout)
        except AzuriteError as error:
            azurite.stop()
            if PORT_TAKEN not in str(error).lower() or attempt == attempts:
                raise
            continue
        except BaseException:
            azurite.stop()
            raise
        return azurite
    raise AssertionError("unreachable: the last attempt returns or raises")


@contextlib.contextmanager
def running(
    workdir: Path, accounts: Mapping[str, str], *, timeout: float = 60.0
) -> Iterator[Azurite]:
    """A started Azurite (see `start`), stopped on exit whatever happens. `workdir` is left in
    place, its log for a failed test to show."""
    azurite = start(workdir, accounts, timeout=timeout)
    try:
        yield azurite
    finally:
        azurite.stop()
