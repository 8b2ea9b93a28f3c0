"""`connector-operator gateway`: settings, the API client, the watch cache, then the server."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import sys
from collections.abc import AsyncIterator

import uvloop
from aiohttp import web

from connector_operator.gateway.access import Access
from connector_operator.gateway.app import make_app
from connector_operator.gateway.routes import Routes
from connector_operator.gateway.settings import GatewaySettings, GatewaySettingsError, from_env
from connector_operator.gateway.watchcache import ConnectorView
from connector_operator.kube import Kube
from connector_operator.kubeconfig import KubeconfigError, load

log = logging.getLogger("connector_operator.gateway")


class WithoutRequestText(logging.Filter):
    """aiohttp's server logs a request it could not parse with the bytes it read, headers and
    so a bearer token included: the record keeps the fact and loses the text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = "aiohttp refused a request it could not parse (its text is not logged)"
        record.args, record.exc_info, record.exc_text, record.stack_info = (), None, None, None
        return True


def build(settings: GatewaySettings) -> web.Application:
    kube = Kube(load(), f"gateway-{socket.gethostname()}-{os.getpid()}")
    view = ConnectorView(kube, settings.namespaces, with_bpn=settings.edc_profile)
    access = Access(kube, settings.tenancy, settings.audiences)
    app = make_app(Routes(settings, access, view, kube))

    async def watching(_: web.Application) -> AsyncIterator[None]:
        view.start()
        yield
        await view.stop()
        await kube.close()

    app.cleanup_ctx.append(watching)
    return app


def main() -> None:
    try:
        settings = from_env(os.environ)
    except GatewaySettingsError as error:
        print(f"connector-operator gateway: {error}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp.server").addFilter(WithoutRequestText())
    try:
        app = build(settings)
    except (KubeconfigError, OSError) as error:  # OSError: a certificate that cannot be read
        print(f"connector-operator gateway: {error}", file=sys.stderr)
        sys.exit(2)
    context = None
    if settings.tls_cert_file and settings.tls_key_file:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    web.run_app(
        app,
        loop=uvloop.new_event_loop(),
        host=settings.host,
        port=settings.port,
        ssl_context=context,
        # Live-update streams never finish by themselves: on SIGTERM they get a few seconds,
        # then end (their clients reconnect to another replica).
        shutdown_timeout=5,
        print=lambda text: log.info("%s", text.strip()),
    )
