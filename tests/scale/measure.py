"""What the scenarios measure with: percentiles, the API server's audit log counted by user,
verb and resource, and a process's memory and CPU time from /proc."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of `values`."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def requests_by(lines: Iterable[str], user: str) -> Counter[tuple[str, str]]:
    """The requests `user` made, counted once each (a watch's ResponseStarted and
    ResponseComplete share an audit ID), by (verb, resource[/subresource])."""
    seen: set[str] = set()
    counts: Counter[tuple[str, str]] = Counter()
    for line in lines:
        entry = json.loads(line)
        if entry.get("user", {}).get("username") != user or entry["auditID"] in seen:
            continue
        seen.add(entry["auditID"])
        ref = entry.get("objectRef") or {}
        resource = ref.get("resource", entry.get("requestURI", "?"))
        if ref.get("subresource"):
            resource = f"{resource}/{ref['subresource']}"
        counts[(entry["verb"], resource)] += 1
    return counts


@dataclass
class AuditLog:
    """The audit log read from where the last reading ended: each `since_last` returns the
    requests made in between."""

    path: Path
    user: str
    offset: int = 0

    def since_last(self) -> Counter[tuple[str, str]]:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        complete = data.rfind(b"\n") + 1  # a line still being written waits for next time
        self.offset += complete
        return requests_by(data[:complete].decode().splitlines(), self.user)


@dataclass(frozen=True)
class Usage:
    rss_mib: float
    cpu_seconds: float


def usage(pid: int) -> Usage:
    """The process's resident memory and the CPU time it has used (user + system)."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    # Fields after the command name (which may hold spaces) start at the state, field 3.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return Usage(rss_kib / 1024, (utime + stime) / CLOCK_TICKS)


def total(counts: Counter[tuple[str, str]]) -> int:
    return sum(counts.values())


def by_key(counts: Counter[tuple[str, str]]) -> dict[str, int]:
    """JSON-ready: "verb resource" -> count, most first."""
    return {f"{verb} {resource}": n for (verb, resource), n in counts.most_common()}
