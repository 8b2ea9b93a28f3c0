"""The real promtool (Prometheus's own rule checker and rule unit tester; Debian's `prometheus`
package, which .ci/run installs). A missing promtool fails the test that asks for it: it is
never a reason to skip."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
ALERTS_TEST = HERE / "alerts_test.yaml"


def binary() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise AssertionError(
            "promtool is missing: `apt-get install prometheus` (Debian; .ci/run does it), or "
            "put the promtool of a Prometheus release on PATH"
        )
    return path


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Runs promtool; a non-zero exit fails with its output."""
    result = subprocess.run(
        [binary(), *args], input=stdin, capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise AssertionError(
            f"promtool {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )
    return result
