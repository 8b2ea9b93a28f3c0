"""A real Keycloak as the OIDC issuer of end-to-end tests, run as a local Java process over
https with a test CA; standard library and the openssl CLI only.

The distribution comes from tests/oidc/build.sh, which fetches it from Maven Central into a
cache outside the repository and runs its Quarkus build there once. Each instance gets a home
of its own under `workdir` (its own data/ directory and realm import; the shared jars linked),
so that parallel test workers never share state:

    with keycloak.running(workdir, audience="connector-gateway") as kc:
        kc.issuer        # https://127.0.0.1:<port>/realms/connector
        kc.ca_pem        # the test CA that signed Keycloak's serving certificate
        kc.token("alice", "alice-password")  # an access token: aud, preferred_username, groups
        authentication_config(kc.issuer, kc.ca_pem, "connector-gateway")  # for kube-apiserver

A Keycloak that does not come up raises KeycloakError with its log tail: tests fail, never skip.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT / "tests" / "cluster") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "cluster"))

import controlplane  # noqa: E402 -- lives beside the go.mod files, not in a package
from tests import peer  # noqa: E402 -- after the path above

DEFAULT_REALM = "connector"
DEFAULT_CLIENT_ID = "connector-test"
# Linked from the shared distribution into each instance's home; bin/ is copied instead, since
# kc.sh takes the home to be the parent of its own resolved path.
SHARED_DIRS = ("lib", "conf", "providers", "themes")
# Appended to kc.sh's own (G1, a 512 MB heap). On Java 24 and later JBoss threads need
# java.lang opened, or its worker threads die of IllegalAccessError. (Neither the C1 compiler
# only nor a class data archive made Keycloak start faster: ~16 s on two cores either way.)
DEFAULT_JVM_OPTIONS = ("--add-opens=java.base/java.lang=ALL-UNNAMED",)
PORT_TAKEN = "Address already in use"
Json = dict[str, Any]


class KeycloakError(RuntimeError):
    """Keycloak failed to build, start, answer or grant a token; the message says why, with
    the log tail when the process is to blame."""


@dataclass(frozen=True)
class User:
    """A user of the test realm; `groups` become the token's `groups` claim."""

    username: str
    password: str
    email: str
    groups: tuple[str, ...] = ()


DEFAULT_USERS = (
    User("alice", "alice-password", "alice@example.com", ("team-b",)),
    User("bob", "bob-password", "bob@example.com", ("team-a",)),
)


# -- distribution ------------------------------------------------------------------------------
def distribution() -> tuple[Path, Path]:
    """The shared Keycloak home, fetched and built first when missing, and the JAVA_HOME to run
    it on (Keycloak 26 needs Java 21 or newer, which need not be the machine's default)."""
    script = HERE / "build.sh"
    # The build's progress goes to stderr so that a user sees it; the last stdout line is the path.
    out = subprocess.run([str(script)], check=False, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise KeycloakError(f"fetching or building Keycloak failed ({script})")
    home = Path(out.stdout.strip().splitlines()[-1])
    java = subprocess.run([str(script), "--java"], check=False, capture_output=True, text=True)
    if java.returncode != 0:
        raise KeycloakError(f"no Java for Keycloak: {java.stderr.strip()}")
    return home, Path(java.stdout.strip())


def jvm_options() -> list[str]:
    """The JVM's options: CONNECTOR_KEYCLOAK_JVM_OPTIONS when set, else DEFAULT_JVM_OPTIONS."""
    configured = os.environ.get("CONNECTOR_KEYCLOAK_JVM_OPTIONS")
    return configured.split() if configured is not None else list(DEFAULT_JVM_OPTIONS)


# -- files of one instance ---------------------------------------------------------------------
def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise KeycloakError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def make_tls(tls: Path) -> None:
    """A test CA (ca.crt) and Keycloak's serving certificate (server.crt, server.key) for
    127.0.0.1 and localhost, with the extensions that strict verifiers (Go, Python 3.13) want."""
    tls.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "3650", "-subj", "/CN=connector-operator-test-oidc-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=tls,
    )  # fmt: skip
    (tls / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=keycloak", cwd=tls,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "365", "-out", "server.crt", "-extfile", "server.ext",
        cwd=tls,
    )  # fmt: skip


