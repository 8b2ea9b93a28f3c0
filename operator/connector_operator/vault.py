"""The Connectors' vault folders, kept in step with what their runtimes read: entries written
through HashiCorp Vault's KV v2 HTTP API, stale ones removed, a deleted Connector's folder
emptied (I/O: HTTP to the vault).

EDC's HashiCorp vault client reads a secret from the field `content` of a KV v2 entry; so the
operator writes `{"content": <value>}`. Values never reach logs or errors: only aliases do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from connector_operator.edc.manifests import vault_folder
from connector_operator.informer import Key

log = logging.getLogger(__name__)
FIELD = "content"


class VaultError(Exception):
    """The vault refused or could not answer; the message names the path, never a value."""


class Vault:
    """A client of one KV v2 mount (`secret_path` is `/v1/<mount>`, as EDC spells it)."""

    def __init__(self, url: str, secret_path: str, token: str, timeout: float = 10.0) -> None:
        self.url, self.mount, self._token = url.rstrip("/"), secret_path.rstrip("/"), token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = f"{self.url}{self.mount}/{path}"
        headers = {"X-Vault-Token": self._token}
        try:
            async with self._session.request(method, url, json=body, headers=headers) as response:
                if response.status == 404:
                    return None
                if response.status >= 300:
                    raise VaultError(f"{method} {self.mount}/{path}: HTTP {response.status}")
                return await response.json() if response.status != 204 else {}
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as error:
            raise VaultError(f"{method} {self.mount}/{path}: {type(error).__name__}") from None

    async def read(self, path: str) -> str | None:
        body = await self._request("GET", f"data/{path}")
        data = ((body or {}).get("data") or {}).get("data") or {}
        value = data.get(FIELD)
        return value if isinstance(value, str) else None

    async def write(self, path: str, value: str) -> None:
        await self._request("POST", f"data/{path}", {"data": {FIELD: value}})

    async def delete(self, path: str) -> None:
        """Removes the entry with all its versions."""
        await self._request("DELETE", f"metadata/{path}")

    async def list(self, folder: str) -> list[str]:
        body = await self._request("LIST", f"metadata/{folder}")
        keys = ((body or {}).get("data") or {}).get("keys") or []
        return [k for k in keys if isinstance(k, str)]


def _fingerprint(folder: str, wanted: Mapping[str, str]) -> str:
    """Held in memory only, to skip a converged folder."""
    canonical = json.dumps([folder, sorted(wanted.items())]).encode()
    return hashlib.sha256(canonical).hexdigest()


# The entry, in each folder, that lists the aliases the operator wrote there: the only ones it
# ever removes. The folder is shared: the identity provisioning writes the STS client secret
# there, and a runtime may keep entries of its own.
MANAGED = "connector-operator-managed"


class Folders:
    """One vault folder per Connector: `<prefix>/<namespace>/<name>`.

    A converged folder is read again after `recheck_seconds` (the resync period), so an entry
    deleted or changed by hand is restored without a restart of the operator.
    """

    def __init__(
        self,
        vault: Vault,
        prefix: str,
        recheck_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.vault, self.prefix = vault, prefix
        self.recheck_seconds, self.clock = recheck_seconds, clock
        self._converged: dict[Key, tuple[str, float]] = {}

    def folder(self, key: Key) -> str:
        return vault_folder(self.prefix, *key)

    async def _managed(self, folder: str) -> set[str]:
        raw = await self.vault.read(f"{folder}/{MANAGED}")
        try:
            listed = json.loads(raw) if raw else []
        except json.JSONDecodeError:
            listed = []
        return {a for a in listed if isinstance(a, str)}

    async def converge(self, key: Key, wanted: Mapping[str, str]) -> list[str]:
        """Writes the entries that differ and removes those the operator wrote before but no
        longer wants (a renamed Azure account); returns the aliases it changed."""
        folder = self.folder(key)
        fingerprint = _fingerprint(folder, wanted)
        held = self._converged.get(key)
        if (
            held is not None
            and held[0] == fingerprint
            and self.clock() - held[1] < self.recheck_seconds
        ):
            return []
        managed = await self._managed(folder)
        changed = []
        for alias, value in sorted(wanted.items()):
            if await self.vault.read(f"{folder}/{alias}") != value:
                await self.vault.write(f"{folder}/{alias}", value)
                changed.append(alias)
        for alias in sorted(managed - set(wanted)):
            await self.vault.delete(f"{folder}/{alias}")
            changed.append(alias)
        if managed != set(wanted):
            await self.vault.write(f"{folder}/{MANAGED}", json.dumps(sorted(wanted)))
        self._converged[key] = (fingerprint, self.clock())
        if changed:
            log.info("vault folder %s: wrote or removed %s", folder, ", ".join(changed))
        return changed

    async def remove(self, key: Key) -> None:
        """Removes what the operator wrote into a deleted Connector's folder."""
        self._converged.pop(key, None)
        folder = self.folder(key)
        for alias in sorted(await self._managed(folder)):
            await self.vault.delete(f"{folder}/{alias}")
        await self.vault.delete(f"{folder}/{MANAGED}")
        log.info("vault folder %s: the operator's entries removed", folder)

    async def present(self, namespaces: tuple[str, ...]) -> list[Key]:
        """The Connectors whose folder holds the operator's list, in `namespaces` (all when
        empty)."""
        found = []
        for ns in namespaces or [n.rstrip("/") for n in await self.vault.list(self.prefix)]:
            for name in await self.vault.list(f"{self.prefix}/{ns}"):
                if name.endswith("/") and MANAGED in await self.vault.list(
                    f"{self.prefix}/{ns}/{name.rstrip('/')}"
                ):
                    found.append((ns, name.rstrip("/")))
        return found
