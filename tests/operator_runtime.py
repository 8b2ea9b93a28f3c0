"""The Python the tests and benchmarks run the operator with: its runtime dependencies only,
as its image installs them (`pip install .`), in a virtualenv made once per dependency list in
~/.cache/connector-operator (a file lock keeps parallel test workers from making it twice).

Not the development virtualenv: that one holds the tests' `kubernetes` client, which Kopf
imports whenever it is installed (25 MiB the operator never uses), and would hide an import of
anything the package does not declare."""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def runtime_python() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    digest = hashlib.sha256("\n".join(sorted(deps)).encode()).hexdigest()[:12]
    cache = Path.home() / ".cache" / "connector-operator"
    home = cache / f"runtime-venv-{digest}"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "runtime-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / ".complete").exists():
            print(f"[runtime] the operator's dependencies into {home}", file=sys.stderr)
            venv.create(home, clear=True, with_pip=True)
            subprocess.run(
                [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", *deps],
                check=True,
            )
            (home / ".complete").touch()
    return str(home / "bin" / "python")
