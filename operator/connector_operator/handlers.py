"""Thin Kopf handlers: Kopf runs the process (login, startup and cleanup, the liveness probe);
the controller, started once this replica leads, holds the watches and the work queue.

The watches are the controller's own list-watch informers, not Kopf's resource handlers: Kopf's
stream does not report objects deleted while a watch was down (a 410 Gone relist), and the
operator must notice those. Kopf therefore writes nothing into Connectors: no finalizers, no
progress or last-handled-configuration annotations that would copy credentials from the spec.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import kopf

from connector_operator import metrics
from connector_operator.config import OperatorConfig
from connector_operator.controller import Controller
from connector_operator.hashkey import ensure_hash_key
from connector_operator.installation import profile_of
from connector_operator.kube import Kube, TransientError
from connector_operator.leader import LeaderElector

log = logging.getLogger(__name__)


def register(
    registry: kopf.OperatorRegistry,
    kube: Kube,
    elector: LeaderElector | None,
    cfg: OperatorConfig,
    stop: asyncio.Event,
) -> None:
    tasks: list[asyncio.Task[None]] = []
    leading: list[Controller] = []  # the controller, once this replica leads

    async def lead() -> None:
        if elector is not None:
            await elector.acquire()
            kube.fence = elector.leading
            tasks.append(asyncio.create_task(elector.hold(stop), name="lease"))
        # Only the leader writes, the hash key's Secret included (made on the first start).
        hash_key = await _hash_key(kube, cfg)
        profile, folders = await profile_of(kube, cfg, hash_key)
        controller = Controller(kube, cfg, profile, folders, random.Random())  # noqa: S311
        leading.append(controller)
        metrics.LEADER.set(1)
        await controller.start()

    def on_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the controller could not start: %s", task.exception())
            stop.set()  # exit; the kubelet (or the user) restarts a fresh process

    handed: list[str | None] = []  # the token Kopf was last given

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        # Kopf's own client (its discovery at start) uses the operator's credentials, from its
        # kubeconfig or ServiceAccount. (Kopf has no tls-server-name: a kubeconfig that needs
        # one works for the operator's requests, not for Kopf's discovery.) Kopf asks again
        # only once the API server refused what it was given, and never takes the same again:
        # a token file or plugin is then asked for a new one.
        if handed:
            kube.refused(handed[-1])
        e = kube.endpoint
        token = await kube.bearer_token()
        handed[:] = [token]
        return kopf.ConnectionInfo(
            server=e.server, ca_path=e.ca_file, ca_data=e.ca_data, insecure=e.insecure,
            certificate_path=e.cert_file, certificate_data=e.cert_data,
            private_key_path=e.key_file, private_key_data=e.key_data, proxy_url=e.proxy_url,
            username=e.username, password=e.password, token=token,
        )  # fmt: skip

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False  # framework logs are not the user's events
        settings.scanning.disabled = True  # no CRD/namespace watching: fewer RBAC rights
        settings.networking.request_timeout = 30
        # A standby answers its liveness probe at once: it waits for the Lease in the background.
        task = asyncio.create_task(lead(), name="lead")
        task.add_done_callback(on_done)
        tasks.append(task)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        metrics.LEADER.set(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for controller in leading:
            if controller.running:
                await controller.stop()

    # One attempt: a failed check must answer the kubelet (HTTP 500) now, not retry for a minute.
    @kopf.on.probe(id="watch", retries=1, backoff=0, registry=registry)
    async def watch_is_fresh(**_: Any) -> dict[str, int]:
        if not leading or not leading[0].running:
            return {"leading": 0}  # a healthy standby, or a leader still priming its cache
        return {"leading": 1, **await leading[0].check(cfg.watch_grace_seconds)}


async def _hash_key(kube: Kube, cfg: OperatorConfig) -> bytes:
    """The installation's key; an API server that cannot answer yet is waited for."""
    while True:
        try:
            return await ensure_hash_key(kube, cfg.lease_namespace, cfg.hash_key_secret)
        except TransientError as error:
            log.warning("reading the hash key: %s; retrying", error)
            await asyncio.sleep(cfg.retry_period_seconds)
