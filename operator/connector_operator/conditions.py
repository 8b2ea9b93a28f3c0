"""kstatus condition bookkeeping (pure: imports only models)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from connector_operator.models import Condition

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
# Whether the Connector's storage answers its credentials (AmazonS3 and AzureStorage only).
STORAGE_REACHABLE = "StorageReachable"
# kstatus: Ready is always present; the two abnormal-true conditions only while they hold.
ABNORMAL_TRUE = (RECONCILING, STALLED)
ORDER = (READY, RECONCILING, STALLED, STORAGE_REACHABLE)


@dataclass(frozen=True)
class Wanted:
    """What a condition should say now; `lastTransitionTime` is bookkeeping, not a wish."""

    status: bool | None  # None: Unknown
    reason: str
    message: str


def merge(
    existing: Sequence[Condition],
    wanted: Mapping[str, Wanted],
    now: str,
    generation: int,
    keep: Collection[str] = (),
) -> list[Condition]:
    """The conditions to store: `wanted` applied over `existing`.

    `lastTransitionTime` moves only when a condition's status flips (or it first appears);
    Reconciling and Stalled are dropped rather than stored as False, and the operator's other
    types when not wanted, unless named in `keep`: those stay as they are, their
    observedGeneration saying how old they are. Conditions of other types (someone else's)
    are kept as they are.
    """
    current = {c.type: c for c in existing}
    result: list[Condition] = []
    for type_ in ORDER:
        want = wanted.get(type_)
        if want is None and type_ in keep and type_ in current:
            result.append(current[type_])
            continue
        if want is None or (type_ in ABNORMAL_TRUE and not want.status):
            continue
        status = {True: "True", False: "False", None: "Unknown"}[want.status]
        before = current.get(type_)
        since = before.last_transition_time if before and before.status == status else now
        result.append(
            Condition(
                type=type_,
                status=status,
                reason=want.reason,
                message=want.message,
                last_transition_time=since,
                observed_generation=generation,
            )
        )
    result.extend(c for c in existing if c.type not in ORDER)
    return result
