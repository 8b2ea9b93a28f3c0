"""Which proxy carries the requests to the API server: the kubeconfig's proxy-url, else the
environment's, decided as Go's http.ProxyFromEnvironment decides."""

from __future__ import annotations

import pytest

from connector_operator.proxy import ProxyError, checked, from_environment

SERVER = "https://api.example.com:6443"
PROXY = {"HTTPS_PROXY": "http://proxy.corp:3128"}


def test_https_proxy_carries_an_https_server() -> None:
    assert from_environment(PROXY, SERVER) == "http://proxy.corp:3128"
    assert from_environment({"https_proxy": "http://low:1"}, SERVER) == "http://low:1"
    assert from_environment({"HTTP_PROXY": "http://p:1"}, SERVER) is None  # for http only
    assert from_environment({"HTTP_PROXY": "http://p:1"}, "http://api:8080") == "http://p:1"
    assert from_environment({}, SERVER) is None


@pytest.mark.parametrize(
    "server", ["https://localhost:6443", "https://127.0.0.1:6443", "https://[::1]:6443"]
)
def test_a_loopback_server_is_never_proxied(server: str) -> None:
    assert from_environment(PROXY, server) is None


@pytest.mark.parametrize(
    ("no_proxy", "server", "proxied"),
    [
        ("example.com", SERVER, False),  # a domain and its subdomains
        ("api.example.com", SERVER, False),
        (".example.com", SERVER, False),  # the subdomains only
        (".example.com", "https://example.com", True),
        ("*.example.com", SERVER, False),  # as Go reads it: ".example.com"
        ("*.example.com", "https://example.com", True),
        ("ample.com", SERVER, True),  # not a suffix of a label
        ("api.example.com:6443", SERVER, False),  # with its port
        ("api.example.com:443", SERVER, True),  # another port
        ("10.0.0.0/8", "https://10.96.0.1:443", False),  # a CIDR range
        ("10.0.0.0/8", "https://192.168.1.1:443", True),
        ("10.96.0.1", "https://10.96.0.1:443", False),  # an address
        ("fd00::/8", "https://[fd00::1]:443", False),
        ("*", SERVER, False),
        ("other.org, example.com", SERVER, False),  # a list, with spaces
        ("", SERVER, True),
    ],
)
def test_no_proxy(no_proxy: str, server: str, proxied: bool) -> None:
    found = from_environment({**PROXY, "NO_PROXY": no_proxy}, server)
    assert (found is not None) == proxied


def test_only_http_proxies_are_taken() -> None:
    assert checked("proxy:3128", "x") == "http://proxy:3128"  # as Go reads a bare host
    with pytest.raises(ProxyError, match="HTTPS_PROXY: socks5:// proxies are not supported"):
        from_environment({"HTTPS_PROXY": "socks5://user:secret@p:1080"}, SERVER)
    for malformed in ("http://user:secret@", "http://user:secret@proxy:port", "http://[bad"):
        with pytest.raises(ProxyError, match=r"^proxy-url is not a proxy URL$"):
            checked(malformed, "proxy-url")
