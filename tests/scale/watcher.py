"""A watch of one kind in one namespace, in a thread: when each object first showed what a
scenario waits for, read from the stream of changes (never by polling)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError

Summary = Callable[[dict[str, Any]], str | None]
WATCH_SECONDS = 300


class Watcher:
    """Records, per object name, the first moment (time.monotonic) each summary was seen.

    `summary` turns an object into what matters (a phase, "available"), None for nothing yet.
    """

    def __init__(self, list_call: Callable[..., Any], summary: Summary, **list_args: Any) -> None:
        self.list_call, self.list_args, self.summary = list_call, list_args, summary
        self.first: dict[str, dict[str, float]] = {}
        self.seen: dict[str, float] = {}  # the first event of each object: its creation
        self.latest: dict[str, str | None] = {}
        self.history: dict[str, list[tuple[float, str]]] = {}  # every change, in order
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._watch = watch.Watch()  # type: ignore[no-untyped-call]

    def start(self) -> Watcher:
        self._thread.start()
        if not self._ready.wait(60):
            raise TimeoutError("the watch did not start")
        return self

    def stop(self) -> None:
        """Ends the watch: its socket shut down, so that the blocked read returns (asked again
        until the thread ends, as a request still being opened is not shut by the first)."""
        self._stop.set()
        deadline = time.monotonic() + 10
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._watch.stop()  # type: ignore[no-untyped-call]
            self._thread.join(0.2)

    def _run(self) -> None:
        version = None
        while not self._stop.is_set():
            # One long request, not one every few seconds: an event that comes while the
            # watch is being opened again waits for it, and that would be counted against
            # the latencies measured.
            self._watch = watch.Watch()  # type: ignore[no-untyped-call]
            stream = self._watch.stream(  # type: ignore[no-untyped-call]
                self.list_call, timeout_seconds=WATCH_SECONDS, allow_watch_bookmarks=True,
                resource_version=version, **self.list_args,
            )  # fmt: skip
            self._ready.set()
            for event in _until_shut(stream):
                if event["type"] == "ERROR":  # a version too old: list again
                    version = None
                    break
                obj = event["object"]
                obj = obj if isinstance(obj, dict) else obj.to_dict()
                meta = obj["metadata"]
                version = meta.get("resourceVersion") or meta.get("resource_version")
                if event["type"] in ("ADDED", "MODIFIED") and meta.get("name"):
                    self._record(meta["name"], self.summary(obj))
                if self._stop.is_set():
                    break

    def _record(self, name: str, summary: str | None) -> None:
        now = time.monotonic()
        with self.changed:
            self.seen.setdefault(name, now)
            if summary is not None and self.latest.get(name) != summary:
                self.history.setdefault(name, []).append((now, summary))
            self.latest[name] = summary
            if summary is not None:
                self.first.setdefault(name, {}).setdefault(summary, now)
            self.changed.notify_all()

    def count(self, matches: Callable[[str], bool]) -> int:
        """Objects whose latest summary matches (call it under the lock, or from `wait`)."""
        return sum(1 for s in self.latest.values() if s is not None and matches(s))

    def wait(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        """Blocks until `check()` (called under the lock) holds; the time it took."""
        start = time.monotonic()
        with self.changed:
            while not check():
                left = start + timeout - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{what}: not within {timeout:.0f}s")
                self.changed.wait(min(left, 1.0))
        return time.monotonic() - start

    def first_after(self, name: str, since: float, matches: Callable[[str], bool]) -> float | None:
        """When `name` first showed a matching summary after `since` (call it under the lock)."""
        return next((t for t, s in self.history.get(name, []) if t >= since and matches(s)), None)

    def reached(self, matches: Callable[[str], bool]) -> dict[str, float]:
        """Per object, when it first showed a matching summary."""
        with self.changed:
            return {
                name: min(t for s, t in seen.items() if matches(s))
                for name, seen in self.first.items()
                if any(matches(s) for s in seen)
            }

    def created(self) -> dict[str, float]:
        """Per object, when the watch first saw it."""
        with self.changed:
            return dict(self.seen)

    def times_of(self, matches: Callable[[str], bool], since: float) -> list[float]:
        """Per object, seconds from `since` until it first showed a matching summary."""
        with self.changed:
            return [
                min(t for s, t in seen.items() if matches(s)) - since
                for seen in self.first.values()
                if any(matches(s) for s in seen)
            ]


def _until_shut(stream: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The events until `stop` shuts the socket down (the read then fails). A version too old
    (410), which the client raises rather than passes on, is an ERROR event as without a
    timeout."""
    try:
        yield from stream
    except ApiException as error:
        if error.status != 410:
            raise
        yield {"type": "ERROR", "object": {"code": 410}}
    except (ProtocolError, OSError, ValueError):
        return
