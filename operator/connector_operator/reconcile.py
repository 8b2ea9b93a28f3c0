"""The reconcile path of one Connector: observe (from the cache) -> decide (pure) -> the status
and its events -> converge the children (`children`); the status after the children when it
acknowledges nothing new. It reads the cache and writes through `kube`; it holds no watch."""

from __future__ import annotations

import base64
import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from pydantic import ValidationError

from connector_operator import failpoints, metrics, resources, states
from connector_operator.cache import Cache
from connector_operator.children import ChildConflictError, Children
from connector_operator.conditions import READY, STALLED, STORAGE_REACHABLE, Wanted, merge
from connector_operator.informer import Key, resource_version
from connector_operator.kube import ApiError, ConflictError, Kube, NotFoundError, TransientError
from connector_operator.models import (
    ACTION_ANNOTATION,
    CREDENTIAL_FIELDS,
    Connector,
    ConnectorStatus,
)
from connector_operator.profiles import Inputs, Profile
from connector_operator.storage.checks import StorageChecks
from connector_operator.storage.condition import StorageObservation
from connector_operator.storage.target import target_of
from connector_operator.vault import Folders, VaultError
from connector_operator.workqueue import Retry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SecretInfo:
    """What the operator keeps of a referenced Secret: its version, a digest and the values
    (held in memory for the vault, never written anywhere but there)."""

    version: int | None
    digest: str
    values: Mapping[str, str]


@dataclass
class Progress:
    """The Connector as the pass has left it so far (its own status write included)."""

    body: Mapping[str, Any]


