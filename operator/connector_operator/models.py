"""The Connector's data model and validation rules, pure: imports pydantic and stdlib only."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.alias_generators import to_camel

GROUP = "dataspace.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Connector"
PLURAL = "connectors"

ACTION_ANNOTATION = f"{GROUP}/action"


class StorageType(StrEnum):
    """Where the Connector keeps its data: HttpData (none of its own), AmazonS3 or AzureStorage."""

    HTTP_DATA = "HttpData"
    AMAZON_S3 = "AmazonS3"
    AZURE_STORAGE = "AzureStorage"


# Every spec string is length-capped: the API server refuses CEL rules whose estimated cost is
# unbounded, and the estimate grows with the longest string a rule may read.
ConfigValue = Annotated[str, Field(min_length=1, max_length=1024)]
UrlValue = Annotated[str, Field(min_length=1, max_length=2048)]
CredentialValue = Annotated[SecretStr, Field(min_length=1, max_length=1024)]
"""A credential: its repr, str and JSON dump are masked; only get_secret_value() reveals it."""

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class SecretReference(BaseModel):
    """A Secret in the Connector's namespace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of the Secret (a DNS subdomain).",
    )


class StorageConfig(BaseModel):
    """The storage payload of the seed API; which fields apply depends on storage_type.

    All eight credential fields are SecretStr, the user names and account names too, although
    they identify rather than authenticate: an access key id names its AWS account and is half of
    the pair an attacker needs, and the operator treats the eight as one unit (they go to a
    Secret, never into a manifest). One type for all of them means no repr, log line or status
    message can show any, and no code path has to know which half is safe to print. The values
    leave their SecretStr in one place only: `ConnectorSpec.inline_credentials`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    bucket_name: ConfigValue | None = Field(
        default=None, description="Name of the S3 bucket. AmazonS3: required."
    )
    container_name: ConfigValue | None = Field(
        default=None, description="Name of the blob container. AzureStorage: required."
    )
    region: ConfigValue | None = Field(
        default=None,
        description="Region of the storage. AmazonS3: required; AzureStorage: optional.",
    )
    url: UrlValue | None = Field(
        default=None,
        description=(
            "Endpoint, an absolute http or https URL: the S3 endpoint override (AmazonS3: "
            "optional) or the blob service endpoint (AzureStorage: optional)."
        ),
    )
    username_read: CredentialValue | None = Field(
        default=None, description="Access key id for reading. AmazonS3 credential."
    )
    password_read: CredentialValue | None = Field(
        default=None, description="Secret access key for reading. AmazonS3 credential."
    )
    username_write: CredentialValue | None = Field(
        default=None, description="Access key id for writing. AmazonS3 credential."
    )
    password_write: CredentialValue | None = Field(
        default=None, description="Secret access key for writing. AmazonS3 credential."
    )
    account_name_read: CredentialValue | None = Field(
        default=None, description="Storage account name for reading. AzureStorage credential."
    )
    account_key_read: CredentialValue | None = Field(
        default=None, description="Storage account key for reading. AzureStorage credential."
    )
    account_name_write: CredentialValue | None = Field(
        default=None, description="Storage account name for writing. AzureStorage credential."
    )
    account_key_write: CredentialValue | None = Field(
        default=None, description="Storage account key for writing. AzureStorage credential."
    )
    credentials_secret_ref: SecretReference | None = Field(
        default=None,
        description=(
            "A Secret in the Connector's namespace that holds the credentials under their field "
            "names (username_read, password_read, ... or account_name_read, account_key_read, "
            "...). The alternative to inline credentials: give exactly one of the two. "
            "AmazonS3 and AzureStorage only."
        ),
    )


CREDENTIALS_REF = "credentials_secret_ref"

CREDENTIAL_FIELDS: Mapping[StorageType, tuple[str, ...]] = {
    StorageType.HTTP_DATA: (),
    StorageType.AMAZON_S3: ("username_read", "password_read", "username_write", "password_write"),
    StorageType.AZURE_STORAGE: (
        "account_name_read",
        "account_key_read",
        "account_name_write",
        "account_key_write",
    ),
}

REQUIRED_FIELDS: Mapping[StorageType, tuple[str, ...]] = {
    StorageType.HTTP_DATA: (),
    StorageType.AMAZON_S3: ("bucket_name", "region"),
    StorageType.AZURE_STORAGE: ("container_name",),
}

OPTIONAL_FIELDS: Mapping[StorageType, tuple[str, ...]] = {
    StorageType.HTTP_DATA: (),
    StorageType.AMAZON_S3: ("url",),
    StorageType.AZURE_STORAGE: ("url", "region"),
}


def allowed_fields(storage_type: StorageType) -> frozenset[str]:
    """The storage_config fields that a Connector of this storage type may set."""
    names = (
        REQUIRED_FIELDS[storage_type]
        + OPTIONAL_FIELDS[storage_type]
        + CREDENTIAL_FIELDS[storage_type]
    )
    if storage_type is StorageType.HTTP_DATA:
        return frozenset(names)
    return frozenset((*names, CREDENTIALS_REF))


class Reason(StrEnum):
    """The reasons a CEL rule may report, as the API server spells them."""

    REQUIRED = "FieldValueRequired"
    FORBIDDEN = "FieldValueForbidden"
    INVALID = "FieldValueInvalid"


@dataclass(frozen=True, kw_only=True)
class CelRule:
    """A CEL rule of the CRD (x-kubernetes-validations), with the field it reports on."""

    rule: str
    message: str
    field_path: str
    reason: Reason


@dataclass(frozen=True, kw_only=True)
class SpecRule(CelRule):
    """A rule on the spec, written twice, in CEL for the API server and in Python for the operator.

    `messages` overrides `message` for some storage types; the CRD turns it into a
    messageExpression, so the API server and the operator word each failure alike.
    """

    holds: Callable[[StorageType, StorageConfig], bool]
    messages: Mapping[StorageType, str] = field(default_factory=dict)

    def message_for(self, storage_type: StorageType) -> str:
        """The message the API server gives when this rule fails for a spec of this type."""
        return self.messages.get(storage_type, self.message)


def _has(config: StorageConfig, name: str) -> bool:
    return getattr(config, name) is not None


def _cel_has(name: str) -> str:
    return f"has(self.storage_config.{name})"


def _path(name: str) -> str:
    return f".storage_config.{name}"


def _owners(name: str) -> tuple[StorageType, ...]:
    return tuple(t for t in StorageType if name in allowed_fields(t))


def _foreign_field_rule(name: str) -> SpecRule:
    owners = _owners(name)
    strangers = [t for t in StorageType if t not in owners]
    by_type = {
        t: (
            f"storage_config.{name} must not be set: storage_config must be empty for "
            f"storage_type {t}"
            if t is StorageType.HTTP_DATA
            else f"storage_config.{name} is not a field of storage_type {t}"
        )
        for t in strangers
    }
    if len(owners) == 1:
        cel_owner = f"self.storage_type == '{owners[0]}'"
    else:
        cel_owner = "self.storage_type in [{}]".format(", ".join(f"'{t}'" for t in owners))
    if len(strangers) == 1:
        message, messages = by_type[strangers[0]], {}
    else:
        message = "storage_config.{} is a field of storage_type {} only".format(
            name, " or ".join(owners)
        )
        messages = by_type
    return SpecRule(
        rule=f"!{_cel_has(name)} || {cel_owner}",
        message=message,
        messages=messages,
        field_path=_path(name),
        reason=Reason.FORBIDDEN,
        holds=lambda storage_type, config: not _has(config, name) or storage_type in owners,
    )


def _required_rule(storage_type: StorageType, name: str) -> SpecRule:
    return SpecRule(
        rule=f"self.storage_type != '{storage_type}' || {_cel_has(name)}",
        message=f"storage_config.{name} is required for storage_type {storage_type}",
        field_path=_path(name),
        reason=Reason.REQUIRED,
        holds=lambda t, config: t is not storage_type or _has(config, name),
    )


def _credential_given_rule(storage_type: StorageType, name: str) -> SpecRule:
    return SpecRule(
        rule=(
            f"self.storage_type != '{storage_type}' || {_cel_has(CREDENTIALS_REF)}"
            f" || {_cel_has(name)}"
        ),
        message=(
            f"storage_config.{name} is required for storage_type {storage_type} unless "
            f"storage_config.{CREDENTIALS_REF} names a Secret"
        ),
        field_path=_path(name),
        reason=Reason.REQUIRED,
        holds=lambda t, config: (
            t is not storage_type or _has(config, CREDENTIALS_REF) or _has(config, name)
        ),
    )


def _credential_once_rule(storage_type: StorageType, name: str) -> SpecRule:
    return SpecRule(
        rule=(
            f"self.storage_type != '{storage_type}' || !{_cel_has(CREDENTIALS_REF)}"
            f" || !{_cel_has(name)}"
        ),
        message=(
            f"storage_config.{name} and storage_config.{CREDENTIALS_REF} are exclusive: "
            "give credentials inline or by Secret reference, not both"
        ),
        field_path=_path(name),
        reason=Reason.FORBIDDEN,
        holds=lambda t, config: (
            t is not storage_type or not _has(config, CREDENTIALS_REF) or not _has(config, name)
        ),
    )


HTTP_URL_SCHEMES = frozenset({"http", "https"})


def is_http_url(value: str) -> bool:
    """Whether value is an absolute http(s) URL with a host, as the CRD's CEL url rule decides.

    The CEL side parses with Go's url.ParseRequestURI, which refuses control characters and
    blanks where Python's urlsplit quietly strips them, and takes any decimal port. Where the two
    parsers still differ (malformed percent-escapes, a '#' right after the host), Go is the
    stricter one: the API server refuses what this accepts, never the other way round, so the
    operator can always parse a stored Connector.
    """
    if value != value.lstrip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if parts.scheme not in HTTP_URL_SCHEMES or " " in parts.netloc:
        return False
    authority = parts.netloc.rpartition("@")[2]
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return False
        host, port = authority[1:end], authority[end + 1 :]
    else:
        colon = authority.rfind(":")
        host, port = (authority, "") if colon < 0 else (authority[:colon], authority[colon:])
    return host != "" and _OPTIONAL_PORT.fullmatch(port) is not None


_OPTIONAL_PORT = re.compile(r"(:[0-9]*)?")


_CEL_URL = "self.storage_config.url"

URL_RULE = SpecRule(
    rule=(
        f"!has({_CEL_URL}) || (isURL({_CEL_URL}) && url({_CEL_URL}).getScheme() in "
        f"['http', 'https'] && url({_CEL_URL}).getHostname() != '')"
    ),
    message="storage_config.url must be an absolute http or https URL",
    field_path=_path("url"),
    reason=Reason.INVALID,
    holds=lambda _, config: config.url is None or is_http_url(config.url),
)

SPEC_RULES: tuple[SpecRule, ...] = (
    *(_foreign_field_rule(name) for name in StorageConfig.model_fields),
    *(_required_rule(t, name) for t in StorageType for name in REQUIRED_FIELDS[t]),
    *(_credential_given_rule(t, name) for t in StorageType for name in CREDENTIAL_FIELDS[t]),
    *(_credential_once_rule(t, name) for t in StorageType for name in CREDENTIAL_FIELDS[t]),
    URL_RULE,
)
"""Every rule on the spec beyond its schema; the CRD's spec-level x-kubernetes-validations."""


