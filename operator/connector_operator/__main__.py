"""The operator's entry point: configuration, logging, metrics, then Kopf (I/O at the edge)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys

import kopf
import prometheus_client
import uvloop

from connector_operator import handlers
from connector_operator.config import ConfigError, OperatorConfig, from_env
from connector_operator.kube import Kube
from connector_operator.kubeconfig import KubeconfigError, load
from connector_operator.leader import LeaderElector


async def run(cfg: OperatorConfig) -> None:
    identity = f"{socket.gethostname()}-{os.getpid()}"
    try:
        kube = Kube(load(), identity)
    except (KubeconfigError, OSError) as error:  # OSError: a certificate that cannot be read
        print(f"connector-operator: {error}", file=sys.stderr)
        sys.exit(2)
    elector = None
    if cfg.leader_election:
        elector = LeaderElector(
            kube,
            cfg.lease_name,
            cfg.lease_namespace,
            identity,
            duration=cfg.lease_duration_seconds,
            renew_deadline=cfg.renew_deadline_seconds,
            retry_period=cfg.retry_period_seconds,
        )
    stop = asyncio.Event()
    registry = kopf.OperatorRegistry()
    handlers.register(registry, kube, elector, cfg, stop)
    try:
        await kopf.operator(
            registry=registry,
            standalone=True,  # Kopf's own peering is replaced by the Lease
            clusterwide=not cfg.namespaces,
            namespaces=list(cfg.namespaces),
            liveness_endpoint=(
                f"http://0.0.0.0:{cfg.health_port}/healthz" if cfg.health_port else None
            ),
            stop_flag=stop,
        )
    finally:
        await kube.close()
    if stop.is_set():
        # The lead was lost (another replica may lead now) or the controller failed: exit, and
        # let the Deployment restart this one as a candidate.
        sys.exit(1)


def main() -> None:
    if sys.argv[1:2] == ["gateway"]:
        from connector_operator.gateway.main import main as gateway  # noqa: PLC0415 -- its own deps

        gateway()
        return
    try:
        cfg = from_env(os.environ)
    except ConfigError as error:
        print(f"connector-operator: {error}", file=sys.stderr)
        sys.exit(2)
    kopf.configure(
        debug=cfg.log_level == "DEBUG",
        verbose=cfg.log_level == "DEBUG",
        quiet=cfg.log_level in ("WARNING", "ERROR"),
        log_format=kopf.LogFormat.JSON if cfg.log_format == "json" else kopf.LogFormat.PLAIN,
        log_refkey="connector",
    )
    logging.getLogger().setLevel(cfg.log_level)
    # The storage clients log signed requests (the access key id, the string signed) at DEBUG
    # and request headers at INFO: the storage checks' only words are the condition's.
    for storage_client in ("botocore", "aiobotocore", "azure"):
        logging.getLogger(storage_client).setLevel(logging.WARNING)
    if cfg.log_level != "DEBUG":
        # Kopf reports every watch event it hands to a handler; at INFO that is noise.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if cfg.metrics_port:
        prometheus_client.start_http_server(cfg.metrics_port)
    uvloop.run(run(cfg))


if __name__ == "__main__":
    main()
