"""What a storage check found, in the StorageReachable condition's words (pure: stdlib only).

A check calls the storage with the read pair (list and read) and the write pair (write a probe
object and delete it); each call either succeeds or fails with an error code, an HTTP status or
a transport failure. These functions turn that into one reason and one sentence that names the
pair and the cause, and never a value: error bodies of real services can quote the access key
id or the string they signed, so the code is all that is read of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from connector_operator.models import StorageType

PROBE_PREFIX = "connector-operator-probe/"
"""Where the write pair's probe object goes (deleted at once): a fixed, documented prefix."""


class Reason(StrEnum):
    REACHABLE = "Reachable"
    INVALID_CREDENTIALS = "InvalidCredentials"
    ACCESS_DENIED = "AccessDenied"
    BUCKET_NOT_FOUND = "BucketNotFound"
    CONTAINER_NOT_FOUND = "ContainerNotFound"
    WRONG_REGION = "WrongRegion"
    ENDPOINT_UNREACHABLE = "EndpointUnreachable"
    TLS_ERROR = "TLSError"
    CHECK_FAILED = "CheckFailed"  # the check itself broke: the condition is Unknown


class Pair(StrEnum):
    READ = "read"
    WRITE = "write"


class Transport(StrEnum):
    """A failure before any answer of the storage."""

    UNREACHABLE = "unreachable"  # refused, unresolvable, or no answer in time
    TLS = "tls"


PAIR_FIELDS = {
    (StorageType.AMAZON_S3, Pair.READ): "username_read, password_read",
    (StorageType.AMAZON_S3, Pair.WRITE): "username_write, password_write",
    (StorageType.AZURE_STORAGE, Pair.READ): "account_name_read, account_key_read",
    (StorageType.AZURE_STORAGE, Pair.WRITE): "account_name_write, account_key_write",
}

S3_CODES = {
    "InvalidAccessKeyId": Reason.INVALID_CREDENTIALS,
    "SignatureDoesNotMatch": Reason.INVALID_CREDENTIALS,
    "InvalidToken": Reason.INVALID_CREDENTIALS,
    "ExpiredToken": Reason.INVALID_CREDENTIALS,
    "AccessDenied": Reason.ACCESS_DENIED,
    "AllAccessDisabled": Reason.ACCESS_DENIED,
    "NoSuchBucket": Reason.BUCKET_NOT_FOUND,
    # AWS answers a request signed for another region with these.
    "AuthorizationHeaderMalformed": Reason.WRONG_REGION,
    "PermanentRedirect": Reason.WRONG_REGION,
    "IllegalLocationConstraintException": Reason.WRONG_REGION,
}
AZURE_CODES = {
    "AuthenticationFailed": Reason.INVALID_CREDENTIALS,  # Azure: the key does not match
    "AuthorizationFailure": Reason.INVALID_CREDENTIALS,  # Azurite: the key does not match
    "InvalidAuthenticationInfo": Reason.INVALID_CREDENTIALS,
    "ResourceNotFound": Reason.INVALID_CREDENTIALS,  # Azurite: an account it does not know
    "AuthorizationPermissionMismatch": Reason.ACCESS_DENIED,
    "InsufficientAccountPermissions": Reason.ACCESS_DENIED,
    "ContainerNotFound": Reason.CONTAINER_NOT_FOUND,
}
# Answers to reading one object that prove the read was allowed: it went away between the
# listing and the read, or it is empty (a probe object of another check, say).
READ_ALLOWED = frozenset({"NoSuchKey", "BlobNotFound", "InvalidRange"})
SAID = {
    Reason.INVALID_CREDENTIALS: "was not accepted: the key is unknown or does not match",
    Reason.ACCESS_DENIED: "was refused",
}


@dataclass(frozen=True)
class Verdict:
    reason: Reason
    message: str

    @property
    def reachable(self) -> bool:
        return self.reason is Reason.REACHABLE


class CheckFailedError(Exception):
    """A step of a check failed; it carries the verdict (its text is the reason only)."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason.value)
        self.verdict = verdict


def reachable(storage_type: StorageType, writes: bool) -> Verdict:
    what = "bucket" if storage_type is StorageType.AMAZON_S3 else "container"
    done = "lists and reads the " + what
    if writes:
        done += f", and the write pair writes to it (a probe under {PROBE_PREFIX})"
    return Verdict(Reason.REACHABLE, f"The read pair {done}.")


def from_code(storage_type: StorageType, pair: Pair, doing: str, code: str, status: int) -> Verdict:
    """The verdict for a call that the storage answered with an error `code` (or, without a
    body, only `status`)."""
    codes = S3_CODES if storage_type is StorageType.AMAZON_S3 else AZURE_CODES
    reason = codes.get(code) or _by_status(storage_type, status)
    fields = PAIR_FIELDS[(storage_type, pair)]
    if reason in SAID:
        text = f"The {pair} pair ({fields}) {SAID[reason]} when it tried to {doing} ({code})."
    elif reason is Reason.WRONG_REGION:
        text = f"The storage says the bucket is in another region than `region` ({code})."
    elif reason in (Reason.BUCKET_NOT_FOUND, Reason.CONTAINER_NOT_FOUND):
        what = "bucket" if reason is Reason.BUCKET_NOT_FOUND else "container"
        text = f"The storage has no such {what} (`{what}_name`) ({code})."
    elif reason is Reason.ACCESS_DENIED:
        text = f"The storage refused to let the {pair} pair {doing}: {code or status}."
    else:
        text = (
            f"The storage answered {code or status} when the {pair} pair tried to {doing}; "
            "the check runs again at the next interval."
        )
    return Verdict(reason, text)


def _by_status(storage_type: StorageType, status: int) -> Reason:
    if status == 404:
        s3 = storage_type is StorageType.AMAZON_S3
        return Reason.BUCKET_NOT_FOUND if s3 else Reason.CONTAINER_NOT_FOUND
    if status == 301:
        return Reason.WRONG_REGION
    if status == 401:
        return Reason.INVALID_CREDENTIALS
    if status == 403:
        return Reason.ACCESS_DENIED
    return Reason.CHECK_FAILED  # an answer no reason covers (a 500, a 503): not known


def wrong_region(configured: str, actual: str) -> Verdict:
    return Verdict(
        Reason.WRONG_REGION,
        f"The bucket is in {actual}, not in {configured} (`region`).",
    )


def shown(url: str) -> str:
    """An endpoint as a message may show it: scheme, host and port (a URL's user part, if
    someone put one there, is a credential)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def from_transport(endpoint: str, failure: Transport) -> Verdict:
    """`endpoint` as `target.endpoint_shown` names it."""
    if failure is Transport.TLS:
        return Verdict(
            Reason.TLS_ERROR,
            f"The TLS handshake with the endpoint {endpoint} failed: a certificate that is "
            "not trusted, or not TLS at all.",
        )
    return Verdict(
        Reason.ENDPOINT_UNREACHABLE,
        f"The endpoint {endpoint} refused the connection, is unknown, or did not answer in time.",
    )


def check_failed(kind: str) -> Verdict:
    """A check that ended in an error no reason covers; `kind` is the error's type name (its
    text is not shown: it could quote what was sent)."""
    return Verdict(
        Reason.CHECK_FAILED,
        f"The storage check could not finish ({kind}); it runs again at the next interval.",
    )


def region_of(location: str | None) -> str:
    """S3's GetBucketLocation: None or "" is us-east-1, and "EU" the old name of eu-west-1."""
    if not location:
        return "us-east-1"
    return "eu-west-1" if location == "EU" else location
