"""The reconcile service: caches fed by the watches, one idempotent reconcile path per
Connector (observe -> decide -> apply -> status). It does I/O only through `kube`."""

from __future__ import annotations

import datetime
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from connector_operator import failpoints, resources, states
from connector_operator.conditions import READY, STALLED, Wanted, merge
from connector_operator.config import OperatorConfig
from connector_operator.kube import ApiError, ConflictError, Kube, NotFoundError, TransientError
from connector_operator.models import (
    ACTION_ANNOTATION,
    CREDENTIAL_FIELDS,
    GROUP,
    PLURAL,
    VERSION,
    Connector,
    ConnectorStatus,
)
from connector_operator.workqueue import Retry, WorkQueue

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class SecretInfo:
    """What the operator keeps of a Secret: a digest and the key names, never the values."""

    digest: str
    keys: frozenset[str]
    stamp: str | None = None  # the operator's applied stamp, on its own Secrets


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key(body: Mapping[str, Any]) -> Key:
    meta = body["metadata"]
    return (meta["namespace"], meta["name"])


def _newer(candidate: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    """Whether `candidate` is not older than `current` (resourceVersions are etcd revisions
    in practice; anything else is taken as newer)."""
    if current is None:
        return True
    try:
        return int(candidate["metadata"]["resourceVersion"]) >= int(
            current["metadata"]["resourceVersion"]
        )
    except (KeyError, ValueError, TypeError):
        return True


class WatchStalledError(RuntimeError):
    """The watch stopped delivering changes that the API server has."""


_NEVER: dict[str, Any] = {"metadata": {"resourceVersion": "0"}}


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        operator: OperatorConfig,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        self.kube = kube
        self.operator = operator
        self.clock = clock
        self.connectors: dict[Key, dict[str, Any]] = {}
        self.deployments: dict[Key, dict[str, Any]] = {}
        self.pods: dict[Key, set[str]] = defaultdict(set)
        self.secrets: dict[Key, SecretInfo] = {}
        self.service_stamps: dict[Key, str | None] = {}  # the operator's Services
        self.referrers: dict[Key, set[Key]] = defaultdict(set)  # Secret -> Connectors
        self.references: dict[Key, Key] = {}  # Connector -> the Secret it references
        self.queue: WorkQueue[Key] = WorkQueue(self.reconcile, workers=operator.workers)
        self._behind: dict[Key, float] = {}  # Connectors the watch lags behind, since when

    # -- caches, fed by the watch events -------------------------------------------------------
    def on_connector(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = _key(body)
        if event_type != "DELETED" and not _newer(body, self.connectors.get(key)):
            return
        if (old := self.references.pop(key, None)) is not None:
            self.referrers[old].discard(key)
        if event_type == "DELETED":
            # Garbage collection removes the children through their ownerReferences.
            self.connectors.pop(key, None)
            self.queue.forget(key)
            return
        self.connectors[key] = dict(body)
        ref = (body.get("spec", {}).get("storage_config") or {}).get("credentials_secret_ref")
        if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
            self.references[key] = (key[0], ref["name"])
            self.referrers[(key[0], ref["name"])].add(key)
        self.queue.add(key)

    def on_deployment(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        owner = self._owner(body)
        if owner is None:
            return
        if event_type == "DELETED":
            self.deployments.pop(owner, None)
        elif _newer(body, self.deployments.get(owner)):
            self.deployments[owner] = dict(body)
        if owner in self.connectors:
            self.queue.add(owner)

    def on_service(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        owner = self._owner(body)
        if owner is None:
            return
        stamp = resources.stamp_of(body) if event_type != "DELETED" else None
        known = owner in self.service_stamps
        if event_type == "DELETED":
            self.service_stamps.pop(owner, None)
        else:
            self.service_stamps[owner] = stamp
        if (not known or event_type == "DELETED") and owner in self.connectors:
            self.queue.add(owner)

    def on_pod(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        owner = self._owner(body)
        if owner is None:
            return
        name = body["metadata"]["name"]
        before = len(self.pods[owner])
        if event_type == "DELETED":
            self.pods[owner].discard(name)
        else:
            self.pods[owner].add(name)
        if len(self.pods[owner]) != before and owner in self.connectors:
            self.queue.add(owner)

    def on_secret(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = _key(body)
        if event_type == "DELETED":
            changed = self.secrets.pop(key, None) is not None
        else:
            info = _secret_info(body)
            changed = self.secrets.get(key) != info
            self.secrets[key] = info
        if not changed:
            return
        for connector in self.referrers.get(key, ()):
            self.queue.add(connector)
        owner = self._owner(body)  # the operator's own Secret, edited or deleted by someone
        if owner is not None and owner in self.connectors:
            self.queue.add(owner)

    async def prime(self, namespaces: tuple[str, ...]) -> None:
        """Fills the caches of children and Secrets before the first Connector is reconciled,
        so that a restart neither rewrites converged objects nor reports a Secret as missing
        because its watch had not caught up yet."""
        managed = f"{resources.MANAGED_BY_LABEL}={resources.MANAGER}"
        feeds = (
            ("/api/v1", "secrets", None, self.on_secret),
            ("/api/v1", "services", managed, self.on_service),
            ("/api/v1", "pods", managed, self.on_pod),
            ("/apis/apps/v1", "deployments", managed, self.on_deployment),
        )
        for base, plural, selector, feed in feeds:
            paths = [f"{base}/namespaces/{ns}/{plural}" for ns in namespaces] or [
                f"{base}/{plural}"
            ]
            for path in paths:
                for item in await self.kube.list_items(path, selector):
                    feed(None, item)

    @staticmethod
    def _owner(body: Mapping[str, Any]) -> Key | None:
        meta = body.get("metadata", {})
        labels = meta.get("labels") or {}
        if labels.get(resources.MANAGED_BY_LABEL) != resources.MANAGER:
            return None
        instance = labels.get(resources.INSTANCE_LABEL)
        return (meta["namespace"], instance) if instance else None

    async def check_freshness(self, namespaces: tuple[str, ...], grace: float) -> dict[str, int]:
        """Raises WatchStalledError when the server holds a Connector change that the watch has
        not delivered for longer than `grace` seconds: a stalled watch, which only a restart
        mends. Called by the liveness probe (one metadata-only LIST per probe)."""
        self.queue.check_workers()
        base = f"/apis/{GROUP}/{VERSION}"
        paths = [f"{base}/namespaces/{ns}/{PLURAL}" for ns in namespaces] or [f"{base}/{PLURAL}"]
        now = time.monotonic()
        behind: set[Key] = set()
        for path in paths:
            for item in await self.kube.list_metadata(path):
                key = (item["metadata"]["namespace"], item["metadata"]["name"])
                if not _newer(self.connectors.get(key) or _NEVER, {"metadata": item["metadata"]}):
                    behind.add(key)
        self._behind = {k: self._behind.get(k, now) for k in behind}
        stalled = sorted(k for k, since in self._behind.items() if now - since > grace)
        if stalled:
            names = ", ".join(f"{ns}/{name}" for ns, name in stalled[:5])
            raise WatchStalledError(f"the watch has not delivered changes of {names}")
        return {"connectors": len(self.connectors), "behind": len(behind)}

    # -- the reconcile path ----------------------------------------------------------------------
    async def reconcile(self, key: Key) -> None:
        body = self.connectors.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        try:
            connector = Connector.model_validate(body)
        except ValidationError as error:
            await self._refuse_spec(body, error)
            return
        problem, digest = self._credentials(connector)
        desired_hash = resources.config_hash(connector, digest, self.operator)
        observed = states.Observed(
            deployment=states.summarize_deployment(self.deployments.get(key)),
            pods=len(self.pods.get(key, ())),
            config_problem=problem,
        )
        requested = connector.metadata.annotations.get(ACTION_ANNOTATION)
        plan = states.decide(connector.status, requested, desired_hash, observed)
        try:
            if plan.intent is not states.Intent.LEAVE:
                replicas = 1 if plan.intent is states.Intent.RUN else 0
                await self._apply_children(key, connector, desired_hash, replicas)
            failpoints.reach(f"before-status:{plan.intent.value}")
            now = self.clock()
            status = states.next_status(
                connector.status, plan, connector.metadata.generation, _rfc3339(now)
            )
            await self._write_status(key, body, status)
            for event in plan.events:
                await self.kube.post_event(body, event.type, event.reason, event.message, now)
        except ConflictError as error:
            raise Retry(f"conflict: {error}", delay=0.2) from None
        except (TransientError, NotFoundError) as error:
            raise Retry(str(error)) from None
        except ApiError as error:
            # Refused for a reason that waiting alone may not fix (admission policy, quota):
            # the user sees it in status and events; the queue retries with backoff.
            await self._report_blocked(
                body, "ApplyFailed", f"The API server refused a write: {error}."
            )
            raise Retry(str(error)) from None
        if plan.phase is not None:
            log.debug("reconciled %s/%s: %s", key[0], key[1], plan.phase.value)

    def _credentials(self, connector: Connector) -> tuple[tuple[str, str] | None, str]:
        """(a problem that blocks the start, a digest of the credential values)."""
        spec = connector.spec
        needed = CREDENTIAL_FIELDS[spec.storage_type]
        secret_name = spec.credentials_secret_name()
        if secret_name is None:
            return None, resources.credentials_digest(spec.inline_credentials())
        info = self.secrets.get((connector.metadata.namespace, secret_name))
        if info is None:
            return (
                "SecretNotFound",
                f"Secret {secret_name!r} named by storage_config.credentials_secret_ref does not "
                f"exist in namespace {connector.metadata.namespace!r}; the Connector proceeds "
                "once it does.",
            ), ""
        missing = [k for k in needed if k not in info.keys]
        if missing:
            return (
                "SecretIncomplete",
                f"Secret {secret_name!r} lacks the keys {', '.join(missing)}; the Connector "
                "proceeds once it has them.",
            ), ""
        return None, info.digest

    async def _apply_children(
        self, key: Key, connector: Connector, desired_hash: str, replicas: int
    ) -> None:
        """Writes only what differs from the server: a converged Connector costs no write."""
        secret = resources.secret(connector)
        if secret is not None:
            info = self.secrets.get((key[0], resources.child_name(key[1])))
            if info is None or info.stamp != resources.stamp_of(secret):
                applied = await self.kube.apply(secret)
                failpoints.reach("after-apply:Secret")
                # Cache what was written, without queueing this Connector for another pass.
                self.secrets[_key(applied)] = _secret_info(applied)
        service = resources.service(connector, self.operator)
        if service is not None and self.service_stamps.get(key) != resources.stamp_of(service):
            self.service_stamps[key] = resources.stamp_of(await self.kube.apply(service))
        deployment = resources.deployment(connector, self.operator, desired_hash, replicas)
        if resources.needs_apply(deployment, self.deployments.get(key)):
            applied = await self.kube.apply(deployment)
            failpoints.reach("after-apply:Deployment")
            if _newer(applied, self.deployments.get(key)):
                self.deployments[key] = applied

    async def _write_status(
        self, key: Key, body: Mapping[str, Any], status: dict[str, Any]
    ) -> None:
        current = body.get("status") or {}
        if current == status:
            return
        patch: dict[str, Any] = {k: None for k in current if k not in status}
        patch.update(status)
        meta = body["metadata"]
        updated = await self.kube.patch_connector_status(
            meta["namespace"], meta["name"], patch, meta.get("resourceVersion")
        )
        if _newer(updated, self.connectors.get(key)):
            self.connectors[key] = updated

    async def _refuse_spec(self, body: Mapping[str, Any], error: ValidationError) -> None:
        """A spec the CRD should have refused (an older CRD, a bypassed admission)."""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False)
        )
        try:
            await self._report_blocked(
                body, "InvalidSpec", f"The Connector's spec is invalid: {problems}."
            )
        except (ConflictError, TransientError, ApiError) as failure:
            raise Retry(str(failure)) from None

    async def _report_blocked(self, body: Mapping[str, Any], reason: str, message: str) -> None:
        """Stalled with `reason`, the rest of the status kept; a Warning event once."""
        previous = ConnectorStatus.model_validate(body.get("status") or {})
        generation = int(body["metadata"].get("generation", 0))
        now = self.clock()
        conditions = merge(
            previous.conditions,
            {READY: Wanted(False, reason, message), STALLED: Wanted(True, reason, message)},
            _rfc3339(now),
            generation,
        )
        status = previous.model_copy(
            update={"conditions": conditions, "message": message}
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
        await self._write_status(_key(body), body, status)
        if previous.message != message:
            await self.kube.post_event(body, "Warning", reason, message, now)


def _secret_info(body: Mapping[str, Any]) -> SecretInfo:
    data = body.get("data") or {}
    return SecretInfo(resources.credentials_digest(data), frozenset(data), resources.stamp_of(body))


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
