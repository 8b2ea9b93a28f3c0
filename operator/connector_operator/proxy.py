"""Which proxy, if any, carries the requests to the API server (pure, stdlib only).

A kubeconfig's `proxy-url` wins. Without one, the environment decides as Go's
`http.ProxyFromEnvironment` (which kubectl, client-go and controller-runtime use) decides:
HTTPS_PROXY for an https server (HTTP_PROXY for http), the upper-case name first; never for
`localhost` or a loopback address; not for a host that NO_PROXY names, as a domain (with its
subdomains; a leading dot or `*.`: the subdomains only), an IP address, a CIDR range or `*`,
each with an optional port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

SCHEMES = ("http", "https")  # aiohttp speaks to no other proxy (not SOCKS)


class ProxyError(ValueError):
    """A proxy the operator cannot use; the message names where it was set."""


def checked(url: str, where: str) -> str:
    """`url` when it is a proxy the operator can use."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        parts.port  # noqa: B018 -- read to be checked: a port that is no number raises
    except ValueError:
        parts = None
    if parts is None or not parts.hostname:
        raise ProxyError(f"{where} is not a proxy URL")  # not shown: it may hold a password
    if parts.scheme not in SCHEMES:
        raise ProxyError(
            f"{where}: {parts.scheme}:// proxies are not supported, only http:// and https://"
        )
    return parts.geturl()


def from_environment(environ: Mapping[str, str], server: str) -> str | None:
    """The proxy the environment names for `server`, or None."""
    target = urlsplit(server)
    names = (
        ("HTTPS_PROXY", "https_proxy") if target.scheme == "https" else ("HTTP_PROXY", "http_proxy")
    )
    name = next((n for n in names if environ.get(n)), None)
    host = target.hostname or ""
    if name is None or _loopback(host):
        return None
    port = target.port or (443 if target.scheme == "https" else 80)
    no_proxy = environ.get("NO_PROXY") or environ.get("no_proxy") or ""
    if any(_matches(entry.strip().lower(), host.lower(), port) for entry in no_proxy.split(",")):
        return None
    return checked(environ[name], name)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _matches(entry: str, host: str, port: int) -> bool:
    """Whether one NO_PROXY entry names `host`:`port`."""
    if not entry:
        return False
    if entry == "*":
        return True
    try:  # an address or a range, without a port
        return _in_range(host, ipaddress.ip_network(entry, strict=False))
    except ValueError:
        pass
    name, _, entry_port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
    if entry_port and entry_port != str(port):
        return False
    name = name.strip("[]").removeprefix("*")  # "*.example.com" is ".example.com"
    if name.startswith("."):
        return host.endswith(name)
    return host == name or host.endswith(f".{name}")


def _has_port(entry: str) -> bool:
    """Whether the entry ends in :port (an IPv6 address has colons of its own)."""
    head, sep, tail = entry.rpartition(":")
    return bool(sep) and tail.isdigit() and (not head.count(":") or head.endswith("]"))


def _in_range(host: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(host) in network
    except ValueError:
        return False  # a name: only a name entry matches it
