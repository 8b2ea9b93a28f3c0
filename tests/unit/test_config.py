"""Unit tests of connector_operator.config: the CONNECTOR_OPERATOR_* environment variables."""

from __future__ import annotations

from typing import Any

import pytest

from connector_operator.config import (
    DEFAULT_IMAGE,
    ConfigError,
    OperatorConfig,
    Port,
    Probe,
)
from connector_operator.config import from_env as read_env
from connector_operator.storage.settings import Mode, StorageCheckSettings

P = "CONNECTOR_OPERATOR_"


def from_env(env: dict[str, str]) -> OperatorConfig:
    """The common settings, read under the generic profile (the edc profile's own settings are
    tested in test_edc.py)."""
    return read_env({"CONNECTOR_OPERATOR_PROFILE": "generic", **env})


class TestDefaults:
    def test_an_empty_environment_gives_the_documented_defaults(self) -> None:
        config = from_env({})

        assert config == OperatorConfig()
        assert config.image == DEFAULT_IMAGE == "ghcr.io/dataspace-dev/connector:0.1.0"
        assert config.image_pull_policy == "IfNotPresent"
        assert config.ports == ()
        assert config.resources == {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        }
        assert (config.readiness_probe, config.liveness_probe) == (None, None)
        assert config.progress_deadline_seconds == 600
        assert config.namespaces == ()
        assert (config.log_level, config.log_format) == ("INFO", "json")
        assert (config.metrics_port, config.health_port) == (8080, 8081)
        assert config.leader_election is True
        assert (config.lease_name, config.lease_namespace) == (
            "connector-operator",
            "connector-operator-system",
        )
        assert config.workers == 4
        assert config.hash_key_secret == "connector-operator-hash-key"  # noqa: S105 -- a name
        assert config.storage_check == StorageCheckSettings(
            mode=Mode.WARN, interval_seconds=300, write=True, concurrency=8, timeout_seconds=5
        )

    def test_unrelated_variables_are_ignored(self) -> None:
        env = {"PATH": "/usr/bin", "IMAGE": "other:1", "CONNECTOR_IMAGE": "other:2"}

        assert from_env(env) == OperatorConfig()

    @pytest.mark.parametrize(
        "name",
        [
            "IMAGE",
            "IMAGE_PULL_POLICY",
            "PORTS",
            "RESOURCES",
            "READINESS_PROBE",
            "LIVENESS_PROBE",
            "PROGRESS_DEADLINE_SECONDS",
            "NAMESPACES",
            "METRICS_PORT",
            "HEALTH_PORT",
            "LEADER_ELECTION",
            "LEASE_NAME",
            "LEASE_NAMESPACE",
            "WORKERS",
            "HASH_KEY_SECRET",
            "STORAGE_CHECK",
            "STORAGE_CHECK_INTERVAL_SECONDS",
            "STORAGE_CHECK_WRITE",
            "STORAGE_CHECK_CONCURRENCY",
            "STORAGE_CHECK_TIMEOUT_SECONDS",
        ],
    )
    def test_an_empty_value_means_the_default(self, name: str) -> None:
        assert from_env({P + name: ""}) == OperatorConfig()


