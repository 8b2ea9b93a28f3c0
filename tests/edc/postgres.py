"""A throwaway PostgreSQL server for tests: initdb into a directory, start, use, stop.

It runs the Debian (or any local) PostgreSQL binaries; nothing is downloaded. As root, the server
runs as the `postgres` OS user (PostgreSQL refuses to run as root); otherwise as the current user.
The server listens on 127.0.0.1 only, on a free port, with its unix socket inside the data
directory; TCP logins need a password (scram-sha-256) unless `auth="trust"` is asked for.

    pg = Postgres()
    pg.start(tmp_path / "pg")
    try:
        url = pg.create_database("connector_a", owner="connector_a", password="secret")
        ...  # EDC_DATASOURCE_DEFAULT_URL=url, _USER=connector_a, _PASSWORD=secret
    finally:
        pg.stop()
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

# A unix socket path may be at most 107 bytes; the file in the socket directory is
# ".s.PGSQL.<port>" (at most 15 bytes) and a slash.
_MAX_SOCKET_DIR = 107 - 16
_PORT_TRIES = 3
# Settings that make a test server fast and small; durability does not matter for a throwaway.
_TEST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "100",
    "log_min_messages": "warning",
}


class PostgresError(RuntimeError):
    """A PostgreSQL tool failed, or the server could not be started."""


class PostgresNotFoundError(PostgresError):
    """The PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) are not installed."""


def find_bindir() -> Path:
    """Returns the directory holding initdb, pg_ctl and psql.

    Looked for in order: $POSTGRES_BINDIR, `pg_config --bindir`, the newest
    /usr/lib/postgresql/*/bin (Debian's layout; pg_config there may belong to libpq-dev only).
    """
    candidates: list[Path] = []
    if env := os.environ.get("POSTGRES_BINDIR"):
        candidates.append(Path(env))
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            candidates.append(Path(out))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return bindir
    looked = ", ".join(str(c) for c in candidates) or "nowhere"
    raise PostgresNotFoundError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) not found; looked in "
        f"{looked}. Install them (Debian: apt-get install postgresql-15) or set POSTGRES_BINDIR."
    )


def free_port() -> int:
    """Returns a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _conf_value(value: str) -> str:
    """Quotes a value for postgresql.conf."""
    return "'" + value.replace("'", "''") + "'"


class Postgres:
    """One throwaway PostgreSQL server, its cluster initialised in the directory given to start().

    Attributes set by start(): `port`, `data_dir`, and the timings `initdb_seconds` and
    `start_seconds` (pg_ctl start until it accepts connections). `superuser` and `password`
    are the cluster's superuser login.
    """

    def __init__(
        self,
        *,
        bindir: Path | None = None,
        superuser: str = "postgres",
        password: str = "postgres",  # noqa: S107 - a throwaway server on the loopback only
        auth: str = "scram-sha-256",
        os_user: str = "postgres",
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """Finds the binaries (raising PostgresNotFoundError when absent); starts nothing.

        `auth` is the method for TCP logins: "scram-sha-256" (password) or "trust".
        `os_user` is who runs the server when this process is root. `settings` are added to
        postgresql.conf after the fast test defaults.
        """
        self.bindir = bindir if bindir is not None else find_bindir()
        for tool in ("initdb", "pg_ctl", "postgres", "psql"):
            if not (self.bindir / tool).is_file():
                raise PostgresNotFoundError(
                    f"PostgreSQL binaries not found: {self.bindir / tool} does not exist. Install "
                    "them (Debian: apt-get install postgresql-15) or pass another bindir."
                )
        self.superuser = superuser
        self.password = password
        self.auth = auth
        self.os_user = os_user
        self.settings: dict[str, str] = {**_TEST_SETTINGS, **(settings or {})}
        self.port = 0
        self.data_dir: Path | None = None
        self.initdb_seconds = 0.0
        self.start_seconds = 0.0
        self._running = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, data_dir: Path | str) -> None:
        """Initialises a cluster in `data_dir` (which must be absent or empty) and starts it.

        Returns once the server accepts connections. As root, `data_dir` is chowned to the
        server's OS user, and any ancestor directory that user cannot enter gets search
        permission for others (o+x: enter, not list), e.g. pytest's 0700 /tmp/pytest-of-root.
        """
        if self._running:
            raise PostgresError(f"already running on port {self.port}")
        data = Path(data_dir).absolute()
        data.mkdir(parents=True, exist_ok=True)
        if any(data.iterdir()):
            raise PostgresError(f"{data} is not empty; initdb needs an empty directory")
        if self._as_other_user():
            self._grant_access(data)

        pwfile = data.parent / f".{data.name}.pwfile"
        pwfile.write_text(self.password + "\n")
        try:
            if self._as_other_user():
                entry = pwd.getpwnam(self.os_user)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            pwfile.chmod(0o600)
            began = time.monotonic()
            self._run(
                [
                    str(self.bindir / "initdb"),
                    "--pgdata",
                    str(data),
                    "--username",
                    self.superuser,
                    "--pwfile",
                    str(pwfile),
                    "--auth-local",
                    "trust",
                    "--auth-host",
                    self.auth,
                    "--encoding",
                    "UTF8",
                    "--locale",
                    "C",
                    "--no-sync",
                    "--no-instructions",
                ],
                cwd=data,
                timeout=120,
            )
            self.initdb_seconds = time.monotonic() - began
        finally:
            pwfile.unlink(missing_ok=True)
        self.data_dir = data

        socket_dir = str(data) if len(str(data).encode()) <= _MAX_SOCKET_DIR else ""
        last_error: PostgresError | None = None
        for _ in range(_PORT_TRIES):
            port = free_port()
            self._write_conf(data, port, socket_dir)
            began = time.monotonic()
            try:
                self._pg_ctl("start", "--wait", "--timeout", "60", "--log", str(self._log))
            except PostgresError as error:  # most likely the port was taken meanwhile: retry
                last_error = error
                continue
            self.start_seconds = time.monotonic() - began
            self.port = port
            self._running = True
            return
        raise PostgresError(f"could not start PostgreSQL in {data}: {last_error}")

    def stop(self) -> None:
        """Stops the server (fast shutdown: open sessions are rolled back). Idempotent."""
        if not self._running:
            return
        self._pg_ctl("stop", "--wait", "--timeout", "60", "--mode", "fast")
        self._running = False

    @property
    def running(self) -> bool:
        """Whether start() succeeded and stop() has not been called since."""
        return self._running

    def __enter__(self) -> Postgres:
        """Use as `with Postgres() as pg: pg.start(dir)`: the server is stopped on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stops the server."""
        self.stop()

    # -- SQL -------------------------------------------------------------------------------

    def psql(
        self,
        sql: str,
        db: str = "postgres",
        *,
        variables: Mapping[str, str] | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> str:
        """Runs SQL (one or more statements) through psql over TCP and returns its output.

        The output is unaligned and tuples-only: one row a line, columns separated by "|".
        It stops at the first error and raises PostgresError with psql's message.
        `variables` are psql variables: write :'name' for a quoted literal and :"name" for a
        quoted identifier, so that values need no quoting by hand.
        Logs in as the superuser unless `user` (and its `password`) are given.
        """
        self._require_running()
        env = {
            **os.environ,
            "PGPASSWORD": self.password if user is None else (password or ""),
            "PGCONNECT_TIMEOUT": "10",
        }
        argv = [
            str(self.bindir / "psql"),
            "--no-psqlrc",
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--set",
            "ON_ERROR_STOP=1",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--username",
            user or self.superuser,
            "--dbname",
            db,
        ]
        for name, value in (variables or {}).items():
            argv += ["--set", f"{name}={value}"]
        result = subprocess.run(
            argv, input=sql, capture_output=True, text=True, env=env, timeout=120, check=False
        )
        if result.returncode != 0:
            raise PostgresError(f"psql on {db!r} failed: {result.stderr.strip()}\nSQL: {sql}")
        return result.stdout

    def create_role(self, name: str, password: str, *, superuser: bool = False) -> None:
        """Creates a login role with a password, or resets the password of an existing one."""
        verb = "ALTER" if self.role_exists(name) else "CREATE"
        extra = " SUPERUSER" if superuser else ""
        self.psql(
            f"{verb} ROLE :\"role\" LOGIN{extra} PASSWORD :'password'",
            variables={"role": name, "password": password},
        )

    def role_exists(self, name: str) -> bool:
        """Whether a role of that name exists."""
        out = self.psql("SELECT 1 FROM pg_roles WHERE rolname = :'role'", variables={"role": name})
        return out.strip() == "1"

    def create_database(self, name: str, owner: str, password: str) -> str:
        """Creates the login role `owner` (if absent) and a database it owns; returns its JDBC URL.

        The owner may create tables in the database's public schema (PostgreSQL 15 grants that
        to the database owner only). Other roles may not even connect: CONNECT is revoked from
        PUBLIC, so that one Connector's role cannot reach another's database.
        """
        self.create_role(owner, password)
        self.psql(
            'CREATE DATABASE :"db" OWNER :"owner";\nREVOKE CONNECT ON DATABASE :"db" FROM PUBLIC;',
            variables={"db": name, "owner": owner},
        )
        return self.jdbc_url(name)

    def create_schema(self, db: str, schema: str, owner: str, password: str) -> str:
        """Creates the login role `owner` (if absent) and a schema it owns in `db`.

        Returns a JDBC URL whose connections use that schema first (`currentSchema`).
        """
        self.create_role(owner, password)
        self.psql(
            'CREATE SCHEMA :"schema" AUTHORIZATION :"owner";\n'
            'GRANT CONNECT ON DATABASE :"db" TO :"owner";',
            db,
            variables={"db": db, "schema": schema, "owner": owner},
        )
        return self.jdbc_url(db, schema=schema)

    def tables(self, db: str, schema: str = "public") -> list[str]:
        """Names of the tables in a schema of a database, sorted."""
        out = self.psql(
            "SELECT tablename FROM pg_tables WHERE schemaname = :'schema' ORDER BY tablename",
            db,
            variables={"schema": schema},
        )
        return [line for line in out.splitlines() if line]

    def jdbc_url(self, db: str, *, schema: str | None = None) -> str:
        """The JDBC URL of a database on this server, optionally with a current schema."""
        self._require_running()
        url = f"jdbc:postgresql://127.0.0.1:{self.port}/{db}"
        return f"{url}?currentSchema={schema}" if schema else url

    def log_tail(self, lines: int = 50) -> str:
        """The last lines of the server's log, for failure messages."""
        if self.data_dir is None or not self._log.exists():
            return ""
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    # -- internals -------------------------------------------------------------------------

    @property
    def _log(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "postgres.log"

    def _require_running(self) -> None:
        if not self._running:
            raise PostgresError("the PostgreSQL server is not running; call start() first")

    def _as_other_user(self) -> bool:
        return os.geteuid() == 0

    def _prefix(self) -> list[str]:
        """How to run a server tool: directly, or as the OS user when this process is root."""
        if not self._as_other_user():
            return []
        try:
            pwd.getpwnam(self.os_user)
        except KeyError:
            raise PostgresError(
                f"running as root, but the OS user {self.os_user!r} that should run PostgreSQL "
                "does not exist"
            ) from None
        if runuser := shutil.which("runuser"):
            return [runuser, "-u", self.os_user, "--"]
        if setpriv := shutil.which("setpriv"):
            return [setpriv, f"--reuid={self.os_user}", f"--regid={self.os_user}", "--init-groups"]
        raise PostgresError("running as root, but neither runuser nor setpriv is installed")

    def _grant_access(self, data: Path) -> None:
        """As root: gives the data directory to the OS user and lets it reach it."""
        entry = pwd.getpwnam(self.os_user)
        os.chown(data, entry.pw_uid, entry.pw_gid)
        data.chmod(0o700)
        for ancestor in data.parents:
            mode = ancestor.stat().st_mode
            if not mode & stat.S_IXOTH:
                ancestor.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)

    def _write_conf(self, data: Path, port: int, socket_dir: str) -> None:
        settings = {
            **self.settings,
            "port": str(port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": socket_dir,
        }
        lines = [f"{key} = {_conf_value(value)}" for key, value in settings.items()]
        # postgresql.auto.conf is read last and is rewritten on every try (the port changes).
        (data / "postgresql.auto.conf").write_text("\n".join(lines) + "\n")
        if self._as_other_user():
            entry = pwd.getpwnam(self.os_user)
            os.chown(data / "postgresql.auto.conf", entry.pw_uid, entry.pw_gid)

    def _pg_ctl(self, *args: str) -> None:
        assert self.data_dir is not None
        self._run(
            [str(self.bindir / "pg_ctl"), "--pgdata", str(self.data_dir), *args],
            cwd=self.data_dir,
            timeout=90,
        )

    def _run(self, argv: Sequence[str], *, cwd: Path, timeout: float) -> None:
        try:
            result = subprocess.run(
                [*self._prefix(), *argv],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise PostgresError(f"{argv[0]} timed out after {timeout}s") from error
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            log = self.log_tail() if self.data_dir is not None else ""
            raise PostgresError(
                f"{Path(argv[0]).name} {' '.join(argv[1:3])} failed ({result.returncode}): "
                f"{output}" + (f"\nserver log:\n{log}" if log else "")
            )
