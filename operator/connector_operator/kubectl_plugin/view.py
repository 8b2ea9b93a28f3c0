"""What `kubectl connector status` prints: a table of Connectors, or one Connector's screen.
Pure: API objects in, text out. Credentials never appear: of a Connector's spec only its storage
type and the fields that are not credentials are shown, of a Secret only its name."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector_operator.conditions import READY
from connector_operator.models import CREDENTIAL_FIELDS, StorageType

Object = Mapping[str, Any]


@dataclass(frozen=True)
class Child:
    kind: str
    name: str
    detail: str = ""


def age(stamp: str | None, now: datetime.datetime) -> str:
    """kubectl's short ages: 45s, 12m, 5h, 3d."""
    if not stamp:
        return "-"
    then = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded as kubectl pads them (three spaces between)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def _ready(status: Object) -> str:
    for condition in status.get("conditions") or []:
        if condition.get("type") == READY:
            return str(condition.get("status", ""))
    return ""


def listing(connectors: Sequence[Object], now: datetime.datetime, namespaces: bool) -> str:
    """NAME, TYPE, PHASE, READY, AGE (NAMESPACE first with `namespaces`)."""
    if not connectors:
        return "No Connectors found."
    header = ["NAME", "TYPE", "PHASE", "READY", "AGE"]
    rows = [["NAMESPACE", *header] if namespaces else header]
    for body in connectors:
        meta, status = body["metadata"], body.get("status") or {}
        row = [
            meta["name"],
            (body.get("spec") or {}).get("storage_type", ""),
            status.get("phase") or "-",
            _ready(status) or "-",
            age(meta.get("creationTimestamp"), now),
        ]
        rows.append([meta["namespace"], *row] if namespaces else row)
    return table(rows)


def storage_shown(spec: Object) -> list[tuple[str, str]]:
    """The storage fields a user may see: every field but the credentials (and the Secret a
    reference names, which holds them, by name only)."""
    kind = spec.get("storage_type", "")
    try:
        secret = set(CREDENTIAL_FIELDS[StorageType(kind)])
    except ValueError:  # a type this plugin does not know: show no field of it
        return []
    config = spec.get("storage_config") or {}
    shown = []
    for field, value in sorted(config.items()):
        if field in secret:
            continue
        if field == "credentials_secret_ref" and isinstance(value, Mapping):
            shown.append(("credentials", f"Secret {value.get('name', '')}"))
        elif isinstance(value, str | int | bool):
            shown.append((field, str(value)))
    inline = [f for f in config if f in secret]
    if inline:
        shown.append(("credentials", "inline (not shown)"))
    return shown


def screen(
    body: Object, children: Sequence[Child], events: Sequence[Object], now: datetime.datetime
) -> str:
    """One Connector on one screen: phase, storage, conditions, children, last events."""
    meta, status = body["metadata"], body.get("status") or {}
    spec = body.get("spec") or {}
    observed = status.get("observedGeneration")
    lines = [
        f"Connector {meta['namespace']}/{meta['name']}   {spec.get('storage_type', '')}",
        f"Phase:       {status.get('phase') or '-'} (generation {meta.get('generation')}, "
        f"observed {observed if observed is not None else '-'})",
        f"Message:     {status.get('message') or '-'}",
    ]
    if (record := status.get("action")) is not None:
        verdict = "accepted" if record.get("accepted") else "refused"
        lines.append(f"Action:      {record.get('requested')} ({verdict}): {record.get('message')}")
    lines += [f"  {field}: {value}" for field, value in storage_shown(spec)]
    lines += ["", "Conditions:", _conditions(status, now), "", "Children:"]
    lines += [f"  {c.kind}/{c.name}{'   ' + c.detail if c.detail else ''}" for c in children]
    if not children:
        lines.append("  (none)")
    lines += ["", "Events:", _events(events, now)]
    return "\n".join(lines)


def _conditions(status: Object, now: datetime.datetime) -> str:
    conditions = status.get("conditions") or []
    if not conditions:
        return "  (none)"
    rows = [["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]]
    rows += [
        [
            c.get("type", ""), c.get("status", ""), c.get("reason", ""),
            age(c.get("lastTransitionTime"), now), c.get("message", ""),
        ]
        for c in conditions
    ]  # fmt: skip
    return _indent(table(rows))


def _events(events: Sequence[Object], now: datetime.datetime) -> str:
    if not events:
        return "  (none)"
    rows = [["AGE", "TYPE", "REASON", "MESSAGE"]]
    for event in events:
        stamp = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
        rows.append(
            [age(stamp, now), event.get("type", ""), event.get("reason", ""),
             event.get("message", "")]
        )  # fmt: skip
    return _indent(table(rows))


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
