"""Unit tests of connector_operator.resources: the Secret, Deployment and Service a Connector
becomes, and the hash of its effective configuration."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from connector_operator import resources
from connector_operator.config import OperatorConfig, Port, Probe
from connector_operator.drift import judge
from connector_operator.models import Connector
from connector_operator.resources import (
    APPLIED_ANNOTATION,
    CONFIG_HASH_ANNOTATION,
    child_name,
    config_hash,
    credentials_digest,
    labels,
    owner_reference,
    stamp_of,
)

UID = "0b6f7c1e-3f43-4c83-9f6e-2f1f4a9d8e21"

# Distinct, recognisable values: a test fails if any of them leaks into a manifest.
S3_CREDENTIALS = {
    "username_read": "AKIAREADER7Q2LX",
    "password_read": "rd/Xk29+qLmZpT8vWn3e",
    "username_write": "AKIAWRITER5H8JD",
    "password_write": "wr/Pq71+aBcDeF0gHiJk",
}
AZURE_CREDENTIALS = {
    "account_name_read": "ordrdacct4k2",
    "account_key_read": "azRdKey0mN3bV6cX9zQ1wE4r==",
    "account_name_write": "ordwracct9m7",
    "account_key_write": "azWrKey7tY2uI5oP8aS1dF4g==",
}


def needs_apply(desired: dict[str, Any], actual: dict[str, Any] | None) -> bool:
    """Whether the reconcile path would write `desired` over `actual` (drift.judge)."""
    return judge(desired, actual, frozenset())[0] is not None


def raw(
    storage_type: str,
    storage_config: dict[str, Any],
    name: str = "orders",
    generation: int = 3,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Connector as the API server returns it."""
    return {
        "apiVersion": "dataspace.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": UID,
            "generation": generation,
            "resourceVersion": "48213",
            "creationTimestamp": "2025-03-01T10:00:00Z",
            "annotations": annotations or {},
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update"}],
        },
        "spec": {"storage_type": storage_type, "storage_config": storage_config},
        "status": {},
    }


S3_INLINE_CONFIG = {
    "bucket_name": "orders-data",
    "region": "eu-central-1",
    "url": "https://s3.eu-central-1.amazonaws.com",
    **S3_CREDENTIALS,
}


def s3_inline(**changes: Any) -> Connector:
    return Connector.model_validate(raw("AmazonS3", {**S3_INLINE_CONFIG, **changes}))


def s3_reference(ref: str = "orders-s3-credentials", **changes: Any) -> Connector:
    config = {
        "bucket_name": "orders-data",
        "region": "eu-central-1",
        "credentials_secret_ref": {"name": ref},
    }
    return Connector.model_validate(raw("AmazonS3", {**config, **changes}))


def azure_inline() -> Connector:
    config = {
        "container_name": "orders",
        "url": "https://ordersstorage.blob.core.windows.net",
        **AZURE_CREDENTIALS,
    }
    return Connector.model_validate(raw("AzureStorage", config))


def http_data() -> Connector:
    return Connector.model_validate(raw("HttpData", {}))


CONNECTORS: dict[str, Callable[[], Connector]] = {
    "s3-inline": s3_inline,
    "s3-reference": s3_reference,
    "azure-inline": azure_inline,
    "http-data": http_data,
}
ROTATED = {"password_read": "rotated-R34d"}
PLAIN = OperatorConfig()
WITH_PORTS = OperatorConfig(
    ports=(Port("http", 8080), Port("management", 8181)),
    readiness_probe=Probe("/api/check/readiness", "http"),
    liveness_probe=Probe("/api/check/liveness", "management", 10, 20),
)
DIGEST = credentials_digest(S3_CREDENTIALS)
KEY = bytes(range(32))  # a fixed hash key: the tests pin what the random one would vary


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env_of(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container(deployment)["env"]}


def children(connector: Connector, operator: OperatorConfig) -> list[dict[str, Any]]:
    built = [
        resources.secret(connector, KEY),
        resources.deployment(connector, operator, "h", 1),
        resources.service(connector, operator),
    ]
    return [manifest for manifest in built if manifest is not None]