def realm_representation(realm: str, client_id: str, audience: str, users: Sequence[User]) -> Json:
    """The realm imported at startup: one public client with direct access grants (the
    password grant), whose access tokens carry `aud` = `audience` and a flat `groups` claim.

    The client's default scopes are only profile, email and basic, so that an access token
    holds no roles and no `account` audience: `aud` is exactly `audience`."""
    mappers = [
        {
            "name": "audience",
            "protocol": "openid-connect",
            "protocolMapper": "oidc-audience-mapper",
            "config": {
                "included.custom.audience": audience,
                "access.token.claim": "true",
                "id.token.claim": "false",
                "introspection.token.claim": "true",
            },
        },
        {
            "name": "groups",
            "protocol": "openid-connect",
            "protocolMapper": "oidc-group-membership-mapper",
            "config": {
                "claim.name": "groups",
                "full.path": "false",
                "access.token.claim": "true",
                "id.token.claim": "true",
                "userinfo.token.claim": "true",
                "introspection.token.claim": "true",
            },
        },
    ]
    client = {
        "clientId": client_id,
        "enabled": True,
        "publicClient": True,
        "directAccessGrantsEnabled": True,
        "standardFlowEnabled": False,
        "defaultClientScopes": ["profile", "email", "basic"],
        "optionalClientScopes": [],
        "protocolMappers": mappers,
    }
    groups = sorted({group for user in users for group in user.groups})
    return {
        "realm": realm,
        "enabled": True,
        "accessTokenLifespan": 900,  # long enough for a slow test, short enough to be real
        "groups": [{"name": group} for group in groups],
        "clients": [client],
        "users": [_user_representation(user) for user in users],
    }


def _user_representation(user: User) -> Json:
    # First and last name too: Keycloak's user profile requires them, and a user without
    # them is "not fully set up", which refuses the password grant.
    return {
        "username": user.username,
        "email": user.email,
        "emailVerified": True,
        "firstName": user.username.capitalize(),
        "lastName": "Test",
        "enabled": True,
        "credentials": [{"type": "password", "value": user.password, "temporary": False}],
        "groups": list(user.groups),
    }


def prepare_home(shared: Path, home: Path, realm: Json) -> None:
    """An instance's own Keycloak home: bin/kc.sh copied, the built jars and the rest linked,
    and data/import/ holding the realm. Keycloak writes only under data/ (temporary files,
    transaction logs), which is therefore never shared between instances."""
    (home / "bin").mkdir(parents=True)
    shutil.copy2(shared / "bin" / "kc.sh", home / "bin" / "kc.sh")
    for name in SHARED_DIRS:
        (home / name).symlink_to(shared / name, target_is_directory=True)
    imports = home / "data" / "import"
    imports.mkdir(parents=True)
    (imports / f"{realm['realm']}-realm.json").write_text(json.dumps(realm, indent=2))


def write_java_wrapper(path: Path, java_home: Path) -> None:
    """A `java` for kc.sh's $JAVA that dies with kc.sh: kc.sh runs Java as its child rather
    than exec'ing it, and a parent-death signal is not inherited, so each link asks for its own
    (kc.sh dies with us, Java with kc.sh) and a SIGKILLed pytest leaves no JVM behind."""
    tied = " ".join(peer.with_parent("Java", [f'"{java_home}/bin/java"', '"$@"']))
    path.write_text(f"#!/bin/sh\nexec {tied}\n")
    path.chmod(0o755)


