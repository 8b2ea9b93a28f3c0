"""What the test peers' processes share (Keycloak, moto, Azurite): each is tied to its parent,
stopped politely and then killed, and fails with the tail of its log (standard library only)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path


def with_parent(peer: str, argv: Sequence[str]) -> list[str]:
    """`argv`, run so that it dies with the test process: setpriv sets the parent-death signal
    and execs it (a preexec_fn would do the same, but is unsafe once the test process runs
    threads)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:  # without it a killed test run would leave the peer running
        raise RuntimeError(f"setpriv (util-linux) is needed to tie {peer} to its parent")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv]


def alive(process: subprocess.Popen[bytes] | None) -> bool:
    return process is not None and process.poll() is None


def stop(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text[-lines:])


def failure(peer: str, process: subprocess.Popen[bytes] | None, log: Path, what: str) -> str:
    """`what` went wrong with the peer, with its exit code and the last lines of its log."""
    code = process.poll() if process else None
    status = f" (exit code {code})" if code is not None else ""
    return f"{peer} {what}{status}; last lines of {log}:\n{log_tail(log)}"
