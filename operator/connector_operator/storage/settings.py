"""How the operator checks storage, installation-wide (pure: stdlib only; `config` parses the
CONNECTOR_OPERATOR_STORAGE_CHECK* variables into it)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    ENFORCE = "enforce"  # a Connector whose storage fails does not start its workload
    WARN = "warn"  # the condition says it; Ready and the workload are unaffected
    OFF = "off"  # no check, no condition


@dataclass(frozen=True)
class StorageCheckSettings:
    mode: Mode = Mode.WARN
    interval_seconds: int = 300  # each Connector's storage is checked again this often, jittered
    write: bool = True  # the write pair writes (and deletes) a probe object
    concurrency: int = 8  # checks in flight at once, over all Connectors
    timeout_seconds: int = 5  # for connecting, and for each answer