class TestEveryVariable:
    @pytest.mark.parametrize(
        ("env", "attribute", "expected"),
        [
            ({"IMAGE": "registry.example/edc:1.2"}, "image", "registry.example/edc:1.2"),
            ({"IMAGE_PULL_POLICY": "Always"}, "image_pull_policy", "Always"),
            ({"PORTS": "http=8080"}, "ports", (Port("http", 8080),)),
            (
                {"PORTS": " HTTP=8080, management=8181 ,"},
                "ports",
                (Port("http", 8080), Port("management", 8181)),
            ),
            ({"PORTS": "max=65535"}, "ports", (Port("max", 65535),)),
            (
                {"RESOURCES": '{"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}}'},
                "resources",
                {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}},
            ),
            ({"RESOURCES": '{"limits": {"cpu": "2"}}'}, "resources", {"limits": {"cpu": "2"}}),
            (
                {"PORTS": "http=8080,management=8181", "READINESS_PROBE": "/ready"},
                "readiness_probe",
                Probe(path="/ready", port="http"),
            ),
            (
                {"PORTS": "http=8080,management=8181", "LIVENESS_PROBE": "/live@management"},
                "liveness_probe",
                Probe(path="/live", port="management"),
            ),
            ({"PROGRESS_DEADLINE_SECONDS": "120"}, "progress_deadline_seconds", 120),
            ({"NAMESPACES": "team-a"}, "namespaces", ("team-a",)),
            ({"NAMESPACES": " team-a, b,,c "}, "namespaces", ("team-a", "b", "c")),
            ({"LOG_LEVEL": "debug"}, "log_level", "DEBUG"),
            ({"LOG_LEVEL": "Warning"}, "log_level", "WARNING"),
            ({"LOG_LEVEL": "ERROR"}, "log_level", "ERROR"),
            ({"LOG_FORMAT": "TEXT"}, "log_format", "text"),
            ({"LOG_FORMAT": "json"}, "log_format", "json"),
            ({"METRICS_PORT": "9090"}, "metrics_port", 9090),
            ({"HEALTH_PORT": "9091"}, "health_port", 9091),
            ({"LEADER_ELECTION": "false"}, "leader_election", False),
            ({"LEADER_ELECTION": "0"}, "leader_election", False),
            ({"LEADER_ELECTION": " No "}, "leader_election", False),
            ({"LEADER_ELECTION": "off"}, "leader_election", False),
            ({"LEADER_ELECTION": "TRUE"}, "leader_election", True),
            ({"LEADER_ELECTION": "1"}, "leader_election", True),
            ({"LEADER_ELECTION": "yes"}, "leader_election", True),
            ({"LEADER_ELECTION": "on"}, "leader_election", True),
            ({"LEASE_NAME": "my-lease"}, "lease_name", "my-lease"),
            ({"LEASE_NAMESPACE": "ops"}, "lease_namespace", "ops"),
            ({"WORKERS": "16"}, "workers", 16),
            ({"HASH_KEY_SECRET": "hash-key"}, "hash_key_secret", "hash-key"),
            ({"HASH_KEY_SECRET": "ops.hash-key.v2"}, "hash_key_secret", "ops.hash-key.v2"),
            ({"HASH_KEY_SECRET": "k" * 253}, "hash_key_secret", "k" * 253),
            ({"STORAGE_CHECK": "Enforce"}, "storage_check", StorageCheckSettings(Mode.ENFORCE)),
            ({"STORAGE_CHECK": "off"}, "storage_check", StorageCheckSettings(Mode.OFF)),
            (
                {"STORAGE_CHECK_INTERVAL_SECONDS": "60", "STORAGE_CHECK_WRITE": "false"},
                "storage_check",
                StorageCheckSettings(interval_seconds=60, write=False),
            ),
            (
                {"STORAGE_CHECK_CONCURRENCY": "2", "STORAGE_CHECK_TIMEOUT_SECONDS": "10"},
                "storage_check",
                StorageCheckSettings(concurrency=2, timeout_seconds=10),
            ),
        ],
        ids=lambda value: "-".join(value) if isinstance(value, dict) else None,
    )
    def test_the_variable_sets_its_field(
        self, env: dict[str, str], attribute: str, expected: Any
    ) -> None:
        config = from_env({P + k: v for k, v in env.items()})

        assert getattr(config, attribute) == expected

    def test_the_other_fields_keep_their_defaults(self) -> None:
        config = from_env({P + "IMAGE": "registry.example/edc:1.2"})

        assert config == OperatorConfig(image="registry.example/edc:1.2")

    def test_a_full_environment(self) -> None:
        env = {
            "IMAGE": "registry.example/edc:2",
            "IMAGE_PULL_POLICY": "Never",
            "PORTS": "http=8080,management=8181",
            "RESOURCES": '{"requests": {"cpu": "250m"}}',
            "READINESS_PROBE": "/api/check/readiness",
            "LIVENESS_PROBE": "/api/check/liveness@management",
            "PROGRESS_DEADLINE_SECONDS": "300",
            "NAMESPACES": "a,b",
            "LOG_LEVEL": "warning",
            "LOG_FORMAT": "text",
            "METRICS_PORT": "9000",
            "HEALTH_PORT": "9001",
            "LEADER_ELECTION": "off",
            "LEASE_NAME": "lease",
            "LEASE_NAMESPACE": "ops",
            "WORKERS": "1",
            "HASH_KEY_SECRET": "key",
        }

        config = from_env({P + k: v for k, v in env.items()})

        assert config == OperatorConfig(
            image="registry.example/edc:2",
            image_pull_policy="Never",
            ports=(Port("http", 8080), Port("management", 8181)),
            resources={"requests": {"cpu": "250m"}},
            readiness_probe=Probe("/api/check/readiness", "http"),
            liveness_probe=Probe("/api/check/liveness", "management"),
            progress_deadline_seconds=300,
            namespaces=("a", "b"),
            log_level="WARNING",
            log_format="text",
            metrics_port=9000,
            health_port=9001,
            leader_election=False,
            lease_name="lease",
            lease_namespace="ops",
            workers=1,
            hash_key_secret="key",  # noqa: S106 -- the Secret's name
        )


