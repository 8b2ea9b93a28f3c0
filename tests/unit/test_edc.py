"""Unit tests of the edc profile's pure parts: its settings, the identity of a Connector, the
vault entries of each storage type, the generated keys, and the order of the two planes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector_operator.config import ConfigError, OperatorConfig, from_env
from connector_operator.edc import keys
from connector_operator.edc.identity import bpn_of, identity_of, schema_of
from connector_operator.edc.manifests import ingress
from connector_operator.edc.settings import EdcSettings
from connector_operator.edc.vault_entries import entries
from connector_operator.models import Connector, ConnectorStatus, Phase, StorageType
from connector_operator.profiles import Edc, Inputs
from connector_operator.reconcile import name_taken
from connector_operator.resources import credentials_digest
from connector_operator.states import DeploymentState, Intent, Observed, decide, replicas

P = "CONNECTOR_OPERATOR_"
REQUIRED = {
    P + "EDC_PUBLIC_HOST": "dsp.example.com",
    P + "EDC_STS_TOKEN_URL": "https://sts.example.com/token",
    P + "EDC_TRUSTED_ISSUERS": "did:web:issuer.example.com",
    P + "EDC_BDRS_URL": "https://bdrs.example.com/api",
    P + "EDC_DATASOURCE_URL": "jdbc:postgresql://db:5432/edc",
    P + "EDC_VAULT_URL": "https://vault.example.com",
}


def settings(**env: str) -> EdcSettings:
    config = from_env({**REQUIRED, **{P + k: v for k, v in env.items()}})
    assert config.profile == "edc" and config.edc is not None
    return config.edc


class TestSettings:
    def test_edc_is_the_default_profile_and_takes_the_chart_defaults(self) -> None:
        edc = settings()
        assert edc.release.version == "0.11.2"
        assert (
            edc.controlplane_image == "tractusx/edc-controlplane-postgresql-hashicorp-vault:0.11.2"
        )
        assert edc.catalog is True
        assert edc.vault_folder == "connectors" and edc.vault_secret_path == "/v1/secret"  # noqa: S105
        assert edc.sts_client_id == "{bpn}" and edc.ingress_class is None

    @pytest.mark.parametrize("missing", sorted(REQUIRED))
    def test_a_missing_setting_is_named(self, missing: str) -> None:
        env = {k: v for k, v in REQUIRED.items() if k != missing}
        with pytest.raises(ConfigError, match=missing):
            from_env(env)

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("EDC_PUBLIC_HOST", "https://dsp.example.com"),
            ("EDC_STS_TOKEN_URL", "sts.example.com/token"),
            ("EDC_TRUSTED_ISSUERS", "did:web:a,https://b"),
            ("EDC_DATASOURCE_URL", "postgresql://db/edc"),
            ("EDC_DATASOURCE_URL", "jdbc:postgresql://db/edc?currentSchema=x"),
            ("EDC_DATASOURCE_PER_CONNECTOR", "table"),
            ("EDC_VAULT_TOKEN_SECRET", "Not_A_Name"),
            ("EDC_VAULT_SECRET_PATH", "secret"),
            ("EDC_STS_CLIENT_ID", "{tenant}"),
            ("EDC_RELEASE", "0.9"),
            ("EDC_CATALOG", "maybe"),
            ("PROFILE", "tractusx"),
        ],
    )
    def test_a_malformed_setting_is_named(self, name: str, value: str) -> None:
        with pytest.raises(ConfigError, match=P + name):
            from_env({**REQUIRED, P + name: value})

    def test_the_generic_profile_needs_none_of_them(self) -> None:
        assert from_env({P + "PROFILE": "generic"}).edc is None


class TestIdentity:
    def test_the_did_and_routes_hang_under_the_public_host(self) -> None:
        identity = identity_of("team-a", "orders", settings())
        assert identity.did == "did:web:dsp.example.com:connectors:orders"
        assert identity.participant_id == identity.did
        assert identity.public_base == "https://dsp.example.com/connectors/orders"

    def test_a_port_is_encoded_in_the_did(self) -> None:
        identity = identity_of("a", "b", settings(EDC_PUBLIC_HOST="dsp.example.com:8443"))
        assert identity.did == "did:web:dsp.example.com%3A8443:connectors:b"

    def test_the_bpn_is_stable_per_namespace_and_name(self) -> None:
        bpn = bpn_of("team-a", "orders")
        assert bpn == bpn_of("team-a", "orders") != bpn_of("team-b", "orders")
        assert bpn.startswith("BPNL") and len(bpn) == 16 and bpn.isalnum() and bpn.isupper()

    def test_schemas_are_identifiers_unique_per_namespace(self) -> None:
        long = "a-" * 26 + "z"
        schema = schema_of("team-a", long)
        assert len(schema) <= 53 and schema.replace("_", "").isalnum()
        assert schema_of("team-a", "x") != schema_of("team-b", "x")


KEYS = keys.complete({})


class TestVaultEntries:
    def test_s3_keeps_the_write_pair(self) -> None:
        creds = {
            "username_read": "r",
            "password_read": "read-secret-1",
            "username_write": "w",
            "password_write": "wp",
        }
        found = entries(StorageType.AMAZON_S3, creds, KEYS)
        assert json.loads(found["s3-write-credentials"]) == {
            "accessKeyId": "w",
            "secretAccessKey": "wp",
        }
        assert "read-secret-1" not in json.dumps(
            found
        )  # the read pair reaches the data plane's env

    def test_azure_keys_go_under_account_name_key1(self) -> None:
        creds = {"account_name_read": "ra", "account_key_read": "rk",
                 "account_name_write": "wa", "account_key_write": "wk"}  # fmt: skip
        found = entries(StorageType.AZURE_STORAGE, creds, KEYS)
        assert found["ra-key1"] == "rk" and found["wa-key1"] == "wk"

    def test_every_connector_gets_the_token_signer_pair(self) -> None:
        found = entries(StorageType.HTTP_DATA, {}, KEYS)
        assert set(found) == {"token-signer-private-key", "token-verifier-public-key"}
        assert found["token-signer-private-key"].startswith("-----BEGIN PRIVATE KEY-----")


class TestKeys:
    def test_held_keys_are_kept_and_missing_ones_made(self) -> None:
        held = dict(KEYS)
        del held["consumer-proxy-key"]
        completed = keys.complete(held)
        assert {k: completed[k] for k in held} == held
        assert (
            completed["consumer-proxy-key"]
            and completed["consumer-proxy-key"] != KEYS["consumer-proxy-key"]
        )

    def test_a_half_key_pair_is_made_whole_again(self) -> None:
        held = {k: v for k, v in KEYS.items() if k != "token-verifier-public-key"}
        completed = keys.complete(held)
        assert completed["token-signer-private-key"] != KEYS["token-signer-private-key"]


def state(available: int, spec: int = 1) -> DeploymentState:
    return DeploymentState(spec, "h", 1, 1, spec, spec, available)


GATES = {"dataplane": "controlplane"}
DESIRED = {"controlplane": "h", "dataplane": "h"}
PLANES = ("controlplane", "dataplane")


class TestPlaneOrder:
    def test_the_data_plane_is_not_made_before_the_control_plane_is_available(self) -> None:
        nothing = Observed({"controlplane": None, "dataplane": None}, 0)
        assert replicas(Intent.RUN, PLANES, GATES, nothing, DESIRED) == {
            "controlplane": 1,
            "dataplane": None,
        }
        booting = Observed({"controlplane": state(0), "dataplane": None}, 1)
        assert replicas(Intent.RUN, PLANES, GATES, booting, DESIRED)["dataplane"] is None
        up = Observed({"controlplane": state(1), "dataplane": None}, 1)
        assert replicas(Intent.RUN, PLANES, GATES, up, DESIRED)["dataplane"] == 1

    def test_a_running_data_plane_keeps_running_while_the_control_plane_restarts(self) -> None:
        restarting = Observed({"controlplane": state(0), "dataplane": state(1)}, 1)
        assert replicas(Intent.RUN, PLANES, GATES, restarting, DESIRED)["dataplane"] == 1

    def test_a_start_after_a_stop_waits_for_the_control_plane_again(self) -> None:
        stopped = Observed({"controlplane": state(0, spec=0), "dataplane": state(0, spec=0)}, 0)
        plan = replicas(Intent.RUN, PLANES, GATES, stopped, DESIRED)
        assert plan == {"controlplane": 1, "dataplane": None}  # left at zero for now

    def test_a_change_to_both_planes_rolls_the_control_plane_first(self) -> None:
        new = {"controlplane": "new", "dataplane": "new"}
        old = Observed({"controlplane": state(1), "dataplane": state(1)}, 2)  # both run "h"
        assert replicas(Intent.RUN, PLANES, GATES, old, new)["dataplane"] is None
        rolled = DeploymentState(1, "new", 2, 2, 1, 1, 1)
        cp_done = Observed({"controlplane": rolled, "dataplane": state(1)}, 2)
        assert replicas(Intent.RUN, PLANES, GATES, cp_done, new)["dataplane"] == 1

    def test_stop_scales_both_to_zero_and_makes_nothing(self) -> None:
        running = Observed({"controlplane": state(1), "dataplane": state(1)}, 2)
        assert replicas(Intent.STOP, PLANES, GATES, running, DESIRED) == {
            "controlplane": 0,
            "dataplane": 0,
        }
        unmade = Observed({"controlplane": state(1), "dataplane": None}, 1)
        assert replicas(Intent.STOP, PLANES, GATES, unmade, DESIRED)["dataplane"] is None


def s3_connector(**config: str) -> Connector:
    base = {"bucket_name": "b", "region": "eu-central-1", "username_read": "r",
            "password_read": "rp", "username_write": "w", "password_write": "wp"}  # fmt: skip
    return Connector.model_validate(
        {
            "apiVersion": "dataspace.dev/v1alpha1",
            "kind": "Connector",
            "metadata": {"name": "orders", "namespace": "team-a", "uid": "u-1", "generation": 1},
            "spec": {"storage_type": "AmazonS3", "storage_config": {**base, **config}},
        }
    )


def plane_hashes(connector: Connector, **platform: str) -> dict[str, str]:
    edc = settings()
    profile = Edc(OperatorConfig(edc=edc), edc, {"vault-token": "t", **platform}, b"k" * 32)
    values = connector.spec.inline_credentials()
    inputs = Inputs(connector, values, credentials_digest(values), profile.keys(dict(KEYS)))
    return profile.hashes(inputs)


class TestPlaneHashes:
    def test_new_read_credentials_roll_the_data_plane_alone(self) -> None:
        before = plane_hashes(s3_connector())
        after = plane_hashes(s3_connector(password_read="rotated"))  # noqa: S106
        assert after["controlplane"] == before["controlplane"]
        assert after["dataplane"] != before["dataplane"]

    def test_a_new_vault_token_rolls_both(self) -> None:
        before, after = (
            plane_hashes(s3_connector()),
            plane_hashes(s3_connector(), **{"vault-token": "t2"}),
        )
        assert all(after[p] != before[p] for p in before)

    def test_fields_no_plane_reads_roll_nothing(self) -> None:
        before = plane_hashes(s3_connector())
        assert plane_hashes(s3_connector(region="eu-west-1", password_write="new")) == before  # noqa: S106

    def test_the_hashes_are_stable(self) -> None:
        assert plane_hashes(s3_connector()) == plane_hashes(s3_connector())


def stored(namespace: str, created: str, uid: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "orders",
            "namespace": namespace,
            "creationTimestamp": created,
            "uid": uid,
        }
    }


class TestNameTaken:
    def test_the_older_connector_keeps_the_name(self) -> None:
        older, younger = (
            stored("team-a", "2026-01-01T00:00:00Z", "a"),
            stored("team-b", "2026-02-01T00:00:00Z", "b"),
        )
        assert name_taken(older, [younger]) is None
        taken = name_taken(younger, [older])
        assert taken is not None and taken[0] == "NameTaken"
        assert "team-a" not in taken[1]  # another tenant's namespace is not shown

    def test_a_tie_is_broken_by_uid(self) -> None:
        one, two = (
            stored("x", "2026-01-01T00:00:00Z", "1"),
            stored("y", "2026-01-01T00:00:00Z", "2"),
        )
        assert name_taken(one, [two]) is None and name_taken(two, [one]) is not None


class TestTwoPlanes:
    def test_running_needs_both_planes_and_a_stuck_one_is_named(self) -> None:
        desired = {"controlplane": "h", "dataplane": "h"}
        only_cp = Observed({"controlplane": state(1), "dataplane": None}, 1)
        assert decide(ConnectorStatus(), None, desired, only_cp).phase is Phase.STARTING
        both = Observed({"controlplane": state(1), "dataplane": state(1)}, 2)
        assert decide(ConnectorStatus(), None, desired, both).phase is Phase.RUNNING
        stuck = DeploymentState(1, "h", 1, 1, 1, 1, 0, failure=("ProgressDeadlineExceeded", "slow"))
        failing = Observed({"controlplane": state(1), "dataplane": stuck}, 2)
        plan = decide(ConnectorStatus(), None, desired, failing)
        assert plan.phase is Phase.FAILED and "data plane" in plan.message


class TestIngress:
    def test_the_public_host_gets_tls_when_a_secret_is_named(self) -> None:
        connector = s3_connector()
        assert ingress(connector, settings()) is None  # no ingress class: no Ingress
        routed = ingress(connector, settings(EDC_INGRESS_CLASS="nginx"))
        assert routed is not None and "tls" not in routed["spec"]
        tls = {"EDC_INGRESS_CLASS": "nginx", "EDC_INGRESS_TLS_SECRET": "dsp-tls"}
        secured = ingress(connector, settings(**tls))
        assert secured is not None
        assert secured["spec"]["tls"] == [{"hosts": ["dsp.example.com"], "secretName": "dsp-tls"}]