def broken_rules(storage_type: StorageType, config: StorageConfig) -> list[str]:
    """The messages of the spec rules that this storage type and configuration break."""
    return [
        rule.message_for(storage_type)
        for rule in SPEC_RULES
        if not rule.holds(storage_type, config)
    ]


class ConnectorSpec(BaseModel):
    """The Connector's configuration: the seed API's payload, field for field."""

    # A validation error's text quotes its input, which holds the credentials.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    storage_type: StorageType = Field(
        description="The kind of storage: HttpData (none), AmazonS3 or AzureStorage."
    )
    storage_config: StorageConfig = Field(
        default_factory=StorageConfig,
        # The API server fills in the default before the CEL rules read storage_config's fields.
        json_schema_extra={"default": {}},
        description=(
            "The storage's location and credentials; its fields depend on storage_type, "
            "and it is empty for HttpData."
        ),
    )

    @model_validator(mode="after")
    def _follow_rules(self) -> Self:
        broken = broken_rules(self.storage_type, self.storage_config)
        if broken:
            raise ValueError("; ".join(broken))
        return self

    def credentials_inline(self) -> bool:
        """Whether the credentials are in the spec itself rather than in a referenced Secret."""
        return (
            bool(CREDENTIAL_FIELDS[self.storage_type])
            and self.storage_config.credentials_secret_ref is None
        )

    def credentials_secret_name(self) -> str | None:
        """The name of the Secret that holds the credentials, in reference mode."""
        ref = self.storage_config.credentials_secret_ref
        return None if ref is None else ref.name

    def non_secret_fields(self) -> dict[str, str]:
        """The storage_config fields that are set and are not credentials, by field name."""
        names = REQUIRED_FIELDS[self.storage_type] + OPTIONAL_FIELDS[self.storage_type]
        values: dict[str, str | None] = {name: getattr(self.storage_config, name) for name in names}
        return {name: value for name, value in values.items() if value is not None}

    def inline_credentials(self) -> dict[str, str]:
        """The credentials given inline, by field name, in clear: the data of the operator's
        Secret. Empty in reference mode and for HttpData."""
        secrets: dict[str, SecretStr | None] = {
            name: getattr(self.storage_config, name)
            for name in CREDENTIAL_FIELDS[self.storage_type]
        }
        return {
            name: value.get_secret_value() for name, value in secrets.items() if value is not None
        }


