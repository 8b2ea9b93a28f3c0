"""Moto in server mode as a real S3 (with IAM) peer for tests: its own Python process on
127.0.0.1, started by this module, tied to its parent by a parent-death signal.

    with moto.running(workdir) as s3:
        s3.endpoint                                  # http://127.0.0.1:<port>
        s3.create_bucket("orders", "eu-central-1")
        key_id, secret = s3.create_user("reader", write=False)
        s3.enable_auth()     # from now on Moto checks SigV4 signatures and IAM policies per key
        s3.revoke(key_id)    # the key is deleted: InvalidAccessKeyId (403), as for a revoked key
        s3.restore(key_id)   # the same key id and secret work again
        s3.stop()            # the port refuses connections
        s3.start()           # the same port answers again, with the same buckets, users and keys

Moto keeps everything in memory, so `start` after `stop` gives a fresh Moto the state this
object made (buckets, users, policies, keys, revocations, auth), but not objects written since.
A key is made again with the same id and secret by seeding Moto's random generator (the
documented POST /moto-api/seed) before each CreateAccessKey. A request served in between (a
storage check of the operator) draws from that generator too: the key made is then deleted and
the seed sent again, up to REMAKE_ATTEMPTS times; then MotoError, rather than hand out a key
that does not work.

Moto ignores an access key's status: a key set Inactive by UpdateAccessKey still signs requests
that Moto accepts. Deleting the key is what Moto honours (as InvalidAccessKeyId), hence `revoke`.

A Moto that does not come up raises MotoError with its log tail: tests fail, never skip.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT / "tests" / "cluster") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "cluster"))

import controlplane  # noqa: E402 -- lives beside the go.mod files, not in a package
from tests import peer  # noqa: E402 -- after the path above

ADMIN = "moto-admin"
IAM_REGION = "us-east-1"
PORT_TAKEN = "Address already in use"
REMAKE_ATTEMPTS = 10  # a key made again after a restart, before giving up
# Moto checks HeadBucket against the non-AWS action s3:HeadBucket, not s3:ListBucket.
READ_ACTIONS = ("s3:ListBucket", "s3:GetObject", "s3:GetBucketLocation", "s3:HeadBucket")
WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject")
# Admin calls are the test's own set-up: they fail at once rather than retry.
ADMIN_CONFIG = Config(
    retries={"total_max_attempts": 1},
    connect_timeout=5,
    read_timeout=30,
    s3={"addressing_style": "path"},
)


class MotoError(RuntimeError):
    """Moto failed to start or answer, or made a key other than the one recorded; the message
    says why, with the log tail when the process is to blame. (An AWS call of the set-up that
    Moto refuses raises botocore's ClientError, which names the code.)"""


def policy_document(*, write: bool) -> str:
    """The inline IAM policy of a test user: read-only, or read and write, on every bucket."""
    actions = READ_ACTIONS + (WRITE_ACTIONS if write else ())
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": ["arn:aws:s3:::*"]}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


@dataclass
class User:
    """A user this object made: its access key, the seed that makes that key again, and its
    inline policy."""

    name: str
    seed: int
    policy: str
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    revoked: bool = False


@dataclass
class Moto:
    """One Moto server process on 127.0.0.1:`port`, its log in `workdir`."""

    workdir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0  # seconds from the last launch to Moto answering
    auth: bool = False
    buckets: dict[str, str] = field(default_factory=dict)  # name -> region
    users: dict[str, User] = field(default_factory=dict)  # by name; the admin first
    # One botocore session: it loads each service model once, so that a client costs ~5 ms.
    _session: Any = field(default_factory=botocore.session.get_session, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "moto.log"

    # -- lifecycle -----------------------------------------------------------------------------
    def launch(self, timeout: float = 60.0) -> None:
        """Starts the process and returns once Moto answers; no state is made (see `start`)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = peer.with_parent("Moto", [
            sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port),
        ])  # fmt: skip
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Not this directory: `-m moto.server` would find tests/storage/moto.py first.
                cwd=self.workdir,
            )
        launched = time.monotonic()
        deadline = launched + timeout
        while not self._answers():
            if not self.alive():
                raise MotoError(self._failure("exited"))
            if time.monotonic() > deadline:
                self.stop()
                raise MotoError(self._failure(f"did not answer in {timeout:.0f}s"))
            time.sleep(0.1)
        self.started_in = time.monotonic() - launched

    def start(self, timeout: float = 60.0) -> None:
        """After `stop`: Moto again on the same port, with the buckets, users, keys,
        revocations and auth setting that this object made (objects are gone)."""
        if self.alive():
            return
        self.launch(timeout)
        try:
            self._replay()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 15.0) -> None:
        """Stops Moto: the port refuses connections until `start`."""
        peer.stop(self.process, timeout)
        self.process = None

    def alive(self) -> bool:
        return peer.alive(self.process)

    def log_tail(self, lines: int = 40) -> str:
        return peer.log_tail(self.log_path, lines)

    def _failure(self, what: str) -> str:
        return peer.failure("Moto", self.process, self.log_path, what)

    def _answers(self) -> bool:
        try:
            self._moto_api("GET", "config", timeout=2)
        except (OSError, MotoError):
            return False
        return True

    def _replay(self) -> None:
        users = list(self.users.values())
        self.users.clear()
        for user in users:
            self._remake_user(user)
            if user.revoked:
                self.revoke(user.access_key_id)
        for name, region in list(self.buckets.items()):
            self.create_bucket(name, region)
        if self.auth:
            self.enable_auth()

    def _remake_user(self, user: User) -> None:
        """The user again, with the key it had."""
        made = self._make_user(user.name, user.policy, user.seed)
        self._make_recorded_key(self.client("iam"), made, user.access_key_id)

    def _make_recorded_key(self, iam: Any, user: User, recorded: str) -> None:
        """Gives `user` its key `recorded` again (the one its seed made). A request served
        between the seed and the key (a storage check of the operator, say) draws from Moto's
        random generator and makes another key: that key is deleted and the seed sent again."""
        for _ in range(REMAKE_ATTEMPTS):
            if user.access_key_id == recorded:
                return
            if user.access_key_id:
                iam.delete_access_key(UserName=user.name, AccessKeyId=user.access_key_id)
            self._make_key(iam, user)
        if user.access_key_id != recorded:
            raise MotoError(
                f"Moto made key {user.access_key_id} for {user.name}, not {recorded}: its "
                f"random generator was used between seed and key in {REMAKE_ATTEMPTS} attempts"
            )

    # -- Moto's own API and the AWS APIs -------------------------------------------------------
    def _moto_api(
        self, method: str, path: str, body: bytes | None = None, timeout: float = 10
    ) -> str:
        # Not urllib's default form type: Werkzeug would parse the body as a form and hand Moto
        # an empty request.data.
        request = urllib.request.Request(  # noqa: S310 -- http to our own Moto
            f"{self.endpoint}/moto-api/{path}",
            data=body,
            method=method,
            headers={"Content-Type": "text/plain"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return str(response.read().decode())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise MotoError(f"{method} /moto-api/{path}: {error.code} {detail}") from error

    def client(self, service: str, region: str = IAM_REGION) -> Any:
        """A botocore client of `service` acting as the admin, for a test's own set-up (put an
        object, change a policy); any key before the admin exists, as Moto checks nothing
        until `enable_auth`."""
        admin = self.users.get(ADMIN)
        key_id, secret = (
            (admin.access_key_id, admin.secret_access_key) if admin else ("admin", "admin")
        )
        return self._session.create_client(
            service,
            region_name=region,
            endpoint_url=self.endpoint,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=ADMIN_CONFIG,
        )

    def _make_user(self, name: str, policy: str, seed: int) -> User:
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="storage", PolicyDocument=policy)
        user = User(name, seed, policy)
        self._make_key(iam, user)
        self.users[name] = user
        return user

    def _make_key(self, iam: Any, user: User) -> None:
        # The seed makes the key's id and secret a function of the seed alone.
        self._moto_api("POST", f"seed?a={user.seed}")
        key = iam.create_access_key(UserName=user.name)["AccessKey"]
        user.access_key_id = key["AccessKeyId"]
        user.secret_access_key = key["SecretAccessKey"]

    # -- what tests call -----------------------------------------------------------------------
    def create_bucket(self, name: str, region: str) -> None:
        """A bucket in `region` (its LocationConstraint; none for us-east-1)."""
        s3 = self.client("s3", region)
        if region == IAM_REGION:
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
        self.buckets[name] = region

    def create_user(self, name: str, *, write: bool) -> tuple[str, str]:
        """An IAM user with one access key, allowed to read (ListBucket, GetObject,
        GetBucketLocation, HeadBucket) every bucket and, when `write`, to put and delete
        objects. Returns (access key id, secret access key). Before `enable_auth`."""
        if ADMIN not in self.users:
            self._make_user(ADMIN, ADMIN_POLICY, seed=1)
        user = self._make_user(name, policy_document(write=write), seed=len(self.users) + 1)
        return user.access_key_id, user.secret_access_key

    def enable_auth(self) -> None:
        """From now on Moto checks every request's SigV4 signature against the key's secret and
        its action against the user's policies. Call it after making the users."""
        if ADMIN not in self.users:
            self._make_user(ADMIN, ADMIN_POLICY, seed=1)
        self._moto_api("POST", "reset-auth", b"0")
        self.auth = True

    def _user_of(self, access_key_id: str) -> User:
        for user in self.users.values():
            if user.access_key_id == access_key_id:
                return user
        raise MotoError(f"no user of this Moto has the access key {access_key_id}")

    def revoke(self, access_key_id: str) -> None:
        """Deletes the key: requests signed with it get 403 InvalidAccessKeyId."""
        user = self._user_of(access_key_id)
        self.client("iam").delete_access_key(UserName=user.name, AccessKeyId=access_key_id)
        user.revoked = True

    def restore(self, access_key_id: str) -> None:
        """Makes a revoked key again, with the same id and secret."""
        user = self._user_of(access_key_id)
        if not user.revoked:
            return
        user.access_key_id = ""  # deleted: nothing of it to delete again
        self._make_recorded_key(self.client("iam"), user, access_key_id)
        user.revoked = False


def start(workdir: Path, *, timeout: float = 60.0, attempts: int = 3) -> Moto:
    """A started Moto logging to `workdir`/moto.log. A port taken between its pick and Moto's
    bind is retried on a new port; any other failure raises MotoError at once."""
    for attempt in range(1, attempts + 1):
        moto = Moto(workdir, controlplane.free_port())
        try:
            moto.launch(timeout)
        except MotoError as error:
            moto.stop()
            if PORT_TAKEN not in str(error) or attempt == attempts:
                raise
            continue
        except BaseException:
            moto.stop()
            raise
        return moto
    raise AssertionError("unreachable: the last attempt returns or raises")


@contextlib.contextmanager
def running(workdir: Path, *, timeout: float = 60.0) -> Iterator[Moto]:
    """A started Moto (see `start`), stopped on exit whatever happens. `workdir` is left in
    place, its log for a failed test to show."""
    moto = start(workdir, timeout=timeout)
    try:
        yield moto
    finally:
        moto.stop()
