"""The Helm chart (deploy/helm/connector-operator) against the sources it must follow, without
helm: its CRD is crds/'s, and it passes every setting the operator and the gateway read. helm
itself renders, validates and installs the chart in tests/integration/test_helm.py."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from connector_operator import config
from connector_operator.gateway import settings as gateway_settings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "connector-operator"
# The edc profile's six required settings, so that its parser goes on to read the others.
EDC_REQUIRED = {
    "CONNECTOR_OPERATOR_EDC_PUBLIC_HOST": "dataspace.example.com",
    "CONNECTOR_OPERATOR_EDC_STS_TOKEN_URL": "https://sts.example.com/token",
    "CONNECTOR_OPERATOR_EDC_TRUSTED_ISSUERS": "did:web:issuer.example.com",
    "CONNECTOR_OPERATOR_EDC_BDRS_URL": "https://bdrs.example.com",
    "CONNECTOR_OPERATOR_EDC_DATASOURCE_URL": "jdbc:postgresql://db.example.com:5432/edc",
    "CONNECTOR_OPERATOR_EDC_VAULT_URL": "https://vault.example.com",
}
# In a pod the gateway listens on all addresses, its default: the chart has no value for it.
NOT_IN_CHART = {"CONNECTOR_GATEWAY_HOST"}


class Recording(Mapping[str, str]):
    """An environment that remembers every variable asked for, set or not."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values, self.asked = dict(values), set[str]()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def test_the_chart_crd_is_crds_own() -> None:
    """helm installs the chart's crds/ (once, never upgrading nor deleting it); `make crds`
    writes both files."""
    chart = (CHART / "crds" / "dataspace.dev_connectors.yaml").read_text()
    assert chart == (REPO / "crds" / "dataspace.dev_connectors.yaml").read_text(), (
        "deploy/helm/connector-operator/crds/ differs from crds/: run make crds"
    )


def _read_by_operator() -> set[str]:
    asked: set[str] = set()
    for env in ({"CONNECTOR_OPERATOR_PROFILE": "generic"}, EDC_REQUIRED):
        recording = Recording(env)
        config.from_env(recording)
        asked |= recording.asked
    return asked


def _read_by_gateway() -> set[str]:
    recording = Recording({})
    gateway_settings.from_env(recording)
    return recording.asked


@pytest.mark.parametrize(
    ("template", "read"),
    [("deployment.yaml", _read_by_operator), ("gateway.yaml", _read_by_gateway)],
)
def test_the_chart_passes_every_setting_read(template: str, read: Callable[[], set[str]]) -> None:
    """Every variable the program's parser asks for has its place in the template."""
    names = read()
    assert len(names) > 10, names  # the recording saw the parser at work
    text = (CHART / "templates" / template).read_text()
    missing = sorted(n for n in names - NOT_IN_CHART if not re.search(rf"\b{n}\b", text))
    assert not missing, f"templates/{template} has no value for {missing}"
