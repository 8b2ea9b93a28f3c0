"""The plugin's only talk with the API server (the synchronous Kubernetes client, configured as
kubectl is: KUBECONFIG, --kubeconfig, --context)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, cast

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from connector_operator.models import ACTION_ANNOTATION, GROUP, PLURAL, VERSION
from connector_operator.resources import INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGER

Object = dict[str, Any]
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


class ClientError(Exception):
    """The API server refused or could not be reached; the message says which, in one line."""


def _explain(error: Exception, what: str) -> ClientError:
    if isinstance(error, ApiException):
        if error.status == 404:
            return ClientError(f"{what}: not found")
        reason = error.reason or "refused"
        return ClientError(f"{what}: the API server answered {error.status} {reason}")
    return ClientError(f"{what}: the API server did not answer ({type(error).__name__})")


class Cluster:
    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        try:
            self.api = config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
            listed, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError) as error:
            raise ClientError(f"no usable kubeconfig: {error}") from None
        chosen = context or active["name"]
        contexts = {c["name"]: c for c in listed}
        self.default_namespace = (
            contexts.get(chosen, {}).get("context", {}).get("namespace") or "default"
        )
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)

    def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except (ApiException, OSError, ConnectionError) as error:
            raise _explain(error, what) from None
        except Exception as error:  # urllib3's errors: an API server that does not answer
            if type(error).__module__.startswith("urllib3"):
                raise _explain(error, what) from None
            raise

    def connector(self, namespace: str, name: str) -> Object:
        what = f"Connector {namespace}/{name}"
        return cast(
            Object,
            self._call(what, self.custom.get_namespaced_custom_object,
                       GROUP, VERSION, namespace, PLURAL, name),
        )  # fmt: skip

    def connectors(self, namespace: str | None) -> list[Object]:
        if namespace is None:
            found = self._call("Connectors", self.custom.list_cluster_custom_object,
                               GROUP, VERSION, PLURAL)  # fmt: skip
        else:
            found = self._call(f"Connectors in {namespace}",
                               self.custom.list_namespaced_custom_object,
                               GROUP, VERSION, namespace, PLURAL)  # fmt: skip
        items = cast(list[Object], found.get("items") or [])
        return sorted(items, key=lambda c: (c["metadata"]["namespace"], c["metadata"]["name"]))

    def request(self, namespace: str, name: str, action: str) -> Object:
        """Sets the action annotation (a merge patch: nothing else is touched)."""
        patch = {"metadata": {"annotations": {ACTION_ANNOTATION: action}}}
        return cast(
            Object,
            self._call(f"Connector {namespace}/{name}",
                       self.custom.patch_namespaced_custom_object,
                       GROUP, VERSION, namespace, PLURAL, name, patch,
                       _content_type="application/merge-patch+json"),
        )  # fmt: skip

    def changes(self, namespace: str, name: str, since: str, seconds: int) -> Iterator[Object]:
        """The Connector as it changes after resourceVersion `since`, for up to `seconds`."""
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
            field_selector=f"metadata.name={name}", resource_version=since,
            timeout_seconds=max(1, seconds),
        )  # fmt: skip
        try:
            for event in stream:
                if event["type"] in ("ADDED", "MODIFIED"):
                    yield cast(Object, event["object"])
        except ApiException as error:
            if error.status == 410:  # the version is too old to follow: the caller reads again
                return
            raise _explain(error, f"watching Connector {namespace}/{name}") from None
        except OSError as error:
            raise _explain(error, f"watching Connector {namespace}/{name}") from None

    def owned(self, body: Mapping[str, Any]) -> list[tuple[str, Object]]:
        """The Connector's children the operator made (labelled, and owned by this Connector):
        Deployments whole, Services and Secrets as metadata only (a Secret's data is never
        fetched)."""
        meta = body["metadata"]
        selector = f"{INSTANCE_LABEL}={meta['name']},{MANAGED_BY_LABEL}={MANAGER}"
        found: list[tuple[str, Object]] = []
        ns = meta["namespace"]
        deployments = self._call("Deployments", self.apps.list_namespaced_deployment, ns,
                                 label_selector=selector)  # fmt: skip
        found += [("Deployment", self.api.sanitize_for_serialization(d))
                  for d in deployments.items]  # fmt: skip
        for kind, path in (("Service", "services"), ("Secret", "secrets")):
            listed = self._metadata(f"/api/v1/namespaces/{ns}/{path}", selector)
            found += [(kind, item) for item in listed]
        uid = meta.get("uid")
        return [
            (kind, obj) for kind, obj in found
            if any(o.get("uid") == uid for o in obj["metadata"].get("ownerReferences") or [])
        ]  # fmt: skip

    def _metadata(self, path: str, selector: str) -> list[Object]:
        """A LIST as metadata only (what `kubectl get -o name` asks for): no Secret's data
        reaches this process."""
        method, url, headers, body, post = self.api.param_serialize(
            "GET", path, query_params=[("labelSelector", selector)],
            header_params={"Accept": METADATA_ONLY}, auth_settings=["BearerToken"],
        )  # fmt: skip
        response = self._call(path, self.api.call_api, method, url, headers, body, post)
        response.read()
        if not 200 <= response.status < 300:
            raise _explain(ApiException(status=response.status, reason=response.reason), path)
        return cast(list[Object], json.loads(response.data).get("items") or [])

    def events(self, body: Mapping[str, Any], last: int) -> list[Object]:
        meta = body["metadata"]
        selector = f"involvedObject.uid={meta.get('uid')}"
        listed = self._call("events", self.core.list_namespaced_event, meta["namespace"],
                            field_selector=selector)  # fmt: skip
        events = [self.api.sanitize_for_serialization(e) for e in listed.items]

        def when(event: Object) -> str:
            return str(event.get("lastTimestamp") or event.get("eventTime") or "")

        return sorted(events, key=when)[-last:]

    def pods(self, namespace: str, selector: Mapping[str, str]) -> list[Object]:
        labels = ",".join(f"{k}={v}" for k, v in selector.items())
        listed = self._call("pods", self.core.list_namespaced_pod, namespace,
                            label_selector=labels)  # fmt: skip
        return [self.api.sanitize_for_serialization(p) for p in listed.items]

    def logs(
        self, namespace: str, pod: str, container: str, tail: int | None, follow: bool
    ) -> Iterator[bytes]:
        """The container's log, as kubectl logs reads it (through the kubelet)."""
        what = f"logs of pod {namespace}/{pod}"
        try:
            response = self._call(
                what, self.core.read_namespaced_pod_log, pod, namespace,
                container=container, follow=follow, tail_lines=tail, _preload_content=False,
            )  # fmt: skip
        except ClientError as error:
            # The API server asks the pod's node; a node that keeps no logs (a simulated node,
            # a kubelet that cannot be reached) answers with an error of its own.
            raise ClientError(f"{error} (the API server could not read them from the pod's "
                              "node)") from None  # fmt: skip
        try:
            yield from response.stream(4096)
        finally:
            response.release_conn()
