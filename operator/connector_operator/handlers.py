"""Thin Kopf handlers: watch events feed the reconcile service's caches and work queue.

Only event handlers are used: Kopf then writes nothing of its own (no finalizers, no progress
or last-handled-configuration annotations that would copy credentials from the spec), and the
reconcile path stays level-triggered."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from connector_operator import failpoints, resources
from connector_operator.config import OperatorConfig
from connector_operator.models import GROUP, PLURAL, VERSION
from connector_operator.reconcile import Reconciler

MANAGED = {resources.MANAGED_BY_LABEL: resources.MANAGER}


def register(registry: kopf.OperatorRegistry, reconciler: Reconciler, cfg: OperatorConfig) -> None:
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False  # framework logs are not the user's events
        settings.scanning.disabled = True  # no CRD/namespace watching: fewer RBAC rights
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.connect_timeout = 10
        settings.watching.reconnect_backoff = 1.0
        settings.networking.request_timeout = 30
        reconciler.queue.start()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await reconciler.queue.stop()

    # One attempt: a failed check must answer the kubelet (HTTP 500) now, not retry for a minute.
    @kopf.on.probe(id="watch", retries=1, backoff=0, registry=registry)
    async def watch_is_fresh(**_: Any) -> dict[str, int]:
        return await reconciler.check_freshness(cfg.namespaces, cfg.watch_grace_seconds)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def connector_event(event: kopf.RawEvent, **_: Any) -> None:
        if failpoints.armed("drop-connector-events"):
            return  # tests: a watch that stalls silently
        reconciler.on_connector(event["type"], event["object"])

    @kopf.on.event("apps", "v1", "deployments", labels=MANAGED, registry=registry)
    async def deployment_event(event: kopf.RawEvent, **_: Any) -> None:
        reconciler.on_deployment(event["type"], event["object"])

    @kopf.on.event("", "v1", "pods", labels=MANAGED, registry=registry)
    async def pod_event(event: kopf.RawEvent, **_: Any) -> None:
        reconciler.on_pod(event["type"], event["object"])

    @kopf.on.event("", "v1", "services", labels=MANAGED, registry=registry)
    async def service_event(event: kopf.RawEvent, **_: Any) -> None:
        reconciler.on_service(event["type"], event["object"])

    # All Secrets: a referenced Secret is the user's and carries no label of ours.
    @kopf.on.event("", "v1", "secrets", registry=registry)
    async def secret_event(event: kopf.RawEvent, **_: Any) -> None:
        reconciler.on_secret(event["type"], event["object"])

    logging.getLogger(__name__).debug(
        "handlers registered (namespaces: %s)", cfg.namespaces or "all"
    )
