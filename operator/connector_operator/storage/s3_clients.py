"""S3 clients shared by all checks, each request signed with the pair of the check that sends
it (aiobotocore).

Making an aiobotocore client costs about 8 ms of CPU, and its first calls evaluate S3's
endpoint rules afresh: a check with a client per pair cost about 100 ms of CPU, a check over a
shared client about 10 ms (measured against moto; `make bench` reports the operator's share).
So there is one client per endpoint and region, and each request carries its own credentials:
botocore signs a request with `request_credentials` from its signing context when present,
and a `before-sign` handler puts there the pair that `signing_as` holds for the calling task.

The pair lives in a context variable, which each asyncio task has its own copy of, so
concurrent checks cannot sign with each other's pair. A client's own credentials are a
placeholder no storage accepts, and a request with no pair in its context is not sent at all:
nothing is ever signed with ambient credentials (an instance role, the environment).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioCredentials
from aiobotocore.session import AioSession

from connector_operator.storage.target import S3Target

PLACEHOLDER = "connector-operator-no-pair"  # the clients' own credentials: refused everywhere
KEPT = 16  # clients kept for reuse: one per endpoint and region in use

_PAIR: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "connector_operator_s3_pair", default=None
)


class MissingPairError(RuntimeError):
    """A request was about to be signed without a check's pair."""


@contextlib.contextmanager
def signing_as(pair: tuple[str, str]) -> Iterator[None]:
    """Requests sent by this task inside the block are signed with `pair`."""
    token = _PAIR.set(pair)
    try:
        yield
    finally:
        _PAIR.reset(token)


def _sign_with_the_checks_pair(request: Any, **_: Any) -> None:
    pair = _PAIR.get()
    if pair is None:
        raise MissingPairError("an S3 request outside signing_as")
    signing = request.context.setdefault("signing", {})
    signing["request_credentials"] = AioCredentials(pair[0], pair[1])


@dataclass
class _Held:
    context: Any  # the client's async context manager, exited to close it
    client: Any
    users: int = 0


class S3Clients:
    """The shared clients, made on first use. At most `KEPT` stay open while unused: the
    least recently used idle ones are closed when more are made."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._session = AioSession()
        self._held: OrderedDict[tuple[str | None, str], _Held] = OrderedDict()

    @contextlib.asynccontextmanager
    async def using(self, target: S3Target) -> AsyncIterator[Any]:
        """The client for the target's endpoint and region, held for the block."""
        key = (target.url, target.region)
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = await self._make(target)
        self._held.move_to_end(key)
        held.users += 1
        await self._close_idle()  # this one is in use: never among them
        try:
            yield held.client
        finally:
            held.users -= 1

    async def _make(self, target: S3Target) -> _Held:
        config = AioConfig(
            retries={"total_max_attempts": 1},  # a check is repeated later, never retried now
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            s3={"addressing_style": "path"} if target.url else None,
        )
        context = self._session.create_client(
            "s3",
            region_name=target.region,
            endpoint_url=target.url,
            aws_access_key_id=PLACEHOLDER,
            aws_secret_access_key=PLACEHOLDER,
            config=config,
        )
        client = await context.__aenter__()
        client.meta.events.register("before-sign.s3", _sign_with_the_checks_pair)
        return _Held(context, client)

    async def _close_idle(self) -> None:
        idle = [key for key, held in self._held.items() if held.users == 0]
        # Taken out before the first await: a client closed below cannot be handed out.
        closing = [self._held.pop(key) for key in idle[: max(0, len(self._held) - KEPT)]]
        for held in closing:
            await held.context.__aexit__(None, None, None)

    async def close(self) -> None:
        held, self._held = list(self._held.values()), OrderedDict()
        for each in held:
            await each.context.__aexit__(None, None, None)

    async def __aenter__(self) -> S3Clients:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
