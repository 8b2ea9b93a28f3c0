"""The real helm (helm.sh/helm/v3's own command, built by tests/helm/build.sh) over the chart of
deploy/helm/: lint, template, install, upgrade, uninstall, each against one kubeconfig and with
its own config, cache and data directories (so that a run never reads a user's repositories or
plugins). A missing binary fails the test that asks: build it first (`make helm-build`)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BUILD = Path(__file__).resolve().parent / "build.sh"
CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "connector-operator"


def binary() -> Path:
    path = Path(subprocess.run([str(BUILD), "--print"], capture_output=True, text=True,
                               check=True).stdout.strip())  # fmt: skip
    if not path.is_file():
        raise AssertionError(f"helm is missing: run {BUILD} (make helm-build)")
    return path


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@dataclass(frozen=True)
class Helm:
    home: Path  # HELM_CONFIG_HOME, HELM_CACHE_HOME and HELM_DATA_HOME live under it
    kubeconfig: Path | None = None

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            **{f"HELM_{d}_HOME": str(self.home / d.lower()) for d in ("CONFIG", "CACHE", "DATA")},
        }
        kube = [f"--kubeconfig={self.kubeconfig}"] if self.kubeconfig else []
        result = subprocess.run(
            [str(binary()), *args, *kube], capture_output=True, text=True, env=env, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}{result.stderr}")  # fmt: skip
        return result

    def template(
        self, *args: str, release: str = "connector-operator", namespace: str = "default"
    ) -> list[dict[str, Any]]:
        """The chart rendered offline (no API server asked), as objects."""
        out = self.run("template", release, str(CHART), "--namespace", namespace, *args).stdout
        return documents(out)