@dataclass(frozen=True)
class Credentials:
    problem: tuple[str, str] | None  # why the credentials cannot be resolved, or None
    values: Mapping[str, str]
    digest: str


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        cache: Cache,
        profile: Profile,
        *,
        folders: Folders | None = None,
        storage: StorageChecks | None = None,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        self.kube = kube
        self.cache = cache
        self.profile = profile
        self.folders = folders
        self.storage = storage
        self.clock = clock
        self._referenced: dict[Key, SecretInfo] = {}
        self.children = Children(kube, cache)

    def forget(self, key: Key) -> None:
        self.children.forget(key)
        self._end_storage_checks(key)

    async def reconcile(self, key: Key) -> None:
        body = self.cache.connectors.get(key)
        if body is None:
            await self._gone(key)
            return
        if body["metadata"].get("deletionTimestamp"):
            return
        try:
            connector = Connector.model_validate(body)
        except ValidationError as error:
            self._end_storage_checks(key)  # nothing to check until the spec is valid
            await self._refuse_spec(body, error)
            return
        progress = Progress(body)
        try:
            await self._converge(key, progress, connector)
        except ConflictError as error:
            raise Retry(f"conflict: {error}", delay=0.2) from None
        except (TransientError, NotFoundError) as error:
            raise Retry(str(error)) from None
        except ChildConflictError as error:
            await self._blocked(progress.body, "NameTaken", str(error))
        except VaultError as error:
            message = f"The vault refused or did not answer: {error}."
            await self._blocked(progress.body, "VaultUnavailable", message)
        except ApiError as error:
            # Refused for a reason that waiting alone may not fix (admission policy, quota):
            # the user sees it in status and events; the queue retries with backoff.
            message = f"The API server refused a write: {error}."
            await self._blocked(progress.body, "ApplyFailed", message)

    async def _blocked(self, body: Mapping[str, Any], reason: str, message: str) -> NoReturn:
        """Reports the Connector blocked (`body` as this pass left it: its own status write
        included), then retries with backoff. A report that races a change of the Connector
        is left to the pass that change causes."""
        try:
            await self._report_blocked(body, reason, message)
        except ConflictError:
            raise Retry(f"{reason}: {message}", delay=0.2) from None
        except (TransientError, ApiError) as failure:
            raise Retry(f"{reason}: {message} Reporting it: {failure}") from None
        raise Retry(f"{reason}: {message}")

    async def _gone(self, key: Key) -> None:
        """A deleted Connector: the garbage collector removes its children; its storage
        checks and its vault folder are the operator's to end."""
        self.forget(key)
        if self.folders is None:
            return
        try:
            await self.folders.remove(key)
        except VaultError as error:
            raise Retry(f"emptying the vault folder of {key[0]}/{key[1]}: {error}") from None

    async def _inputs(
        self, body: Mapping[str, Any], connector: Connector
    ) -> tuple[Inputs, Credentials]:
        credentials = await self._credentials(connector)
        keys: dict[str, str] = {}
        if (name := self.profile.keys_secret_name(connector.metadata.name)) is not None:
            held = await self.children.held(body, "Secret", "v1", name)
            keys = self.profile.keys(_decoded((held or {}).get("data") or {}))
        inputs = Inputs(connector, credentials.values, credentials.digest, keys)
        return inputs, credentials

    def _observe(
        self,
        body: Mapping[str, Any],
        problem: tuple[str, str] | None,
        storage: StorageObservation | None,
    ) -> states.Observed:
        name = body["metadata"]["name"]
        deployments = {
            plane: self.cache.child(
                self.cache.deployments, body, self.profile.deployment_name(name, plane)
            )
            for plane in self.profile.planes
        }
        summaries = {p: states.summarize_deployment(d) for p, d in deployments.items()}
        counts = [self._pods(d, summaries[p]) for p, d in deployments.items()]
        return states.Observed(
            deployments=summaries,
            pods=None if None in counts else sum(c for c in counts if c is not None),
            config_problem=problem,
            storage=storage,
        )

    def _pods(
        self, deployment: Mapping[str, Any] | None, summary: states.DeploymentState | None
    ) -> int | None:
        """The Deployment's pods that have not ended: as its status counts them, else (a
        cluster whose Deployments do not count terminating pods) from the pods themselves."""
        reported = states.reported_pods(summary)
        return self.cache.live_pods(deployment) if reported is None else reported

    def _end_storage_checks(self, key: Key) -> None:
        if self.storage is not None:
            self.storage.forget(key)

    def _storage(
        self, key: Key, connector: Connector, credentials: Credentials
    ) -> StorageObservation | None:
        """The storage check's verdict on the current target, never waited for. Without a
        target (HttpData; credentials that cannot be resolved) the checks of the Connector
        end; unresolved credentials leave the last verdict standing."""
        if self.storage is None:
            return None
        target = target_of(connector.spec, credentials.values)
        if credentials.problem is not None or target is None:
            self._end_storage_checks(key)
            if not CREDENTIAL_FIELDS[connector.spec.storage_type]:
                return None
            return StorageObservation(self.storage.mode, None)
        return StorageObservation(self.storage.mode, self.storage.observe(key, target))

    async def _converge(self, key: Key, progress: Progress, connector: Connector) -> None:
        body = progress.body
        if self.profile.unique_names:
            taken = name_taken(body, self.cache.same_name_elsewhere(body))
            if taken is not None:  # nothing is made for it, not even stopped, nor checked
                self._end_storage_checks(key)
                await self._report_blocked(body, *taken, checked=False)
                return
        inputs, credentials = await self._inputs(body, connector)
        hashes = self.profile.hashes(inputs)
        observed = self._observe(
            body, credentials.problem, self._storage(key, connector, credentials)
        )
        requested = connector.metadata.annotations.get(ACTION_ANNOTATION)
        plan = states.decide(connector.status, requested, hashes, observed)
        now = self.clock()
        status = states.next_status(
            connector.status, plan, connector.metadata.generation, _rfc3339(now)
        )
        # A new phase or action is written first: it acknowledges what the pass is about to do
        # (a user's stop is answered by one write, not after the Deployment's), and the plan
        # never depends on what the children's writes return. A crash after it leaves the
        # phase saying where the Connector is going, which the next pass continues from. Any
        # other status waits for the children, so that a blocked report (Stalled) stands
        # until they are written.
        acknowledges = _acknowledges(body.get("status") or {}, status)
        if acknowledges:
            await self._record(progress, status, plan, now)
        if plan.intent is not states.Intent.LEAVE:
            replicas = states.replicas(
                plan.intent, self.profile.planes, self.profile.gates, observed, hashes
            )
            repairs = await self._drive(
                key,
                body=body,
                connector=connector,
                wanted=self.profile.children(inputs, hashes, replicas),
                credentials=credentials,
                inputs=inputs,
            )
            for kind, message in repairs:
                metrics.DRIFT_REPAIRS.labels(kind=kind).inc()
                await self.kube.post_event(body, "Warning", "DriftRepaired", message, now)
        if not acknowledges:
            await self._record(progress, status, plan, now)
        if plan.phase is not None:
            log.debug("reconciled %s/%s: %s", key[0], key[1], plan.phase.value)

    async def _record(
        self, progress: Progress, status: dict[str, Any], plan: states.Plan, now: datetime.datetime
    ) -> None:
        """The status, then the events of the transition it records."""
        failpoints.reach(f"before-status:{plan.intent.value}")
        progress.body = await self._write_status(progress.body, status)
        failpoints.reach(f"after-status:{plan.intent.value}")
        for event in plan.events:
            await self.kube.post_event(progress.body, event.type, event.reason, event.message, now)

    async def _drive(
        self,
        key: Key,
        *,
        body: Mapping[str, Any],
        connector: Connector,
        wanted: list[dict[str, Any]],
        credentials: Credentials,
        inputs: Inputs,
    ) -> list[tuple[str, str]]:
        """The Secrets first (the keys the vault entries are made of are saved before they
        are used), then the vault folder, then what runs and reads them."""
        secrets = [c for c in wanted if c["kind"] == "Secret"]
        rest = [c for c in wanted if c["kind"] != "Secret"]
        repairs = await self.children.converge(key, body, connector, secrets)
        if self.folders is not None and credentials.problem is None:
            entries = self.profile.vault_entries(inputs)
            if entries is not None:
                await self.folders.converge(key, entries)
        return repairs + await self.children.converge(key, body, connector, rest)

    async def _credentials(self, connector: Connector) -> Credentials:
        spec = connector.spec
        secret_name = spec.credentials_secret_name()
        if secret_name is None:
            values = spec.inline_credentials()
            return Credentials(None, values, resources.credentials_digest(values))
        info = await self._referenced_secret((connector.metadata.namespace, secret_name))
        if info is None:
            return Credentials(
                (
                    "SecretNotFound",
                    f"Secret {secret_name!r} named by storage_config.credentials_secret_ref "
                    f"does not exist in namespace {connector.metadata.namespace!r}; the "
                    "Connector proceeds once it does.",
                ),
                {},
                "",
            )
        missing = [k for k in CREDENTIAL_FIELDS[spec.storage_type] if k not in info.values]
        if missing:
            return Credentials(
                (
                    "SecretIncomplete",
                    f"Secret {secret_name!r} lacks the keys {', '.join(missing)}; the "
                    "Connector proceeds once it has them.",
                ),
                {},
                "",
            )
        return Credentials(None, info.values, info.digest)

    async def _referenced_secret(self, key: Key) -> SecretInfo | None:
        """The referenced Secret, read (GET) only when the metadata watch shows a version
        newer than the one read last: the cache holds no Secret data of users."""
        listed = self.cache.secret_versions.get(key)
        if listed is None:
            self._referenced.pop(key, None)
            return None
        held = self._referenced.get(key)
        version = resource_version(listed)
        if held is not None and (version is None or (held.version or 0) >= version):
            return held
        body = await self.kube.get(f"/api/v1/namespaces/{key[0]}/secrets/{key[1]}")
        if body is None:
            return None
        data = body.get("data") or {}
        info = SecretInfo(
            resource_version(body), resources.credentials_digest(data), _decoded(data)
        )
        self._referenced[key] = info
        return info

    async def _write_status(
        self, body: Mapping[str, Any], status: dict[str, Any]
    ) -> Mapping[str, Any]:
        """Stores `status` (nothing when it is already stored); the Connector as it now is."""
        current = body.get("status") or {}
        if current == status:
            return body
        patch: dict[str, Any] = {k: None for k in current if k not in status}
        patch.update(status)
        meta = body["metadata"]
        updated = await self.kube.patch_connector_status(
            meta["namespace"], meta["name"], patch, meta.get("resourceVersion")
        )
        self.cache.remember(self.cache.connectors, updated)
        if (phase := status.get("phase")) is not None and phase != current.get("phase"):
            metrics.PHASE_TRANSITIONS.labels(phase=phase).inc()
        return updated

    async def _refuse_spec(self, body: Mapping[str, Any], error: ValidationError) -> None:
        """A spec the CRD should have refused (an older CRD, a bypassed admission)."""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False)
        )
        try:
            await self._report_blocked(
                body, "InvalidSpec", f"The Connector's spec is invalid: {problems}.", checked=False
            )
        except (ConflictError, TransientError, ApiError) as failure:
            raise Retry(str(failure)) from None

    async def _report_blocked(
        self, body: Mapping[str, Any], reason: str, message: str, *, checked: bool = True
    ) -> None:
        """Stalled with `reason` at this generation, the rest of the status kept (the storage
        verdict only while the Connector's storage is `checked`); a Warning event once."""
        previous = ConnectorStatus.model_validate(body.get("status") or {})
        generation = int(body["metadata"].get("generation", 0))
        now = self.clock()
        conditions = merge(
            previous.conditions,
            {READY: Wanted(False, reason, message), STALLED: Wanted(True, reason, message)},
            _rfc3339(now),
            generation,
            keep=(STORAGE_REACHABLE,) if checked and self.storage is not None else (),
        )
        # The verdict is about this generation: observedGeneration says so, or kstatus and
        # Argo CD would read a blocked edit as still in progress.
        status = previous.model_copy(
            update={"conditions": conditions, "message": message, "observed_generation": generation}
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
        await self._write_status(body, status)
        if previous.message != message:
            await self.kube.post_event(body, "Warning", reason, message, now)


def _acknowledges(current: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether `status` records a new phase or a new action."""
    return any(current.get(field) != status.get(field) for field in ("phase", "action"))


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decoded(data: Mapping[str, str]) -> dict[str, str]:
    """A Secret's data as text. A value that is not UTF-8 text is kept in its base64 form:
    every value the operator hands on (environment, vault) must be text."""
    decoded = {}
    for k, v in data.items():
        try:
            decoded[k] = base64.b64decode(v).decode()
        except (ValueError, UnicodeDecodeError):
            decoded[k] = v
    return decoded


def name_taken(
    body: Mapping[str, Any], others: Sequence[Mapping[str, Any]]
) -> tuple[str, str] | None:
    """A Connector's public name (its DID, its routes) is installation-wide: the oldest of a
    name keeps it, the others wait."""
    meta = body["metadata"]

    def age(obj: Mapping[str, Any]) -> tuple[str, str]:
        return (str(obj["metadata"].get("creationTimestamp", "")), str(obj["metadata"].get("uid")))

    older = sorted((o for o in others if age(o) < age(body)), key=age)
    if not older:
        return None
    return (
        "NameTaken",
        f"A Connector named {meta['name']!r} already exists in another namespace; a "
        "Connector's name is its public identity (its DID and routes) across the installation, "
        "so this one waits until that one is deleted.",
    )
