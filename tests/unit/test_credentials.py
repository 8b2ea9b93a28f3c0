"""What the operator presents to the API server: tokens read again as they rotate, an exec
plugin run as kubectl runs it, TLS settings from an endpoint."""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from connector_operator.credentials import Authorizer, tls_context
from connector_operator.kube import Lines
from connector_operator.kubeconfig import Endpoint, ExecPlugin, KubeconfigError

UTC = datetime.UTC


class Clock:
    def __init__(self) -> None:
        self.seconds = 0.0
        self.utc = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def __call__(self) -> float:
        return self.seconds


def header(auth: Authorizer) -> dict[str, str]:
    return asyncio.run(auth.header())


def test_a_token_file_is_read_again_after_a_minute(tmp_path: Path) -> None:
    token, clock = tmp_path / "token", Clock()
    token.write_text("first\n")
    auth = Authorizer(Endpoint("https://x", token_file=str(token)), clock=clock)
    assert header(auth) == {"Authorization": "Bearer first"}
    token.write_text("second")  # the kubelet rotated it
    clock.seconds = 59
    assert header(auth) == {"Authorization": "Bearer first"}
    clock.seconds = 61
    assert header(auth) == {"Authorization": "Bearer second"}


def read_once(tmp_path: Path, first: str) -> tuple[Path, Authorizer]:
    """A token file holding `first`, read once by a fresh Authorizer."""
    token = tmp_path / "token"
    token.write_text(first)
    auth = Authorizer(Endpoint("https://x", token_file=str(token)), clock=Clock())
    header(auth)
    return token, auth


def test_a_401_makes_the_token_file_be_read_at_once(tmp_path: Path) -> None:
    token, auth = read_once(tmp_path, "old")
    token.write_text("new")
    assert auth.renewable
    auth.invalidate()
    assert header(auth) == {"Authorization": "Bearer new"}


def test_a_token_file_gone_mid_rotation_keeps_the_last_one(tmp_path: Path) -> None:
    token, clock = tmp_path / "token", Clock()
    token.write_text("kept")
    auth = Authorizer(Endpoint("https://x", token_file=str(token)), clock=clock)
    header(auth)
    token.unlink()
    clock.seconds = 120
    assert header(auth) == {"Authorization": "Bearer kept"}
    with pytest.raises(KubeconfigError, match=r"token file .*absent"):
        header(Authorizer(Endpoint("https://x", token_file=str(tmp_path / "absent"))))


def test_static_credentials() -> None:
    token = Endpoint("https://x", token="t")  # noqa: S106 -- a test value
    assert header(Authorizer(token)) == {"Authorization": "Bearer t"}
    basic = Endpoint("https://x", username="me", password="pw")  # noqa: S106 -- a test value
    assert header(Authorizer(basic)) == {"Authorization": "Basic bWU6cHc="}
    assert header(Authorizer(Endpoint("https://x"))) == {}  # a client certificate, or nothing
    assert not Authorizer(token).renewable


