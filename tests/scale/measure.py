"""What the scenarios measure with: percentiles, the API server's audit log counted by user,
verb and resource, and a process's memory and CPU time from /proc."""

from __future__ import annotations

import datetime
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
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


def spread(times: Sequence[float]) -> dict[str, float]:
    """p50, p99 and the maximum of `times`, in seconds to the millisecond (NaN when empty)."""
    return {
        "p50_s": round(percentile(times, 50), 3),
        "p99_s": round(percentile(times, 99), 3),
        "max_s": round(max(times), 3) if times else math.nan,
    }


def per_object(since: Mapping[str, float], until: Mapping[str, float]) -> list[float]:
    """Per object in both, seconds from its moment in `since` (e.g. first seen by a watch: its
    creation) to its moment in `until` (e.g. first Running); never negative."""
    return [max(0.0, until[name] - since[name]) for name in until if name in since]


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


@dataclass(frozen=True)
class Logged:
    """One request as the audit log has it, its times by the API server's clock (epoch)."""

    user: str
    verb: str
    resource: str  # with its subresource: connectors/status
    namespace: str
    name: str
    completed: float  # the response sent


def completed_requests(lines: Iterable[str]) -> list[Logged]:
    """The requests that succeeded (stage ResponseComplete, a 2xx answer: a write refused, a
    conflict say, stored nothing), in the log's order."""
    found = []
    for line in lines:
        entry = json.loads(line)
        code = (entry.get("responseStatus") or {}).get("code", 0)
        if entry.get("stage") != "ResponseComplete" or not 200 <= code < 300:
            continue
        ref = entry.get("objectRef") or {}
        resource = ref.get("resource", "")
        if ref.get("subresource"):
            resource = f"{resource}/{ref['subresource']}"
        found.append(Logged(
            entry.get("user", {}).get("username", ""), entry["verb"], resource,
            ref.get("namespace", ""), ref.get("name", ""), _epoch(entry["stageTimestamp"]),
        ))  # fmt: skip
    return found


def _epoch(stamp: str) -> float:
    """An audit timestamp (RFC 3339 with microseconds, UTC) as seconds since the epoch."""
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def stored_to_stored(
    logged: Sequence[Logged], names: Sequence[str], namespace: str, operator: str
) -> list[float | None]:
    """For each of `names` in turn (a name repeats for its next patch), seconds from someone
    else's patch of the Connector being stored to the operator's next status write of it being
    stored, both by the API server's clock; None where either is not logged."""
    patches: dict[str, list[float]] = {}
    statuses: dict[str, list[float]] = {}
    for r in logged:
        if r.namespace != namespace or r.verb != "patch":
            continue
        if r.resource == "connectors" and r.user != operator:
            patches.setdefault(r.name, []).append(r.completed)
        elif r.resource == "connectors/status" and r.user == operator:
            statuses.setdefault(r.name, []).append(r.completed)
    taken: dict[str, int] = {}
    delays: list[float | None] = []
    for name in names:
        index = taken.get(name, 0)
        taken[name] = index + 1
        mine = patches.get(name, [])
        stored = mine[index] if index < len(mine) else None
        later = [t for t in statuses.get(name, ()) if stored is not None and t >= stored]
        answer = min(later, default=None)
        delays.append(None if stored is None or answer is None else answer - stored)
    return delays


@dataclass
class AuditLog:
    """The audit log read from where the last reading ended: each `since_last` returns the
    requests made in between.

    The API server rotates its log (at 100 MB unless --audit-log-maxsize says otherwise): the
    old file is renamed audit-<time>.log and a new one begun. A reading that finds a new file
    first reads the rest of the renamed one (found by its inode), so that no request is lost;
    one that cannot find it raises rather than count too few."""

    path: Path
    user: str
    offset: int = 0
    inode: int | None = None

    def since_last(self) -> Counter[tuple[str, str]]:
        return requests_by(self.lines_since_last(), self.user)

    def skip(self) -> None:
        """Reads from now on only what is logged after this."""
        now = self.path.stat()
        self.inode, self.offset = now.st_ino, now.st_size

    def lines_since_last(self) -> list[str]:
        """The entries logged since the last reading, of every user."""
        rest = b""  # of the renamed file, which ends with a whole line
        inode = self.path.stat().st_ino
        if self.inode is not None and inode != self.inode:
            rest = _read_from(self._rotated(self.inode), self.offset)
            self.offset = 0
        self.inode = inode
        data = rest + _read_from(self.path, self.offset)
        complete = data.rfind(b"\n") + 1  # a line still being written waits for next time
        self.offset += max(0, complete - len(rest))
        return data[:complete].decode().splitlines()

    def _rotated(self, inode: int) -> Path:
        for candidate in self.path.parent.glob(f"{self.path.stem}-*{self.path.suffix}"):
            if candidate.stat().st_ino == inode:
                return candidate
        raise RuntimeError(f"{self.path} was rotated and its previous part is gone")


def _read_from(path: Path, offset: int) -> bytes:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read()


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


@dataclass(frozen=True)
class Scheduling:
    running: float  # seconds on a CPU
    waiting: float  # seconds runnable, waiting for a CPU (on a run queue)


def scheduling(pid: int) -> Scheduling:
    """The kernel's scheduler statistics of the process's main thread (its event loop)."""
    on_cpu, waiting, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    return Scheduling(int(on_cpu) / 1e9, int(waiting) / 1e9)


def total(counts: Counter[tuple[str, str]]) -> int:
    return sum(counts.values())


def by_key(counts: Counter[tuple[str, str]]) -> dict[str, int]:
    """JSON-ready: "verb resource" -> count, most first."""
    return {f"{verb} {resource}": n for (verb, resource), n in counts.most_common()}