# -- the running server ------------------------------------------------------------------------
@dataclass
class Keycloak:
    """One Keycloak process serving one realm over https on 127.0.0.1:`port`."""

    workdir: Path
    port: int
    realm: str
    client_id: str
    audience: str
    users: tuple[User, ...]
    admin_username: str = "admin"
    admin_password: str = "admin-password"  # noqa: S105 -- a throwaway test server's admin
    process: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0  # seconds from launch to the realm answering
    _launched: float = field(default=0.0, repr=False)
    _context: ssl.SSLContext | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{self.realm}"

    @property
    def ca_path(self) -> Path:
        return self.workdir / "tls" / "ca.crt"

    @property
    def ca_pem(self) -> str:
        return self.ca_path.read_text()

    @property
    def log_path(self) -> Path:
        return self.workdir / "keycloak.log"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the test CA only."""
        if self._context is None:
            self._context = ssl.create_default_context(cafile=str(self.ca_path))
        return self._context

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, java_home: Path) -> None:
        """Launches kc.sh from the home that prepare_home made; returns at once (see
        wait_ready)."""
        home = self.workdir / "home"
        java = self.workdir / "java"
        write_java_wrapper(java, java_home)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "JAVA_HOME": str(java_home),
            "JAVA": str(java),
            "JAVA_OPTS_APPEND": " ".join(jvm_options()),
            "KC_BOOTSTRAP_ADMIN_USERNAME": self.admin_username,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": self.admin_password,
        }
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                peer.with_parent("Keycloak", [str(home / "bin" / "kc.sh"), *self._options()]),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.workdir,
            )  # fmt: skip
        self._launched = time.monotonic()

    def _options(self) -> list[str]:
        tls = self.workdir / "tls"
        return [
            "start", "--optimized", "--import-realm",
            f"--hostname={self.base_url}", "--hostname-strict=true",
            "--http-enabled=false", "--http-host=127.0.0.1", "--https-port", str(self.port),
            f"--https-certificate-file={tls / 'server.crt'}",
            f"--https-certificate-key-file={tls / 'server.key'}",
            # Clustering off: parallel instances must not find each other or fight over 7800.
            "--cache=local",
            "--log-console-color=false",
        ]  # fmt: skip

    def wait_ready(self, timeout: float) -> None:
        """Returns once the realm's discovery document names the expected issuer; raises
        KeycloakError with the log tail if Keycloak exits or does not answer in time."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise KeycloakError(self._failure("exited"))
            discovered = self._discovered_issuer()
            if discovered is not None:
                if discovered != self.issuer:
                    raise KeycloakError(
                        f"Keycloak names its issuer {discovered}, expected {self.issuer}"
                    )
                self.started_in = time.monotonic() - self._launched
                return
            if time.monotonic() > deadline:
                raise KeycloakError(self._failure(f"did not become ready in {timeout:.0f}s"))
            time.sleep(0.5)

    def _discovered_issuer(self) -> str | None:
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            with urllib.request.urlopen(  # noqa: S310 -- https to our own Keycloak
                url, context=self.ssl_context(), timeout=5
            ) as response:
                document = json.loads(response.read())
        except (OSError, urllib.error.URLError, ValueError):
            return None
        return str(document.get("issuer"))

    def alive(self) -> bool:
        return peer.alive(self.process)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to kc.sh, which forwards it to Java for a clean shutdown; SIGKILL after
        `timeout` (Java then dies of its parent-death signal)."""
        peer.stop(self.process, timeout)
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        return peer.log_tail(self.log_path, lines)

    def _failure(self, what: str) -> str:
        return peer.failure("Keycloak", self.process, self.log_path, what)

    # -- tokens --------------------------------------------------------------------------------
    def token(self, username: str, password: str) -> str:
        """An access token (a JWT) for the user, by the password grant of the test client."""
        return str(self.token_response(username, password)["access_token"])

    def token_response(self, username: str, password: str) -> Json:
        """The whole token endpoint answer (access_token, id_token, expires_in, ...)."""
        form = {
            "grant_type": "password",
            "client_id": self.client_id,
            "username": username,
            "password": password,
            "scope": "openid",
        }
        request = urllib.request.Request(  # noqa: S310 -- https to our own Keycloak
            f"{self.issuer}/protocol/openid-connect/token",
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
        )
        try:
            with urllib.request.urlopen(  # noqa: S310 -- https to our own Keycloak
                request, context=self.ssl_context(), timeout=30
            ) as response:
                answer: Json = json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = error.read().decode(errors="replace")
            raise KeycloakError(f"no token for {username}: {error.code} {body}") from error
        return answer


def start(
    workdir: Path,
    audience: str,
    *,
    realm: str = DEFAULT_REALM,
    client_id: str = DEFAULT_CLIENT_ID,
    users: Sequence[User] = DEFAULT_USERS,
    timeout: float = 300.0,
    attempts: int = 3,
) -> Keycloak:
    """A started Keycloak under `workdir` (created; must not hold a previous instance). A port
    taken between its pick and Keycloak's bind is retried on a new port; any other failure
    raises KeycloakError at once."""
    shared_home, java_home = distribution()
    make_tls(workdir / "tls")
    representation = realm_representation(realm, client_id, audience, users)
    prepare_home(shared_home, workdir / "home", representation)
    for attempt in range(1, attempts + 1):
        port = controlplane.free_port()
        keycloak = Keycloak(workdir, port, realm, client_id, audience, tuple(users))
        try:
            keycloak.start(java_home)
            keycloak.wait_ready(timeout)
        except KeycloakError as error:
            keycloak.stop()
            if PORT_TAKEN not in str(error) or attempt == attempts:
                raise
            continue
        except BaseException:
            keycloak.stop()
            raise
        return keycloak
    raise AssertionError("unreachable: the last attempt returns or raises")


@contextlib.contextmanager
def running(
    workdir: Path,
    audience: str,
    *,
    realm: str = DEFAULT_REALM,
    client_id: str = DEFAULT_CLIENT_ID,
    users: Sequence[User] = DEFAULT_USERS,
    timeout: float = 300.0,
) -> Iterator[Keycloak]:
    """A started Keycloak (see `start`), stopped on exit whatever happens. `workdir` is left
    in place, its log for a failed test to show."""
    keycloak = start(
        workdir, audience, realm=realm, client_id=client_id, users=users, timeout=timeout
    )
    try:
        yield keycloak
    finally:
        keycloak.stop()


def jwt_claims(token: str) -> Json:
    """The claims of a JWT, unverified: for a test to show or check what a token says."""
    payload = token.split(".")[1]
    claims: Json = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


# -- kube-apiserver ----------------------------------------------------------------------------
def authentication_config(issuer: str, ca_pem: str, audience: str) -> str:
    """A kube-apiserver AuthenticationConfiguration (--authentication-config; v1, GA since
    Kubernetes 1.34) that trusts tokens of `issuer` for `audience`. The user is the token's
    preferred_username and the groups its `groups`, both prefixed "oidc:" so that no token can
    name a built-in user or group (system:masters)."""
    ca = textwrap.indent(ca_pem.strip() + "\n", " " * 8)
    return (
        "apiVersion: apiserver.config.k8s.io/v1\n"
        "kind: AuthenticationConfiguration\n"
        "jwt:\n"
        "  - issuer:\n"
        f"      url: {json.dumps(issuer)}\n"
        f"      audiences: [{json.dumps(audience)}]\n"
        "      certificateAuthority: |\n"
        f"{ca}"
        "    claimMappings:\n"
        "      username:\n"
        "        claim: preferred_username\n"
        '        prefix: "oidc:"\n'
        "      groups:\n"
        "        claim: groups\n"
        '        prefix: "oidc:"\n'
    )
