"""The installation's key of config hashes, kept in a Secret of the operator (I/O through kube
only: imports kube, resources and stdlib)."""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from connector_operator.kube import ApiError, ConflictError, Kube, NotFoundError
from connector_operator.resources import MANAGED_BY_LABEL, MANAGER, NAME_LABEL

log = logging.getLogger(__name__)
DATA_KEY = "key"
KEY_BYTES = 32
MIN_KEY_BYTES = 16


class HashKeyError(Exception):
    """The hash key's Secret cannot be read or made; the message names it and says why."""


def _random_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def secret_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/secrets/{name}"


def key_secret(namespace: str, name: str, key: bytes) -> dict[str, Any]:
    """The Secret that holds the key: Opaque, one data key, labelled as the operator's."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGER, NAME_LABEL: MANAGER},
        },
        "type": "Opaque",
        "data": {DATA_KEY: base64.b64encode(key).decode()},
    }


def key_of(secret: Mapping[str, Any], namespace: str, name: str) -> bytes:
    """The key a Secret holds; HashKeyError when it holds none the operator can use.

    No message quotes the Secret's data: it is the key, or something meant to be.
    """
    where = f"Secret {name!r} in namespace {namespace!r}"
    raw = (secret.get("data") or {}).get(DATA_KEY)
    if not isinstance(raw, str) or not raw:
        raise HashKeyError(
            f"{where} has no data key {DATA_KEY!r}: delete it and the operator makes a new one"
        )
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise HashKeyError(f"{where}: data key {DATA_KEY!r} is not base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise HashKeyError(
            f"{where}: the key is {len(key)} bytes long, shorter than {MIN_KEY_BYTES}: delete it "
            "and the operator makes a new one"
        )
    return key


async def ensure_hash_key(
    kube: Kube, namespace: str, name: str, generate: Callable[[], bytes] = _random_key
) -> bytes:
    """The key of config hashes: read from its Secret, which is created on first use.

    Replicas that start together may each try to create it: the one that loses the race (409)
    reads the winner's, so every replica hashes with the same key. TransientError propagates:
    the caller decides whether to retry. The key itself is never logged.
    """
    existing = await _get(kube, namespace, name)
    if existing is not None:
        return key_of(existing, namespace, name)
    key = generate()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a generated hash key must be at least {MIN_KEY_BYTES} bytes long")
    try:
        await kube.create(
            f"/api/v1/namespaces/{namespace}/secrets", key_secret(namespace, name, key), "Secret"
        )
    except NotFoundError:
        raise HashKeyError(
            f"cannot create Secret {name!r} for the hash key: namespace {namespace!r} does not "
            "exist (create it, e.g. kubectl apply -f deploy/namespace.yaml, or set "
            "CONNECTOR_OPERATOR_LEASE_NAMESPACE to the operator's own namespace)"
        ) from None
    except ConflictError:
        # Another replica created it between our GET and our POST: its key wins.
        winner = await _get(kube, namespace, name)
        if winner is None:
            raise HashKeyError(
                f"Secret {name!r} in namespace {namespace!r} was created and deleted while the "
                "operator started; start it again"
            ) from None
        log.info("using the hash key Secret %s/%s another replica created", namespace, name)
        return key_of(winner, namespace, name)
    except ApiError as error:
        raise HashKeyError(
            f"cannot create Secret {name!r} for the hash key in namespace {namespace!r}: {error}"
        ) from None
    log.info("created the hash key Secret %s/%s", namespace, name)
    return key


async def _get(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return await kube.get(secret_path(namespace, name))
    except ApiError as error:
        raise HashKeyError(
            f"cannot read Secret {name!r} of the hash key in namespace {namespace!r}: {error}"
        ) from None
