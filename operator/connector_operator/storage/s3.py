"""The S3 check: the read pair lists the bucket and reads an object, the bucket's real region
is compared with `region`, and the write pair writes and deletes a probe object (aiobotocore,
over the shared clients of `s3_clients`; one attempt, short timeouts; only error codes are read
of a failure)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    SSLError,
)

from connector_operator.models import StorageType
from connector_operator.storage.s3_clients import S3Clients, signing_as
from connector_operator.storage.target import S3Target, endpoint_shown
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
    region_of,
    wrong_region,
)

S3 = StorageType.AMAZON_S3


async def check_s3(clients: S3Clients, target: S3Target, *, write: bool) -> Verdict:
    """The verdict on the bucket and both pairs (the first failure found)."""
    try:
        async with clients.using(target) as client:
            with signing_as(target.read):
                await _read(client, target)
            if write:
                with signing_as(target.write):
                    await _write(client, target)
    except CheckFailedError as failed:
        return failed.verdict
    return reachable(S3, write)


async def _step(
    target: S3Target,
    pair: Pair,
    doing: str,
    call: Callable[[], Awaitable[Any]],
    allowed: frozenset[str] = frozenset(),
) -> Any:
    """One call; any failure becomes the verdict, but for the error codes `allowed` (the
    exception's text is never read: real S3 error bodies can quote the access key id)."""
    try:
        return await call()
    except ClientError as error:
        answer = error.response or {}
        code = str((answer.get("Error") or {}).get("Code") or "")
        if code in allowed:
            return None
        status = int((answer.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
        raise CheckFailedError(from_code(S3, pair, doing, code, status)) from None
    except (BotoCoreError, OSError, TimeoutError) as error:
        failure = Transport.TLS if isinstance(error, SSLError) else Transport.UNREACHABLE
        raise CheckFailedError(from_transport(endpoint_shown(target), failure)) from None


async def _read(client: Any, target: S3Target) -> None:
    bucket = target.bucket
    listed = await _step(
        target, Pair.READ, "list the bucket",
        lambda: client.list_objects_v2(Bucket=bucket, MaxKeys=1),
    )  # fmt: skip
    for item in (listed.get("Contents") or ())[:1]:
        key = str(item["Key"])

        def first_byte(key: str = key) -> Awaitable[bytes]:
            return _read_first_byte(client, bucket, key)

        await _step(target, Pair.READ, "read an object", first_byte, READ_ALLOWED)
    actual = await _region(client, target, listed)
    if actual is not None and actual != target.region:
        raise CheckFailedError(wrong_region(target.region, actual))


async def _read_first_byte(client: Any, bucket: str, key: str) -> bytes:
    answer = await client.get_object(Bucket=bucket, Key=key, Range="bytes=0-0")
    async with answer["Body"] as body:
        return bytes(await body.read())


async def _region(client: Any, target: S3Target, listed: dict[str, Any]) -> str | None:
    """The bucket's region: GetBucketLocation, else the x-amz-bucket-region header S3 sends;
    None when neither tells (a read pair may lack s3:GetBucketLocation). An empty location
    is us-east-1 on AWS's own endpoint; at a `url` (MinIO, say) it may mean no region at
    all, so there only the header counts."""

    async def locate() -> str | None:
        try:
            located = await client.get_bucket_location(Bucket=target.bucket)
        except ClientError:
            return None
        constraint = located.get("LocationConstraint")
        if not constraint and target.url:
            return None
        return region_of(constraint)

    found: str | None = await _step(target, Pair.READ, "locate the bucket", locate)
    if found is not None:
        return found
    headers = (listed.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    header = headers.get("x-amz-bucket-region")
    return str(header) if header else None


async def _write(client: Any, target: S3Target) -> None:
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    await _step(
        target, Pair.WRITE, f"write a probe object ({PROBE_PREFIX}...)",
        lambda: client.put_object(Bucket=target.bucket, Key=key, Body=b""),
    )  # fmt: skip
    await _step(
        target, Pair.WRITE, "delete its probe object",
        lambda: client.delete_object(Bucket=target.bucket, Key=key),
    )  # fmt: skip
