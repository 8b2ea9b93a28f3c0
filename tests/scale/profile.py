"""py-spy on the operator during a scenario (`--py-spy`): a flame graph of where its CPU went.
py-spy is not a dependency: `.venv/bin/pip install py-spy` first."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path


def py_spy() -> str | None:
    """The py-spy beside this interpreter (the venv's), else on PATH; None when absent."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profile:
    """`py-spy record` of a process from now until `stop`, as an SVG flame graph of the
    samples in which a thread held the GIL: the Python CPU time. (Without --gil, py-spy counts
    threads waiting in an SSL read as busy, and the operator's watch threads always wait so.)
    py-spy pauses the process for each sample: the times of a profiled run are not the
    benchmark's."""

    def __init__(self, pid: int, path: Path, rate: int = 100) -> None:
        binary = py_spy()
        if binary is None:
            raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
        self.path = path
        self.process = subprocess.Popen(
            [binary, "record", "--pid", str(pid), "--output", str(path), "--format",
             "flamegraph", "--rate", str(rate), "--gil"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

    def stop(self) -> None:
        """Ends the recording (py-spy writes its file on SIGINT)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if not self.path.exists():
            err = self.process.stderr.read().decode() if self.process.stderr else ""
            print(f"[bench] py-spy wrote no profile: {err.strip()[-500:]}", file=sys.stderr)