NAME_MAX_LENGTH = 53
"""63 (a DNS-1035 label) minus len("connector-"), the prefix of every child object's name."""
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NAME_MESSAGE = (
    f"metadata.name must be a DNS label of at most {NAME_MAX_LENGTH} characters (lowercase "
    "letters, digits, '-'), so that the Connector's Deployment, Secret and Service names are valid"
)
NAME_RULE = CelRule(
    rule=(
        f"size(self.metadata.name) <= {NAME_MAX_LENGTH} && "
        f"self.metadata.name.matches('{NAME_PATTERN}')"
    ),
    message=NAME_MESSAGE,
    field_path=".metadata.name",
    reason=Reason.INVALID,
)
"""The CRD's root-level rule on metadata.name."""


def validate_name(name: str) -> None:
    """Raise ValueError unless name is a valid Connector name (the same check as NAME_RULE)."""
    if len(name) > NAME_MAX_LENGTH or re.fullmatch(NAME_PATTERN, name) is None:
        raise ValueError(NAME_MESSAGE)


class Phase(StrEnum):
    """Where the Connector is in its life cycle."""

    STARTING = "Starting"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"


class Action(StrEnum):
    """The values of the dataspace.dev/action annotation."""

    START = "start"
    STOP = "stop"
    FAIL = "fail"


