"""What a storage check calls: the bucket or container of a Connector's spec, its endpoint and
the read and write pairs, resolved from the credentials (inline or the referenced Secret's);
pure: models and stdlib only, so that the client libraries are imported only once a check
needs them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from connector_operator.models import ConnectorSpec, StorageType
from connector_operator.storage.verdict import Pair, shown


@dataclass(frozen=True, repr=False)
class S3Target:
    bucket: str
    region: str
    url: str | None
    read: tuple[str, str]  # access key id, secret access key
    write: tuple[str, str]

    def __repr__(self) -> str:  # a target holds credentials: its repr shows none
        return f"S3Target(bucket={self.bucket!r}, region={self.region!r}, url={self.url!r})"


@dataclass(frozen=True, repr=False)
class AzureTarget:
    container: str
    url: str | None  # the blob service endpoint; None: https://<account>.blob.core.windows.net
    read: tuple[str, str]  # account name, account key
    write: tuple[str, str]

    def endpoint(self, account: str) -> str:
        return self.url or f"https://{account}.blob.core.windows.net"

    def __repr__(self) -> str:
        return f"AzureTarget(container={self.container!r}, url={self.url!r})"


Target = S3Target | AzureTarget


def target_of(spec: ConnectorSpec, credentials: Mapping[str, str]) -> Target | None:
    """The storage to check, or None when there is none (HttpData) or a credential is missing
    (the reconcile path reports that on its own)."""
    config = spec.storage_config
    try:
        if spec.storage_type is StorageType.AMAZON_S3 and config.bucket_name and config.region:
            return S3Target(
                bucket=config.bucket_name,
                region=config.region,
                url=config.url,
                read=(credentials["username_read"], credentials["password_read"]),
                write=(credentials["username_write"], credentials["password_write"]),
            )
        if spec.storage_type is StorageType.AZURE_STORAGE and config.container_name:
            return AzureTarget(
                container=config.container_name,
                url=config.url,
                read=(credentials["account_name_read"], credentials["account_key_read"]),
                write=(credentials["account_name_write"], credentials["account_key_write"]),
            )
    except KeyError:
        return None
    return None


def endpoint_of(target: Target) -> str:
    """The endpoint the read pair calls first."""
    if isinstance(target, S3Target):
        return target.url or f"https://s3.{target.region}.amazonaws.com"
    return target.endpoint(target.read[0])


def endpoint_shown(target: Target, pair: Pair = Pair.READ) -> str:
    """The endpoint as a message names it, with the field it comes from. Azure's default
    endpoint is made of the account name, a credential field: only its shape is shown."""
    if target.url:
        return f"{shown(target.url)} (`url`)"
    if isinstance(target, S3Target):
        return f"{endpoint_of(target)} (the default for `region`)"
    return f"https://<account_name_{pair}>.blob.core.windows.net (the default without `url`)"


def fingerprint(target: Target) -> str:
    """What identifies a check's input, credentials included: a verdict holds for the target
    it was found for, and a changed field or a rotated key asks for a new check. Unkeyed, so
    it is held in memory only, never written anywhere."""
    if isinstance(target, S3Target):
        parts: tuple[str | None, ...] = ("s3", target.bucket, target.region, target.url)
    else:
        parts = ("azure", target.container, target.url)
    parts += (*target.read, *target.write)
    joined = "\x00".join("" if p is None else p for p in parts)
    return hashlib.sha256(joined.encode()).hexdigest()
