"""The shapes the gateway serves, as pydantic models: the one source of its OpenAPI document
(pure: pydantic and the models only)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.alias_generators import to_camel

from connector_operator.models import StorageType


class PlatformStatus(StrEnum):
    """Where a Connector stands, in the platform's words."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    RESTARTING = "RESTARTING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


class ConnectorEntry(BaseModel):
    """One Connector as the platform's dashboard reads it: never a credential."""

    # The platform's keys are camelCase: storageType, bucketName, azureContainerName.
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )

    status: PlatformStatus = Field(description="Where the Connector stands.")
    storage_type: StorageType = Field(description="HttpData, AmazonS3 or AzureStorage.")
    bpn: str | None = Field(
        default=None, description="The Business Partner Number of its runtime, where it has one."
    )
    bucket_name: str | None = Field(default=None, description="AmazonS3: the bucket.")
    region: str | None = Field(default=None, description="The storage's region, when given.")
    azure_container_name: str | None = Field(
        default=None, description="AzureStorage: the blob container."
    )
    message: str | None = Field(
        default=None, description="The Connector's state in one sentence, once reconciled."
    )


class ConnectorList(RootModel[dict[str, ConnectorEntry]]):
    """The caller's Connectors, keyed by name."""


class FieldProblem(BaseModel):
    """One field of a request that is wrong."""

    loc: list[str] = Field(description='Where: ["body", "storage_config", "bucket_name"].')
    msg: str = Field(description="What is wrong, without quoting the value.")
    type: str = Field(description="The kind of problem: value_error.")


class ValidationProblem(BaseModel):
    """422: every field of the payload (or the name) that is wrong."""

    detail: list[FieldProblem]


class Problem(BaseModel):
    """Any other error, in one sentence."""

    detail: str


class Accepted(BaseModel):
    """202 for a deletion: the Connector is going away."""

    detail: str


class ConnectorEvent(BaseModel):
    """One push of the live-update stream (the `data` of a Server-Sent Event `connector`)."""

    type: Literal["ADDED", "MODIFIED", "DELETED"] = Field(
        description="ADDED for what exists when the stream opens and what is created later."
    )
    name: str
    connector: ConnectorEntry | None = Field(
        default=None, description="The entry as it is now; absent for DELETED."
    )