# Kubernetes conventions for what the operator adds: camelCase JSON, snake_case Python.
_KUBERNETES_STYLE = ConfigDict(
    alias_generator=to_camel,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)


class Condition(BaseModel):
    """A kstatus condition."""

    model_config = ConfigDict(**_KUBERNETES_STYLE, extra="ignore")

    type: str = Field(
        description="The condition's type: Ready, Reconciling, Stalled or StorageReachable."
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="Why the condition has its status, in one CamelCase word.")
    message: str = Field(description="Why the condition has its status, in one sentence.")
    last_transition_time: str = Field(
        json_schema_extra={"format": "date-time"},
        description="When status last changed (RFC 3339).",
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this condition was computed from."
    )


class ActionStatus(BaseModel):
    """The start/stop/fail action the operator last acted on."""

    model_config = ConfigDict(**_KUBERNETES_STYLE, extra="ignore")

    requested: str = Field(
        description="The value of the dataspace.dev/action annotation, invalid values included."
    )
    accepted: bool = Field(description="Whether the operator carries the action out.")
    message: str = Field(description="What the operator made of the action, in one sentence.")


class ConnectorStatus(BaseModel):
    """The Connector's observed state."""

    model_config = ConfigDict(**_KUBERNETES_STYLE, extra="ignore")

    phase: Phase | None = Field(
        default=None,
        description="Starting, Running, Restarting, Stopping, Stopped or Failed.",
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation the status was computed from."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description=(
            "Ready, Reconciling and Stalled, after kstatus; StorageReachable for AmazonS3 and "
            "AzureStorage, unless storage checks are off."
        ),
    )
    action: ActionStatus | None = Field(
        default=None, description="The action the operator last acted on."
    )
    config_hash: str | None = Field(
        default=None, description="A hash of the effective configuration applied."
    )
    message: str | None = Field(
        default=None, description="The Connector's state, in one sentence for humans."
    )


class ObjectMeta(BaseModel):
    """The metadata fields of a Kubernetes object that the operator reads."""

    model_config = ConfigDict(**_KUBERNETES_STYLE, extra="ignore")

    name: str
    namespace: str
    uid: str | None = None
    generation: int = 0
    resource_version: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    deletion_timestamp: str | None = None


class Connector(BaseModel):
    """A dataspace Connector: an Eclipse Dataspace Components stack with its storage."""

    model_config = ConfigDict(**_KUBERNETES_STYLE, extra="ignore", hide_input_in_errors=True)

    api_version: str = API_VERSION
    kind: str = KIND
    metadata: ObjectMeta
    spec: ConnectorSpec
    status: ConnectorStatus = Field(default_factory=ConnectorStatus)
