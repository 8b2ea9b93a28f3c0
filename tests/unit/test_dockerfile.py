"""The image's Dockerfile, read as Docker reads it (this machine has no container engine to
build it): two stages on one exact base, nothing of the build in the final image, non-root, the
operator's console script as entrypoint, and a context that holds only the package."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, rest))
    return found


def base() -> str:
    [default] = [rest for k, rest in instructions() if k == "ARG" and rest.startswith("PYTHON_")]
    return default.split("=", 1)[1]


def test_two_stages_on_one_exact_python_311_base() -> None:
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base()), base()
    froms = [stage[0][1].split()[0] for stage in stages()]
    assert froms == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]


def test_the_final_stage_installs_nothing_and_removes_pip() -> None:
    final = stages()[-1]
    runs = " ".join(rest for k, rest in final if k == "RUN")
    assert "pip uninstall --yes pip setuptools wheel" in runs
    assert not re.search(r"pip install|apt-get|apk |gcc|build-essential", runs)
    copies = [rest for k, rest in final if k == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"]  # nothing of the sources


def test_the_build_stage_keeps_no_pip_in_the_venv_it_hands_on() -> None:
    runs = " ".join(rest for k, rest in stages()[0] if k == "RUN")
    assert "/opt/venv/bin/pip install ." in runs
    assert runs.endswith("/opt/venv/bin/pip uninstall --yes pip setuptools wheel")


def test_it_runs_the_operators_console_script_as_a_numeric_non_root_user() -> None:
    final = dict(stages()[-1])
    user = final["USER"]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), user  # numeric: runAsNonRoot can check it
    entrypoint = shlex.split(final["ENTRYPOINT"].strip("[]").replace(",", " "))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == [f"/opt/venv/bin/{next(iter(scripts))}"]
    assert scripts[Path(entrypoint[0]).name] == "connector_operator.__main__:main"
    assert "PYTHONDONTWRITEBYTECODE=1" in final["ENV"]  # a read-only root file system


def test_the_build_context_is_the_package_only() -> None:
    rules = [r for r in (ROOT / ".dockerignore").read_text().splitlines() if r and r[0] != "#"]
    assert rules[0] == "*"
    assert set(rules[1:4]) == {"!pyproject.toml", "!README.md", "!operator/"}
    copied = {rest.split()[0] for stage in stages() for k, rest in stage if k == "COPY"}
    assert copied <= {"pyproject.toml", "operator", "--from=build"}
