"""The Azure Blob check: the read pair lists the container and reads a blob, and the write
pair writes and deletes a probe blob (azure-storage-blob aio; no retries, short timeouts;
only error codes are read of a failure)."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob.aio import ContainerClient

from connector_operator.models import StorageType
from connector_operator.storage.target import AzureTarget, endpoint_shown
from connector_operator.storage.verdict import (
    PROBE_PREFIX,
    READ_ALLOWED,
    CheckFailedError,
    Pair,
    Transport,
    Verdict,
    from_code,
    from_transport,
    reachable,
)

AZURE = StorageType.AZURE_STORAGE


async def check_azure(target: AzureTarget, *, write: bool, timeout: float) -> Verdict:
    """The verdict on the container and both pairs (the first failure found)."""
    try:
        async with _client(target, target.read, timeout) as client:
            await _read(client, target)
        if write:
            async with _client(target, target.write, timeout) as client:
                await _write(client, target)
    except CheckFailedError as failed:
        return failed.verdict
    return reachable(AZURE, write)


def _client(target: AzureTarget, pair: tuple[str, str], timeout: float) -> ContainerClient:
    return ContainerClient(
        target.endpoint(pair[0]),
        target.container,
        credential=AzureNamedKeyCredential(*pair),
        retry_total=0,  # a check is repeated later, never retried now
        connection_timeout=timeout,
        read_timeout=timeout,
    )


def _tls(error: BaseException) -> bool:
    """Whether a transport failure was the TLS handshake (the SDK wraps aiohttp's error)."""
    seen: BaseException | None = error
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        if isinstance(seen, ssl.SSLError) or "SSL" in type(seen).__name__:
            return True
        visited.add(id(seen))
        seen = seen.__cause__ or getattr(seen, "inner_exception", None)
    return False


async def _step(
    target: AzureTarget,
    pair: Pair,
    doing: str,
    call: Callable[[], Awaitable[Any]],
    allowed: frozenset[str] = frozenset(),
) -> Any:
    """One call; any failure becomes the verdict, but for the error codes `allowed` (the
    exception's text is never read: Azure's can hold the signed string)."""
    try:
        return await call()
    except HttpResponseError as error:  # ClientAuthenticationError among them
        found = getattr(error, "error_code", None)  # a StorageErrorCode, or a plain str
        code = str(getattr(found, "value", found) or "")
        if isinstance(error, ClientAuthenticationError) and not code:
            code = "InvalidAuthenticationInfo"  # a key that is not base64: refused unsent
        if code in allowed:
            return None
        verdict = from_code(AZURE, pair, doing, code, error.status_code or 0)
        raise CheckFailedError(verdict) from None
    except (ServiceRequestError, ServiceResponseError, OSError, TimeoutError) as error:
        failure = Transport.TLS if _tls(error) else Transport.UNREACHABLE
        raise CheckFailedError(from_transport(endpoint_shown(target, pair), failure)) from None


async def _read(client: ContainerClient, target: AzureTarget) -> None:
    async def first_page() -> list[str]:
        async for page in client.list_blobs(results_per_page=1).by_page():
            return [blob.name async for blob in page]
        return []

    names = await _step(target, Pair.READ, "list the container", first_page)
    for name in names[:1]:

        def first_byte(name: str = name) -> Awaitable[bytes]:
            return _read_first_byte(client, name)

        await _step(target, Pair.READ, "read a blob", first_byte, READ_ALLOWED)


async def _read_first_byte(client: ContainerClient, name: str) -> bytes:
    downloader = await client.download_blob(name, offset=0, length=1)
    return await downloader.readall()


async def _write(client: ContainerClient, target: AzureTarget) -> None:
    name = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    await _step(
        target, Pair.WRITE, f"write a probe blob ({PROBE_PREFIX}...)",
        lambda: client.upload_blob(name, b"", overwrite=True),
    )  # fmt: skip
    await _step(target, Pair.WRITE, "delete its probe blob", lambda: client.delete_blob(name))
