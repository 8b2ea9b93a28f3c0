"""Unit tests of connector_operator.drift: which hand edits of a child are drift, and which
server-side additions are not."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from connector_operator import resources
from connector_operator.config import OperatorConfig, Port
from connector_operator.drift import Why, differences, judge, repair_patch
from connector_operator.models import Connector

CONFIG = OperatorConfig(ports=(Port("http", 8080),))
KEY = bytes(32)


def demo() -> Connector:
    return Connector.model_validate(
        {
            "metadata": {"name": "demo", "namespace": "ns", "uid": "u-1"},
            "spec": {
                "storage_type": "AmazonS3",
                "storage_config": {
                    "bucket_name": "b",
                    "region": "r",
                    "username_read": "ur",
                    "password_read": "pr",
                    "username_write": "uw",
                    "password_write": "pw",
                },
            },
        }
    )


def deployment() -> dict[str, Any]:
    return resources.deployment(demo(), CONFIG, "hash", 1)


def served(desired: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns: the manifest plus defaults, status and other metadata."""
    body = copy.deepcopy(desired)
    body["metadata"].update(uid="x", resourceVersion="7", generation=1)
    body["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    body["status"] = {"replicas": 1}
    if body["kind"] == "Deployment":
        pod = body["spec"]["template"]["spec"]
        pod.update(restartPolicy="Always", dnsPolicy="ClusterFirst")
        pod["containers"][0].update(terminationMessagePath="/dev/termination-log")
        pod["containers"][0]["env"].append({"name": "INJECTED", "value": "by a webhook"})
        pod["containers"].append({"name": "sidecar", "image": "mesh:1"})
    return body


def container(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = body["spec"]["template"]["spec"]["containers"][0]
    return found


EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "image": (
        lambda d: container(d).update(image="evil/image:1"),
        "spec.template.spec.containers[connector].image",
    ),
    "replicas": (lambda d: d["spec"].update(replicas=3), "spec.replicas"),
    "env value": (
        lambda d: container(d)["env"][0].update(value="other"),
        "spec.template.spec.containers[connector].env[CONNECTOR_NAME].value",
    ),
    "env removed": (
        lambda d: container(d)["env"].pop(1),
        "spec.template.spec.containers[connector].env[CONNECTOR_STORAGE_TYPE]",
    ),
    "security context": (
        lambda d: container(d)["securityContext"].update(allowPrivilegeEscalation=True),
        "spec.template.spec.containers[connector].securityContext.allowPrivilegeEscalation",
    ),
    "capabilities": (
        lambda d: container(d)["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
        "spec.template.spec.containers[connector].securityContext.capabilities.drop",
    ),
    "pod security": (
        lambda d: d["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot"),
        "spec.template.spec.securityContext.runAsNonRoot",
    ),
    "label": (
        lambda d: d["metadata"]["labels"].pop(resources.MANAGED_BY_LABEL),
        f"metadata.labels.{resources.MANAGED_BY_LABEL}",
    ),
}


class TestDifferences:
    def test_what_the_server_adds_is_not_drift(self) -> None:
        desired = deployment()
        assert differences(desired, served(desired)) == []

    @pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
    def test_a_hand_edit_is_found_by_its_path(
        self, edit: tuple[Callable[[dict[str, Any]], None], str]
    ) -> None:
        change, path = edit
        desired = deployment()
        actual = served(desired)
        change(actual)
        assert differences(desired, actual) == [path]

    def test_a_removed_container_is_drift(self) -> None:
        desired = deployment()
        actual = served(desired)
        actual["spec"]["template"]["spec"]["containers"].pop(0)
        assert differences(desired, actual) == ["spec.template.spec.containers[connector]"]

    def test_secret_paths_name_keys_never_values(self) -> None:
        secret = resources.secret(demo(), KEY)
        assert secret is not None
        actual = served(secret)
        actual["data"]["password_read"] = "c3RvbGVu"  # noqa: S105 -- base64 of "stolen"
        found = differences(secret, actual)
        assert found == ["data.password_read"]
        assert all(secret["data"]["password_read"] not in path for path in found)

    def test_service_ports(self) -> None:
        service = resources.service(demo(), CONFIG)
        assert service is not None
        actual = served(service)
        actual["spec"]["ports"][0]["port"] = 9999
        assert differences(service, actual) == ["spec.ports[http].port"]


class TestJudge:
    def test_missing_is_created(self) -> None:
        assert judge(deployment(), None, frozenset()) == (Why.CREATE, [])

    def test_a_new_stamp_is_the_operators_own_update(self) -> None:
        old = served(resources.deployment(demo(), CONFIG, "old-hash", 1))
        assert judge(deployment(), old, frozenset()) == (Why.UPDATE, [])

    def test_converged_is_left_alone(self) -> None:
        desired = deployment()
        assert judge(desired, served(desired), frozenset()) == (None, [])

    def test_a_hand_edit_under_the_same_stamp_is_repaired(self) -> None:
        desired = deployment()
        actual = served(desired)
        container(actual)["image"] = "evil/image:1"
        why, paths = judge(desired, actual, frozenset())
        assert why is Why.REPAIR
        assert paths == ["spec.template.spec.containers[connector].image"]

    def test_paths_the_server_rewrites_are_tolerated(self) -> None:
        desired = deployment()
        actual = served(desired)
        container(actual)["resources"]["requests"]["cpu"] = "0.1"
        path = "spec.template.spec.containers[connector].resources.requests.cpu"
        assert judge(desired, actual, frozenset({path})) == (None, [])


class TestExact:
    """A Secret's data and a Service's ports belong to the operator whole."""

    def test_an_added_secret_key_is_drift_and_the_patch_removes_it(self) -> None:
        secret = resources.secret(demo(), KEY)
        assert secret is not None
        actual = served(secret)
        actual["data"]["account_key_read"] = "eA=="
        assert differences(secret, actual) == ["data.account_key_read"]
        patch = repair_patch(secret, actual)
        assert patch["data"]["account_key_read"] is None
        assert {k: v for k, v in patch["data"].items() if v is not None} == secret["data"]

    def test_an_added_service_port_is_drift(self) -> None:
        service = resources.service(demo(), CONFIG)
        assert service is not None
        actual = served(service)
        actual["spec"]["ports"].append({"name": "evil", "port": 6666, "protocol": "TCP"})
        assert differences(service, actual) == ["spec.ports[evil]"]
        assert repair_patch(service, actual)["spec"]["ports"] == service["spec"]["ports"]

    def test_added_items_elsewhere_are_not_drift(self) -> None:
        desired = deployment()
        actual = served(desired)
        actual["metadata"]["labels"]["team"] = "a"
        assert differences(desired, actual) == []