FINGERPRINT_BASE = {"PORTS": "http=8080", "READINESS_PROBE": "/ready"}


class TestFingerprint:
    """The part of the configuration that shapes a pod, and so enters the config hash."""

    @pytest.mark.parametrize(
        "change",
        [
            {"IMAGE": "registry.example/edc:9"},
            {"IMAGE_PULL_POLICY": "Always"},
            {"PORTS": "http=9090"},
            {"PORTS": "web=8080"},
            {"RESOURCES": '{"limits": {"memory": "1Gi"}}'},
            {"READINESS_PROBE": "/other"},
            {"LIVENESS_PROBE": "/live"},
        ],
        ids=lambda change: next(iter(change)),
    )
    def test_pod_shaping_variables_change_it(self, change: dict[str, str]) -> None:
        before = from_env({P + k: v for k, v in FINGERPRINT_BASE.items()})
        after = from_env({P + k: v for k, v in {**FINGERPRINT_BASE, **change}.items()})

        assert after.fingerprint() != before.fingerprint()

    @pytest.mark.parametrize(
        "change",
        [
            {"NAMESPACES": "a,b"},
            {"LOG_LEVEL": "DEBUG"},
            {"LOG_FORMAT": "text"},
            {"METRICS_PORT": "9999"},
            {"HEALTH_PORT": "9998"},
            {"LEADER_ELECTION": "false"},
            {"LEASE_NAME": "x"},
            {"LEASE_NAMESPACE": "y"},
            {"WORKERS": "8"},
            {"HASH_KEY_SECRET": "other-key"},
            {"STORAGE_CHECK": "enforce"},
            {"STORAGE_CHECK_WRITE": "false"},
        ],
        ids=lambda change: next(iter(change)),
    )
    def test_operator_only_variables_do_not(self, change: dict[str, str]) -> None:
        before = from_env({P + k: v for k, v in FINGERPRINT_BASE.items()})
        after = from_env({P + k: v for k, v in {**FINGERPRINT_BASE, **change}.items()})

        assert after.fingerprint() == before.fingerprint()


