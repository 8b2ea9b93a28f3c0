"""kstatus's verdict (sigs.k8s.io/cli-utils status.Compute, what Flux's health checks read) on
objects as the API server returns them, through the helper that tests/kstatus/build.sh builds.
A missing helper fails the test that asks: build it first (`make kstatus-build`)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILD = Path(__file__).resolve().parent / "build.sh"


@dataclass(frozen=True)
class KStatus:
    status: str  # Current, InProgress, Failed, Terminating, Unknown
    message: str


def helper() -> Path:
    path = Path(subprocess.run([str(BUILD), "--print"], capture_output=True, text=True,
                               check=True).stdout.strip())  # fmt: skip
    if not path.is_file():
        raise AssertionError(f"the kstatus helper is missing: run {BUILD} (make kstatus-build)")
    return path


def compute(objects: list[dict[str, Any]]) -> list[KStatus]:
    """kstatus's status and message for each object, in order."""
    result = subprocess.run(
        [str(helper())], input=json.dumps(objects), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"kstatus failed: {result.stderr}")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(objects), result.stdout
    return [KStatus(a["status"], a["message"]) for a in answers]