class TestNamesLabelsOwner:
    def test_child_name(self) -> None:
        assert child_name("orders") == "connector-orders"

    def test_child_name_of_the_longest_connector_name_is_a_dns_label(self) -> None:
        assert len(child_name("a" * 53)) == 63

    def test_labels(self) -> None:
        assert labels("orders") == {
            "app.kubernetes.io/name": "connector",
            "app.kubernetes.io/instance": "orders",
            "app.kubernetes.io/managed-by": "connector-operator",
        }

    def test_owner_reference(self) -> None:
        assert owner_reference(s3_inline()) == {
            "apiVersion": "dataspace.dev/v1alpha1",
            "kind": "Connector",
            "name": "orders",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    @pytest.mark.parametrize("make", CONNECTORS.values(), ids=CONNECTORS.keys())
    @pytest.mark.parametrize("operator", [PLAIN, WITH_PORTS], ids=["no-ports", "ports"])
    def test_every_child_is_named_labelled_and_owned(
        self, make: Callable[[], Connector], operator: OperatorConfig
    ) -> None:
        connector = make()

        for manifest in children(connector, operator):
            meta = manifest["metadata"]
            assert meta["name"] == "connector-orders", manifest["kind"]
            assert meta["namespace"] == "team-a", manifest["kind"]
            assert meta["labels"] == labels("orders"), manifest["kind"]
            assert meta["ownerReferences"] == [owner_reference(connector)], manifest["kind"]

    def test_which_children_exist(self) -> None:
        kinds = {
            name: [m["kind"] for m in children(make(), WITH_PORTS)]
            for name, make in CONNECTORS.items()
        }

        assert kinds == {
            "s3-inline": ["Secret", "Deployment", "Service"],
            "s3-reference": ["Deployment", "Service"],
            "azure-inline": ["Secret", "Deployment", "Service"],
            "http-data": ["Deployment", "Service"],
        }


class TestSecret:
    def test_inline_credentials_are_stored_under_their_seed_names(self) -> None:
        secret = resources.secret(s3_inline(), KEY)

        assert secret is not None
        assert (secret["apiVersion"], secret["kind"], secret["type"]) == ("v1", "Secret", "Opaque")
        decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert decoded == S3_CREDENTIALS

    def test_azure_credentials(self) -> None:
        secret = resources.secret(azure_inline(), KEY)

        assert secret is not None
        assert set(secret["data"]) == set(AZURE_CREDENTIALS)

    def test_only_credentials_go_into_the_secret(self) -> None:
        secret = resources.secret(s3_inline(), KEY)

        assert secret is not None
        assert "orders-data" not in json.dumps(secret)
        assert "stringData" not in secret

    @pytest.mark.parametrize("make", [s3_reference, http_data], ids=["reference", "http-data"])
    def test_no_secret_without_inline_credentials(self, make: Callable[[], Connector]) -> None:
        assert resources.secret(make(), KEY) is None

    def test_its_name_is_the_one_the_deployment_reads(self) -> None:
        connector = s3_inline()
        secret = resources.secret(connector, KEY)
        deployment = resources.deployment(connector, PLAIN, "h", 1)

        assert secret is not None
        refs = {
            item["valueFrom"]["secretKeyRef"]["name"]
            for item in env_of(deployment).values()
            if "valueFrom" in item
        }
        assert refs == {secret["metadata"]["name"]}

    def test_its_stamp_is_keyed(self) -> None:
        """The stamp of a Secret of credentials cannot be recomputed from the data alone."""
        first = resources.secret(s3_inline(), KEY)
        other = resources.secret(s3_inline(), bytes(32))
        assert first is not None and other is not None
        assert stamp_of(first) != stamp_of(other)
        unstamped = copy.deepcopy(first)
        del unstamped["metadata"]["annotations"]
        plain = hashlib.sha256(
            json.dumps(unstamped, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()[:32]
        assert stamp_of(first) != plain


class TestDeployment:
    @pytest.mark.parametrize("replicas", [0, 1])
    def test_replicas(self, replicas: int) -> None:
        deployment = resources.deployment(s3_inline(), PLAIN, "h", replicas)

        assert deployment["spec"]["replicas"] == replicas

    def test_shape(self) -> None:
        deployment = resources.deployment(s3_inline(), PLAIN, "abc123", 1)
        spec = deployment["spec"]

        assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
        assert spec["strategy"] == {"type": "Recreate"}
        assert spec["progressDeadlineSeconds"] == 600
        assert spec["selector"] == {
            "matchLabels": {
                "app.kubernetes.io/name": "connector",
                "app.kubernetes.io/instance": "orders",
            }
        }
        template_labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= template_labels.items()
        assert template_labels == labels("orders")
        assert spec["template"]["metadata"]["annotations"] == {CONFIG_HASH_ANNOTATION: "abc123"}
        assert CONFIG_HASH_ANNOTATION == "dataspace.dev/config-hash"

    def test_the_selector_does_not_match_another_connectors_pods(self) -> None:
        other = Connector.model_validate(raw("HttpData", {}, name="invoices"))
        ours = resources.deployment(s3_inline(), PLAIN, "h", 1)["spec"]["selector"]["matchLabels"]
        theirs = resources.deployment(other, PLAIN, "h", 1)["spec"]["template"]["metadata"]

        assert not ours.items() <= theirs["labels"].items()

    def test_restricted_pod_security(self) -> None:
        deployment = resources.deployment(s3_inline(), PLAIN, "h", 1)
        pod = deployment["spec"]["template"]["spec"]
        pod_security, security = pod["securityContext"], container(deployment)["securityContext"]

        assert pod_security["runAsNonRoot"] is True
        assert pod_security["runAsUser"] != 0
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert security["runAsNonRoot"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["readOnlyRootFilesystem"] is True
        assert "privileged" not in security or security["privileged"] is False
        assert pod["automountServiceAccountToken"] is False
        for forbidden in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(forbidden)

    def test_a_read_only_root_still_has_a_writable_tmp(self) -> None:
        deployment = resources.deployment(s3_inline(), PLAIN, "h", 1)
        pod = deployment["spec"]["template"]["spec"]

        assert container(deployment)["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108 -- the mount under test
        assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]

    def test_image_and_resources_come_from_the_operator(self) -> None:
        operator = OperatorConfig(
            image="registry.example/edc:2.0",
            image_pull_policy="Always",
            resources={"limits": {"memory": "1Gi"}},
            progress_deadline_seconds=120,
        )

        deployment = resources.deployment(s3_inline(), operator, "h", 1)

        assert container(deployment)["name"] == "connector"
        assert container(deployment)["image"] == "registry.example/edc:2.0"
        assert container(deployment)["imagePullPolicy"] == "Always"
        assert container(deployment)["resources"] == {"limits": {"memory": "1Gi"}}
        assert deployment["spec"]["progressDeadlineSeconds"] == 120

    def test_default_image(self) -> None:
        deployment = resources.deployment(http_data(), PLAIN, "h", 1)

        assert container(deployment)["image"] == "ghcr.io/dataspace-dev/connector:0.1.0"

    def test_ports_and_probes(self) -> None:
        built = container(resources.deployment(s3_inline(), WITH_PORTS, "h", 1))

        assert built["ports"] == [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "management", "containerPort": 8181, "protocol": "TCP"},
        ]
        assert built["readinessProbe"] == {
            "httpGet": {"path": "/api/check/readiness", "port": "http"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
        }
        assert built["livenessProbe"] == {
            "httpGet": {"path": "/api/check/liveness", "port": "management"},
            "initialDelaySeconds": 10,
            "periodSeconds": 20,
        }

    def test_no_ports_no_probes(self) -> None:
        built = container(resources.deployment(s3_inline(), PLAIN, "h", 1))

        assert "ports" not in built
        assert "readinessProbe" not in built
        assert "livenessProbe" not in built


class TestEnvContract:
    def test_s3_inline(self) -> None:
        env = env_of(resources.deployment(s3_inline(), PLAIN, "h", 1))

        assert env == {
            "CONNECTOR_NAME": {"name": "CONNECTOR_NAME", "value": "orders"},
            "CONNECTOR_STORAGE_TYPE": {"name": "CONNECTOR_STORAGE_TYPE", "value": "AmazonS3"},
            "CONNECTOR_STORAGE_BUCKET_NAME": {
                "name": "CONNECTOR_STORAGE_BUCKET_NAME",
                "value": "orders-data",
            },
            "CONNECTOR_STORAGE_REGION": {
                "name": "CONNECTOR_STORAGE_REGION",
                "value": "eu-central-1",
            },
            "CONNECTOR_STORAGE_URL": {
                "name": "CONNECTOR_STORAGE_URL",
                "value": "https://s3.eu-central-1.amazonaws.com",
            },
            **{
                f"CONNECTOR_STORAGE_{key.upper()}": {
                    "name": f"CONNECTOR_STORAGE_{key.upper()}",
                    "valueFrom": {"secretKeyRef": {"name": "connector-orders", "key": key}},
                }
                for key in S3_CREDENTIALS
            },
        }

    def test_reference_mode_reads_the_users_secret(self) -> None:
        env = env_of(resources.deployment(s3_reference("team-a-s3"), PLAIN, "h", 1))

        refs = {
            name: item["valueFrom"]["secretKeyRef"]
            for name, item in env.items()
            if "valueFrom" in item
        }
        assert refs == {
            "CONNECTOR_STORAGE_USERNAME_READ": {"name": "team-a-s3", "key": "username_read"},
            "CONNECTOR_STORAGE_PASSWORD_READ": {"name": "team-a-s3", "key": "password_read"},
            "CONNECTOR_STORAGE_USERNAME_WRITE": {"name": "team-a-s3", "key": "username_write"},
            "CONNECTOR_STORAGE_PASSWORD_WRITE": {"name": "team-a-s3", "key": "password_write"},
        }
        assert "CONNECTOR_STORAGE_CREDENTIALS_SECRET_REF" not in env
        assert "CONNECTOR_STORAGE_URL" not in env

    def test_azure(self) -> None:
        env = env_of(resources.deployment(azure_inline(), PLAIN, "h", 1))

        assert {k: v.get("value") for k, v in env.items()} == {
            "CONNECTOR_NAME": "orders",
            "CONNECTOR_STORAGE_TYPE": "AzureStorage",
            "CONNECTOR_STORAGE_CONTAINER_NAME": "orders",
            "CONNECTOR_STORAGE_URL": "https://ordersstorage.blob.core.windows.net",
            "CONNECTOR_STORAGE_ACCOUNT_NAME_READ": None,
            "CONNECTOR_STORAGE_ACCOUNT_KEY_READ": None,
            "CONNECTOR_STORAGE_ACCOUNT_NAME_WRITE": None,
            "CONNECTOR_STORAGE_ACCOUNT_KEY_WRITE": None,
        }

    def test_http_data_has_no_storage_fields(self) -> None:
        env = env_of(resources.deployment(http_data(), PLAIN, "h", 1))

        assert env == {
            "CONNECTOR_NAME": {"name": "CONNECTOR_NAME", "value": "orders"},
            "CONNECTOR_STORAGE_TYPE": {"name": "CONNECTOR_STORAGE_TYPE", "value": "HttpData"},
        }

    @pytest.mark.parametrize("make", CONNECTORS.values(), ids=CONNECTORS.keys())
    def test_each_variable_has_either_a_value_or_a_secret_ref(
        self, make: Callable[[], Connector]
    ) -> None:
        for item in container(resources.deployment(make(), PLAIN, "h", 1))["env"]:
            assert set(item) in ({"name", "value"}, {"name", "valueFrom"}), item
            if "valueFrom" in item:
                assert set(item["valueFrom"]) == {"secretKeyRef"}

    @pytest.mark.parametrize(
        ("make", "credentials"),
        [(s3_inline, S3_CREDENTIALS), (azure_inline, AZURE_CREDENTIALS)],
        ids=["s3", "azure"],
    )
    @pytest.mark.parametrize("operator", [PLAIN, WITH_PORTS], ids=["no-ports", "ports"])
    def test_no_credential_value_in_the_deployment_or_service(
        self,
        make: Callable[[], Connector],
        credentials: dict[str, str],
        operator: OperatorConfig,
    ) -> None:
        connector = make()
        digest = credentials_digest(credentials)
        hash_ = config_hash(connector, digest, operator, KEY)
        text = json.dumps(
            [
                resources.deployment(connector, operator, hash_, 1),
                resources.service(connector, operator),
            ]
        )

        for value in credentials.values():
            assert value not in text
            assert base64.b64encode(value.encode()).decode() not in text
        assert hash_ in text  # the check above does look at the serialized manifests


class TestService:
    def test_no_service_without_ports(self) -> None:
        assert resources.service(s3_inline(), PLAIN) is None

    def test_cluster_ip_over_the_named_ports(self) -> None:
        service = resources.service(s3_inline(), WITH_PORTS)

        assert service is not None
        assert (service["apiVersion"], service["kind"]) == ("v1", "Service")
        assert service["spec"] == {
            "type": "ClusterIP",
            "selector": {
                "app.kubernetes.io/name": "connector",
                "app.kubernetes.io/instance": "orders",
            },
            "ports": [
                {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"},
                {"name": "management", "port": 8181, "targetPort": "management", "protocol": "TCP"},
            ],
        }

    def test_it_selects_the_deployments_pods(self) -> None:
        connector = s3_inline()
        service = resources.service(connector, WITH_PORTS)
        pod_labels = resources.deployment(connector, WITH_PORTS, "h", 1)["spec"]["template"][
            "metadata"
        ]["labels"]

        assert service is not None
        assert service["spec"]["selector"].items() <= pod_labels.items()


class TestConfigHash:
    BASE = config_hash(s3_inline(), DIGEST, PLAIN, KEY)

    def test_it_is_stable(self) -> None:
        assert config_hash(s3_inline(), DIGEST, PLAIN, KEY) == self.BASE
        assert len(self.BASE) == 32
        assert int(self.BASE, 16) >= 0

    def test_the_key_changes_it(self) -> None:
        other_key = bytes(range(1, 33))

        assert config_hash(s3_inline(), DIGEST, PLAIN, other_key) != self.BASE
        assert config_hash(s3_inline(), DIGEST, PLAIN, KEY[:16]) != self.BASE

    def test_it_cannot_be_recomputed_without_the_key(self) -> None:
        """Everything but the key is known to whoever reads the Connector and guesses the
        credentials: hashing the guesses as the operator does must not hit the hash."""
        connector = s3_inline()
        payload = json.dumps(
            {
                "storageType": "AmazonS3",
                "config": connector.spec.non_secret_fields(),
                "credentialsSecret": "connector-orders",
                "credentials": credentials_digest(S3_CREDENTIALS),
                "operator": PLAIN.fingerprint(),
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        plain = hashlib.sha256(payload).hexdigest()

        # The unkeyed formula of before (its first 32 hex digits) and the whole plain digest.
        assert plain[:32] != self.BASE
        assert self.BASE not in plain

    @pytest.mark.parametrize(
        ("connector", "digest", "operator"),
        [
            pytest.param(s3_inline(bucket_name="orders-archive"), DIGEST, PLAIN, id="bucket"),
            pytest.param(s3_inline(region="eu-west-1"), DIGEST, PLAIN, id="region"),
            pytest.param(s3_inline(url="https://minio.example:9000"), DIGEST, PLAIN, id="url"),
            pytest.param(
                s3_inline(**ROTATED),
                credentials_digest({**S3_CREDENTIALS, **ROTATED}),
                PLAIN,
                id="inline-credential",
            ),
            pytest.param(
                s3_inline(),
                credentials_digest({**S3_CREDENTIALS, "password_write": "rotated"}),
                PLAIN,
                id="rotated-secret-digest",
            ),
            pytest.param(
                s3_inline(), DIGEST, OperatorConfig(image="ghcr.io/x/edc:0.2.0"), id="image"
            ),
            pytest.param(
                s3_inline(), DIGEST, OperatorConfig(image_pull_policy="Always"), id="pull-policy"
            ),
            pytest.param(s3_inline(), DIGEST, WITH_PORTS, id="ports-and-probes"),
            pytest.param(
                s3_inline(), DIGEST, OperatorConfig(resources={"limits": {"cpu": "1"}}), id="res"
            ),
            pytest.param(s3_reference(), DIGEST, PLAIN, id="inline-to-reference"),
        ],
    )
    def test_what_changes_it(
        self, connector: Connector, digest: str, operator: OperatorConfig
    ) -> None:
        assert config_hash(connector, digest, operator, KEY) != self.BASE

    def test_another_referenced_secret_changes_it(self) -> None:
        digest = credentials_digest(S3_CREDENTIALS)

        assert config_hash(s3_reference("a"), digest, PLAIN, KEY) != config_hash(
            s3_reference("b"), digest, PLAIN, KEY
        )

    @pytest.mark.parametrize(
        ("connector", "operator"),
        [
            pytest.param(
                Connector.model_validate(
                    raw(
                        "AmazonS3",
                        S3_INLINE_CONFIG,
                        generation=9,
                        annotations={"dataspace.dev/action": "stop"},
                    )
                ),
                PLAIN,
                id="generation-and-action-annotation",
            ),
            pytest.param(s3_inline(), OperatorConfig(log_level="DEBUG", workers=9), id="op-only"),
            pytest.param(
                s3_inline(), OperatorConfig(progress_deadline_seconds=60), id="progress-deadline"
            ),
            pytest.param(
                s3_inline(), OperatorConfig(namespaces=("a",), leader_election=False), id="scope"
            ),
        ],
    )
    def test_what_does_not(self, connector: Connector, operator: OperatorConfig) -> None:
        assert config_hash(connector, DIGEST, operator, KEY) == self.BASE

    def test_a_status_change_does_not(self) -> None:
        body = raw("HttpData", {})
        before = config_hash(Connector.model_validate(body), "", PLAIN, KEY)
        body["status"] = {"phase": "Running", "configHash": before}

        assert config_hash(Connector.model_validate(body), "", PLAIN, KEY) == before


class TestCredentialsDigest:
    def test_it_does_not_depend_on_order_or_bytes(self) -> None:
        reordered = dict(reversed(list(S3_CREDENTIALS.items())))
        as_bytes = {k: v.encode() for k, v in S3_CREDENTIALS.items()}

        assert credentials_digest(reordered) == DIGEST
        assert credentials_digest(as_bytes) == DIGEST

    @pytest.mark.parametrize(
        "changed",
        [
            {**S3_CREDENTIALS, "password_read": "another"},
            {**S3_CREDENTIALS, "extra": "x"},
            {k: v for k, v in S3_CREDENTIALS.items() if k != "username_write"},
            {f"{k}_renamed": v for k, v in S3_CREDENTIALS.items()},
        ],
        ids=["value", "added-key", "removed-key", "renamed-key"],
    )
    def test_it_changes_with_keys_and_values(self, changed: dict[str, str]) -> None:
        assert credentials_digest(changed) != DIGEST

    def test_it_does_not_contain_the_values(self) -> None:
        for value in S3_CREDENTIALS.values():
            assert value not in DIGEST


class TestStampAndNeedsApply:
    def test_every_child_is_stamped_with_a_stable_digest(self) -> None:
        first = children(s3_inline(), WITH_PORTS)
        second = children(s3_inline(), WITH_PORTS)

        stamps = [stamp_of(m) for m in first]
        assert all(isinstance(s, str) and len(s) == 32 for s in stamps)
        assert stamps == [stamp_of(m) for m in second]
        assert APPLIED_ANNOTATION == "dataspace.dev/applied"

    @pytest.mark.parametrize(
        ("before", "after"),
        [
            pytest.param(
                lambda: resources.deployment(s3_inline(), PLAIN, "h1", 1),
                lambda: resources.deployment(s3_inline(), PLAIN, "h2", 1),
                id="deployment-config-hash",
            ),
            pytest.param(
                lambda: resources.deployment(s3_inline(), PLAIN, "h", 1),
                lambda: resources.deployment(s3_inline(), PLAIN, "h", 0),
                id="deployment-replicas",
            ),
            pytest.param(
                lambda: resources.deployment(s3_inline(), PLAIN, "h", 1),
                lambda: resources.deployment(
                    s3_inline(), OperatorConfig(progress_deadline_seconds=30), "h", 1
                ),
                id="deployment-progress-deadline",
            ),
            pytest.param(
                lambda: resources.deployment(s3_inline(), PLAIN, "h", 1),
                lambda: resources.deployment(s3_inline(bucket_name="b2"), PLAIN, "h", 1),
                id="deployment-env",
            ),
            pytest.param(
                lambda: resources.secret(s3_inline(), KEY),
                lambda: resources.secret(s3_inline(**ROTATED), KEY),
                id="secret-rotated",
            ),
            pytest.param(
                lambda: resources.service(s3_inline(), WITH_PORTS),
                lambda: resources.service(s3_inline(), OperatorConfig(ports=(Port("http", 80),))),
                id="service-ports",
            ),
        ],
    )
    def test_the_stamp_changes_with_the_manifest(
        self,
        before: Callable[[], dict[str, Any] | None],
        after: Callable[[], dict[str, Any] | None],
    ) -> None:
        old, new = before(), after()

        assert old is not None
        assert new is not None
        assert stamp_of(old) != stamp_of(new)
        assert needs_apply(new, old)

    def test_stamp_of_objects_the_operator_did_not_write(self) -> None:
        assert stamp_of({"metadata": {"name": "x"}}) is None
        assert stamp_of({"metadata": {"annotations": None}}) is None
        assert stamp_of({"metadata": {"annotations": {APPLIED_ANNOTATION: 3}}}) is None
        assert stamp_of({}) is None

    @staticmethod
    def as_server_returns(manifest: dict[str, Any]) -> dict[str, Any]:
        served = copy.deepcopy(manifest)
        served["metadata"].update(
            resourceVersion="5120",
            uid="d2f0c6c8-0000-4000-8000-000000000000",
            generation=4,
            creationTimestamp="2025-03-01T10:00:01Z",
            managedFields=[{"manager": "connector-operator", "operation": "Apply"}],
        )
        served["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "2"
        served["status"] = {"replicas": 1, "availableReplicas": 1}
        return served

    def test_nothing_to_apply_when_the_server_has_it(self) -> None:
        desired = resources.deployment(s3_inline(), PLAIN, "h", 1)

        assert not needs_apply(desired, self.as_server_returns(desired))

    @pytest.mark.parametrize("kind", ["secret", "service"])
    def test_nothing_to_apply_for_converged_objects_without_replicas(self, kind: str) -> None:
        desired = (
            resources.secret(s3_inline(), KEY)
            if kind == "secret"
            else resources.service(s3_inline(), WITH_PORTS)
        )

        assert desired is not None
        assert not needs_apply(desired, self.as_server_returns(desired))

    def test_apply_when_missing(self) -> None:
        assert needs_apply(resources.deployment(s3_inline(), PLAIN, "h", 1), None)

    def test_apply_when_someone_removed_the_stamp(self) -> None:
        desired = resources.deployment(s3_inline(), PLAIN, "h", 1)
        served = self.as_server_returns(desired)
        del served["metadata"]["annotations"][APPLIED_ANNOTATION]

        assert needs_apply(desired, served)

    def test_apply_when_scaled_by_hand(self) -> None:
        desired = resources.deployment(s3_inline(), PLAIN, "h", 0)
        served = self.as_server_returns(desired)
        served["spec"]["replicas"] = 3  # kubectl scale leaves the annotation alone

        assert needs_apply(desired, served)
