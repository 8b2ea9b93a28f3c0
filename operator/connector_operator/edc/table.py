"""What one Tractus-X EDC chart version runs: images, ports, paths, probes and the env names
that differ between versions (pure data).

One `Release` per chart version. A new chart version is a new `Release` in `RELEASES`, usually
a copy of the last with the few facts that changed (the main branch, for one, makes the DID the
participant id of both planes, renames the BDRS key and drops the catalog port).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Api:
    """One HTTP context of a runtime: its port name (also the Service's), number and path.
    `env` is the infix of its settings: WEB_HTTP_<env>_PORT and WEB_HTTP_<env>_PATH ('' for
    the default context: WEB_HTTP_PORT)."""

    name: str
    port: int
    path: str
    env: str


@dataclass(frozen=True)
class Probes:
    liveness: str
    readiness: str
    initial_delay_seconds: int
    period_seconds: int
    timeout_seconds: int
    failure_threshold: int


@dataclass(frozen=True)
class Release:
    """The facts of one chart version that the manifests are built from."""

    version: str
    controlplane_image: str
    dataplane_image: str
    controlplane_apis: tuple[Api, ...]
    dataplane_apis: tuple[Api, ...]
    catalog: Api | None  # the control plane's catalog API, where its image has one
    metrics_port: int
    probes: Probes
    run_as: int
    # The data plane's EDC_PARTICIPANT_ID: "bpn" on 0.11 charts (a quirk), "did" later.
    dataplane_participant_id: str
    bdrs_url_env: str
    bpn_env: str

    def api(self, plane: str, name: str) -> Api:
        apis = self.controlplane_apis if plane == "controlplane" else self.dataplane_apis
        return next(a for a in (*apis, *([self.catalog] if self.catalog else [])) if a.name == name)


EDC_0_11 = Release(
    version="0.11.2",
    controlplane_image="tractusx/edc-controlplane-postgresql-hashicorp-vault:0.11.2",
    dataplane_image="tractusx/edc-dataplane-hashicorp-vault:0.11.2",
    controlplane_apis=(
        Api("default", 8080, "/api", ""),
        Api("management", 8081, "/management", "MANAGEMENT"),
        Api("control", 8083, "/control", "CONTROL"),
        Api("protocol", 8084, "/api/v1/dsp", "PROTOCOL"),
    ),
    dataplane_apis=(
        Api("default", 8080, "/api", ""),
        Api("public", 8081, "/api/public", "PUBLIC"),
        Api("control", 8084, "/api/control", "CONTROL"),
        Api("proxy", 8186, "/proxy", "PROXY"),
    ),
    catalog=Api("catalog", 8085, "/catalog", "CATALOG"),
    metrics_port=9090,
    probes=Probes(
        liveness="/api/check/liveness",
        readiness="/api/check/readiness",
        initial_delay_seconds=30,
        period_seconds=10,
        timeout_seconds=5,
        failure_threshold=6,
    ),
    run_as=10001,
    dataplane_participant_id="bpn",
    bdrs_url_env="TX_IAM_IATP_BDRS_SERVER_URL",
    bpn_env="TRACTUSX_EDC_PARTICIPANT_BPN",
)

RELEASES: dict[str, Release] = {"0.11": EDC_0_11}
DEFAULT_RELEASE = "0.11"