def plugin(tmp_path: Path, answer: dict[str, object] | str, exit_code: int = 0) -> ExecPlugin:
    """A real credential plugin: a script that logs each run and prints `answer`."""
    script = tmp_path / "get-token"
    text = answer if isinstance(answer, str) else json.dumps(answer)
    script.write_text(
        f"#!{sys.executable}\nimport os, sys\n"
        f"open({str(tmp_path / 'runs')!r}, 'a').write(os.environ['REGION'] + ' ' + "
        "os.environ['KUBERNETES_EXEC_INFO'] + '\\n')\n"
        f"print({text!r}); sys.exit({exit_code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return ExecPlugin(command="./get-token", env=(("REGION", "eu"),), workdir=str(tmp_path))


def runs(tmp_path: Path) -> list[str]:
    path = tmp_path / "runs"
    return path.read_text().splitlines() if path.exists() else []


def credential(token: str, expires: str | None = None) -> dict[str, object]:
    status: dict[str, object] = {"token": token}
    if expires:
        status["expirationTimestamp"] = expires
    return {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
            "status": status}  # fmt: skip


def test_an_exec_plugins_token_is_kept_until_it_expires(tmp_path: Path) -> None:
    clock = Clock()
    exec_plugin = plugin(tmp_path, credential("p1", "2026-12-04T12:05:00Z"))
    auth = Authorizer(Endpoint("https://x", exec_plugin=exec_plugin), clock=clock,
                      now=lambda: clock.utc)  # fmt: skip
    assert header(auth) == {"Authorization": "Bearer p1"}
    assert header(auth) == {"Authorization": "Bearer p1"}
    assert len(runs(tmp_path)) == 1  # asked once
    region, info = runs(tmp_path)[0].split(" ", 1)
    assert region == "eu"  # the plugin's env
    assert json.loads(info)["kind"] == "ExecCredential"
    clock.utc += datetime.timedelta(minutes=4, seconds=51)  # within the renewal margin
    header(auth)
    assert len(runs(tmp_path)) == 2


def test_an_exec_token_without_expiry_is_asked_again_after_a_401(tmp_path: Path) -> None:
    auth = Authorizer(Endpoint("https://x", exec_plugin=plugin(tmp_path, credential("p"))))
    header(auth)
    header(auth)
    assert len(runs(tmp_path)) == 1
    assert auth.renewable
    auth.invalidate()
    header(auth)
    assert len(runs(tmp_path)) == 2


def test_many_refusals_of_one_token_renew_it_once(tmp_path: Path) -> None:
    token, auth = read_once(tmp_path, "old")
    token.write_text("new")
    auth.invalidate("old")  # the first request refused
    assert header(auth) == {"Authorization": "Bearer new"}
    token.write_text("newer")
    auth.invalidate("old")  # another request that was sent with the old one
    assert header(auth) == {"Authorization": "Bearer new"}, "the renewed token is kept"


def test_concurrent_requests_run_the_plugin_once(tmp_path: Path) -> None:
    auth = Authorizer(Endpoint("https://x", exec_plugin=plugin(tmp_path, credential("p"))))

    async def many() -> list[dict[str, str]]:
        return await asyncio.gather(*(auth.header() for _ in range(5)))

    assert asyncio.run(many()) == [{"Authorization": "Bearer p"}] * 5
    assert len(runs(tmp_path)) == 1


@pytest.mark.parametrize(
    ("answer", "exit_code", "message"),
    [
        (credential("p"), 3, "exited with 3"),
        ("not json", 0, "printed no ExecCredential"),
        ({"status": {"clientCertificateData": "x"}}, 0, "printed no ExecCredential"),
        (credential("p", "yesterday"), 0, "status.expirationTimestamp 'yesterday' is no time"),
    ],
)
def test_a_plugin_that_fails_is_named(
    tmp_path: Path, answer: dict[str, object] | str, exit_code: int, message: str
) -> None:
    auth = Authorizer(Endpoint("https://x", exec_plugin=plugin(tmp_path, answer, exit_code)))
    with pytest.raises(KubeconfigError, match=f"exec plugin './get-token': {message}"):
        header(auth)


def test_a_failing_plugin_is_not_run_again_for_every_request(tmp_path: Path) -> None:
    clock = Clock()
    exec_plugin = plugin(tmp_path, credential("p"), exit_code=3)
    auth = Authorizer(Endpoint("https://x", exec_plugin=exec_plugin), clock=clock)

    def fails() -> None:
        with pytest.raises(KubeconfigError, match="exited with 3"):
            header(auth)

    fails()
    fails()  # the same error, the plugin not run
    assert len(runs(tmp_path)) == 1
    clock.seconds = 1.1  # the first pause (1 s) is over
    fails()
    assert len(runs(tmp_path)) == 2
    clock.seconds = 2.5  # within the second, twice as long
    fails()
    assert len(runs(tmp_path)) == 2
    plugin(tmp_path, credential("mended"))  # the plugin works again
    clock.seconds = 3.2
    assert header(auth) == {"Authorization": "Bearer mended"}
    assert len(runs(tmp_path)) == 3


def test_a_plugin_that_is_not_there_is_named(tmp_path: Path) -> None:
    missing = ExecPlugin(command="no-such-plugin-here")
    with pytest.raises(KubeconfigError, match="'no-such-plugin-here': cannot run"):
        header(Authorizer(Endpoint("https://x", exec_plugin=missing)))


def make_pair(tmp_path: Path) -> tuple[bytes, bytes]:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=me", "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return (tmp_path / "c.pem").read_bytes(), (tmp_path / "k.pem").read_bytes()


def test_tls_from_inline_pem_leaves_no_file_behind(tmp_path: Path) -> None:
    cert, key = make_pair(tmp_path)
    import tempfile  # noqa: PLC0415 -- where the private copies would be left

    before = set(Path(tempfile.gettempdir()).glob("connector-operator-tls-*"))
    context = tls_context(Endpoint("https://x", ca_data=cert, cert_data=cert, key_data=key))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert set(Path(tempfile.gettempdir()).glob("connector-operator-tls-*")) == before
    insecure = tls_context(Endpoint("https://x", insecure=True))
    assert insecure is not None and insecure.verify_mode == ssl.CERT_NONE
    assert tls_context(Endpoint("http://x")) is None


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    cert, _ = make_pair(tmp_path)
    with pytest.raises(KubeconfigError, match="needs both"):
        tls_context(Endpoint("https://x", cert_data=cert))


def test_watch_lines_cut_across_chunks_are_joined() -> None:
    lines = Lines()
    assert lines.feed(b'{"a":') == []
    assert lines.feed(b"1") == []
    assert lines.feed(b'}\n{"b":2}\n\n{"c"') == [b'{"a":1}', b'{"b":2}']
    assert lines.feed(b":3}\n") == [b'{"c":3}']
    assert lines.feed(b"") == []


def test_an_expiry_without_a_zone_is_utc(tmp_path: Path) -> None:
    clock = Clock()
    exec_plugin = plugin(tmp_path, credential("p", "2026-12-04T12:05:00"))
    auth = Authorizer(Endpoint("https://x", exec_plugin=exec_plugin), clock=clock,
                      now=lambda: clock.utc)  # fmt: skip
    header(auth)
    header(auth)
    assert len(runs(tmp_path)) == 1
