"""Runs one vanilla Eclipse EDC plane (control plane or data plane) as a local Java process,
configured by environment variables only; standard library only.

The jars come from tests/edc/build.sh, which gathers them into a cache outside the repository:

    runtime = start("controlplane", env, log_path)
    runtime.wait_ready("http://127.0.0.1:8080/api/check/readiness", timeout=60)
    ...
    runtime.stop()

The JVM options default to DEFAULT_JVM_OPTIONS; CONNECTOR_EDC_JVM_OPTIONS replaces them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLANES = ("controlplane", "dataplane")
MAIN_CLASS = "org.eclipse.edc.boot.system.runtime.BaseRuntime"
# A small heap, and the C1 compiler only: a plane boots faster on two cores and stays lean.
DEFAULT_JVM_OPTIONS = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss512k")
# A runtime whose boot failed may live on (a port already bound leaves Jetty's threads running):
# this line in its log is the failure.
BOOT_FAILED = "Error booting runtime"
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


class EdcRuntimeError(RuntimeError):
    """A plane failed to build, start or become ready; the message carries its log tail."""


def version_dir(build: bool = True) -> Path:
    """The cache directory of this EDC version, its planes' jars gathered first when missing."""
    script = HERE / "build.sh"
    out = subprocess.run([str(script), "--print"], check=True, capture_output=True, text=True)
    path = Path(out.stdout.strip())
    if not build or all((path / plane / "lib").is_dir() for plane in PLANES):
        return path
    # Maven's progress goes to stderr so that a user sees it; the last stdout line is the path.
    out = subprocess.run([str(script)], check=False, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise EdcRuntimeError(f"gathering the EDC jars failed ({script})")
    return Path(out.stdout.strip().splitlines()[-1])


def jvm_options() -> list[str]:
    """The JVM's options: CONNECTOR_EDC_JVM_OPTIONS when set, else DEFAULT_JVM_OPTIONS."""
    configured = os.environ.get("CONNECTOR_EDC_JVM_OPTIONS")
    return configured.split() if configured is not None else list(DEFAULT_JVM_OPTIONS)


def base_env() -> dict[str, str]:
    """The little of this process's environment that a JVM needs: nothing else leaks in."""
    return {name: os.environ[name] for name in ("PATH", "JAVA_HOME") if name in os.environ}


def argv(plane: str, options: Sequence[str]) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise EdcRuntimeError("no java on PATH")
    lib = version_dir() / plane / "lib"
    command = [java, *options, "-cp", f"{lib}/*", MAIN_CLASS]
    # A plane must never outlive whoever started it, even a SIGKILLed pytest: setpriv asks the
    # kernel to kill it when its parent thread ends, without running Python in the child.
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *command] if setpriv else command


def start(
    plane: str, env: Mapping[str, str], log_path: Path, options: Sequence[str] | None = None
) -> Runtime:
    """Starts `plane` ("controlplane" or "dataplane") with `env` on top of base_env(); its
    stdout and stderr go to `log_path`. Call it from a thread that outlives the plane."""
    if plane not in PLANES:
        raise ValueError(f"unknown plane {plane!r}, expected one of {PLANES}")
    command = argv(plane, jvm_options() if options is None else options)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_start = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**base_env(), **env},
        )
    return Runtime(plane, process, log_path, log_start)


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of GET `url`, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 -- a test's own URL
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, urllib.error.URLError):
        return None


@dataclass
class Runtime:
    """One running plane."""

    plane: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_start: int = 0  # where this process's lines begin in a log that is appended to

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        """This process's log, without EDC's colour codes."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self.log_start)
                return ANSI_COLOUR.sub("", log.read().decode(errors="replace"))
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The log's last lines, after the first line that tells of a failed boot, if any."""
        text = self.log().splitlines()
        failed = [line for line in text if BOOT_FAILED in line][:1]
        return "\n".join([*failed, "...", *text[-lines:]] if failed else text[-lines:])

    def boot_failed(self) -> bool:
        """Whether the log tells that the boot failed, though the process may live on."""
        return BOOT_FAILED in self.log()

    def wait_ready(self, url: str, timeout: float = 90.0) -> float:
        """Polls `url` until it answers 200; returns the seconds waited. Fails at once, with the
        log's tail, if the process exits or its boot fails first."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise self._failure(f"exited with code {self.process.returncode}")
            if self.boot_failed():
                raise self._failure("failed to boot")
            if http_status(url) == 200:
                return time.monotonic() - started
            time.sleep(0.25)
        raise self._failure(f"was not ready at {url} within {timeout:.0f}s")

    def stop(self, timeout: float = 15.0) -> None:
        """Terminates the process, and kills it if it has not exited within `timeout`."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()

    def _failure(self, what: str) -> EdcRuntimeError:
        return EdcRuntimeError(f"the EDC {self.plane} {what}; {self.log_path}:\n{self.log_tail()}")