class TestErrors:
    @pytest.mark.parametrize(
        ("env", "variable", "detail"),
        [
            pytest.param({"WORKERS": "four"}, "WORKERS", "'four' is not a whole number", id="int"),
            pytest.param({"WORKERS": "2.5"}, "WORKERS", "not a whole number", id="float"),
            pytest.param({"WORKERS": "0"}, "WORKERS", "must be at least 1", id="workers-0"),
            pytest.param({"METRICS_PORT": "x"}, "METRICS_PORT", "not a whole number", id="metrics"),
            pytest.param({"HEALTH_PORT": "-1"}, "HEALTH_PORT", "must be at least 0", id="health"),
            pytest.param(
                {"PROGRESS_DEADLINE_SECONDS": "0"},
                "PROGRESS_DEADLINE_SECONDS",
                "must be at least 1",
                id="deadline-0",
            ),
            pytest.param({"PORTS": "http"}, "PORTS", "'http'", id="port-no-number"),
            pytest.param({"PORTS": "=8080"}, "PORTS", "'=8080'", id="port-no-name"),
            pytest.param({"PORTS": "http=0"}, "PORTS", "1 to 65535", id="port-0"),
            pytest.param({"PORTS": "http=65536"}, "PORTS", "1 to 65535", id="port-too-big"),
            pytest.param({"PORTS": "http=80a"}, "PORTS", "'http=80a'", id="port-not-a-number"),
            pytest.param({"PORTS": "http=-1"}, "PORTS", "'http=-1'", id="port-negative"),
            pytest.param({"PORTS": "my_port=80"}, "PORTS", "'my_port=80'", id="port-bad-name"),
            pytest.param({"PORTS": "http=80,HTTP=81"}, "PORTS", "twice", id="port-twice"),
            pytest.param(
                {"PORTS": "http=8080", "READINESS_PROBE": "/ready@metrics"},
                "READINESS_PROBE",
                "port 'metrics' is not in CONNECTOR_OPERATOR_PORTS",
                id="probe-unknown-port",
            ),
            pytest.param(
                {"PORTS": "http=8080", "LIVENESS_PROBE": "/live@admin"},
                "LIVENESS_PROBE",
                "port 'admin' is not in",
                id="liveness-unknown-port",
            ),
            pytest.param(
                {"READINESS_PROBE": "/ready"},
                "READINESS_PROBE",
                "needs CONNECTOR_OPERATOR_PORTS",
                id="probe-without-ports",
            ),
            pytest.param(
                {"PORTS": "http=8080", "LIVENESS_PROBE": "live"},
                "LIVENESS_PROBE",
                "must start with '/'",
                id="probe-relative-path",
            ),
            pytest.param({"RESOURCES": "{cpu: 1}"}, "RESOURCES", "is not JSON", id="json"),
            pytest.param({"RESOURCES": "[]"}, "RESOURCES", "must look like", id="json-list"),
            pytest.param(
                {"RESOURCES": '{"request": {"cpu": "1"}}'},
                "RESOURCES",
                "must look like",
                id="json-unknown-key",
            ),
            pytest.param({"LOG_LEVEL": "verbose"}, "LOG_LEVEL", "'VERBOSE'", id="log-level"),
            pytest.param({"LOG_LEVEL": "CRITICAL"}, "LOG_LEVEL", "must be DEBUG", id="critical"),
            pytest.param({"LOG_FORMAT": "yaml"}, "LOG_FORMAT", "json or text", id="log-format"),
            pytest.param(
                {"STORAGE_CHECK": "strict"}, "STORAGE_CHECK", "enforce, warn, off", id="check-mode"
            ),
            pytest.param(
                {"STORAGE_CHECK_INTERVAL_SECONDS": "0"},
                "STORAGE_CHECK_INTERVAL_SECONDS",
                "at least 1",
                id="check-interval",
            ),
            pytest.param(
                {"STORAGE_CHECK_WRITE": "maybe"}, "STORAGE_CHECK_WRITE", "true or false", id="write"
            ),
            pytest.param(
                {"STORAGE_CHECK_TIMEOUT_SECONDS": "600"},
                "STORAGE_CHECK_TIMEOUT_SECONDS",
                "at most 120",
                id="check-timeout",
            ),
            pytest.param(
                {"LEADER_ELECTION": "maybe"},
                "LEADER_ELECTION",
                "must be true or false",
                id="bool",
            ),
            *(
                pytest.param(
                    {"HASH_KEY_SECRET": name}, "HASH_KEY_SECRET", "must be a DNS subdomain", id=id_
                )
                for name, id_ in [
                    ("Hash-Key", "secret-uppercase"),
                    ("hash_key", "secret-underscore"),
                    ("-hash-key", "secret-leading-dash"),
                    ("hash-key.", "secret-trailing-dot"),
                    ("hash..key", "secret-empty-part"),
                    ("hash-.key", "secret-part-ends-with-dash"),
                    (" hash-key", "secret-blank"),
                    ("k" * 254, "secret-too-long"),
                ]
            ),
        ],
    )
    def test_the_error_names_the_variable(
        self, env: dict[str, str], variable: str, detail: str
    ) -> None:
        with pytest.raises(ConfigError) as raised:
            from_env({P + k: v for k, v in env.items()})

        assert P + variable in str(raised.value)
        assert detail in str(raised.value)

    def test_config_errors_are_value_errors(self) -> None:
        with pytest.raises(ValueError, match=f"{P}WORKERS"):
            from_env({P + "WORKERS": "many"})


@pytest.mark.parametrize(
    ("env", "detail"),
    [
        ({"PORTS": "a-very-long-port-name=80"}, "at most 15"),
        ({"PORTS": "8080=80"}, "with a letter"),
        ({"METRICS_PORT": "9000", "HEALTH_PORT": "9000"}, "must differ"),
        ({"METRICS_PORT": "70000"}, "at most 65535"),
    ],
)
def test_values_kubernetes_or_the_machine_would_refuse_later_are_refused_at_start(
    env: dict[str, str], detail: str
) -> None:
    with pytest.raises(ConfigError, match=detail):
        from_env({P + k: v for k, v in env.items()})


def test_port_names_follow_kubernetes_and_probes_match_them_case_blind() -> None:
    cfg = from_env({P + "PORTS": "HTTP=8080,mgmt-api=8181", P + "READINESS_PROBE": "/ready@HTTP"})
    assert [p.name for p in cfg.ports] == ["http", "mgmt-api"]
    assert cfg.readiness_probe is not None
    assert cfg.readiness_probe.port == "http"
    assert from_env({P + "LOG_LEVEL": "", P + "LOG_FORMAT": ""}).log_level == "INFO"
