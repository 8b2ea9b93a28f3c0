"""The reconcile path of one Connector: observe (from the cache) -> decide (pure) -> converge
the children (`children`) -> status -> events. It reads the cache and writes through `kube`;
it holds no watch."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from connector_operator import failpoints, metrics, resources, states
from connector_operator.cache import Cache
from connector_operator.children import ChildConflictError, Children
from connector_operator.conditions import READY, STALLED, Wanted, merge
from connector_operator.config import OperatorConfig
from connector_operator.informer import Key, resource_version
from connector_operator.kube import ApiError, ConflictError, Kube, NotFoundError, TransientError
from connector_operator.models import (
    ACTION_ANNOTATION,
    CREDENTIAL_FIELDS,
    Connector,
    ConnectorStatus,
)
from connector_operator.workqueue import Retry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SecretInfo:
    """What the operator keeps of a referenced Secret: a digest and the key names, never the
    values."""

    version: int | None
    digest: str
    keys: frozenset[str]


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        cache: Cache,
        operator: OperatorConfig,
        hash_key: bytes,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        self.kube = kube
        self.cache = cache
        self.operator = operator
        self.hash_key = hash_key
        self.clock = clock
        self._referenced: dict[Key, SecretInfo] = {}
        self.children = Children(kube, cache, operator, hash_key)

    def forget(self, key: Key) -> None:
        self.children.forget(key)

    async def reconcile(self, key: Key) -> None:
        body = self.cache.connectors.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        try:
            connector = Connector.model_validate(body)
        except ValidationError as error:
            await self._refuse_spec(body, error)
            return
        try:
            await self._converge(key, body, connector)
        except ConflictError as error:
            raise Retry(f"conflict: {error}", delay=0.2) from None
        except (TransientError, NotFoundError) as error:
            raise Retry(str(error)) from None
        except ChildConflictError as error:
            await self._report_blocked(body, "NameTaken", str(error))
            raise Retry(str(error)) from None
        except ApiError as error:
            # Refused for a reason that waiting alone may not fix (admission policy, quota):
            # the user sees it in status and events; the queue retries with backoff.
            await self._report_blocked(
                body, "ApplyFailed", f"The API server refused a write: {error}."
            )
            raise Retry(str(error)) from None

    async def _converge(self, key: Key, body: Mapping[str, Any], connector: Connector) -> None:
        problem, digest = await self._credentials(connector)
        desired_hash = resources.config_hash(connector, digest, self.operator, self.hash_key)
        deployment = self.cache.child(self.cache.deployments, body)
        observed = states.Observed(
            deployment=states.summarize_deployment(deployment),
            pods=self.cache.live_pods(deployment),
            config_problem=problem,
        )
        requested = connector.metadata.annotations.get(ACTION_ANNOTATION)
        plan = states.decide(connector.status, requested, desired_hash, observed)
        repairs: list[tuple[str, str]] = []
        if plan.intent is not states.Intent.LEAVE:
            replicas = 1 if plan.intent is states.Intent.RUN else 0
            repairs = await self.children.converge(key, body, connector, desired_hash, replicas)
        failpoints.reach(f"before-status:{plan.intent.value}")
        now = self.clock()
        status = states.next_status(
            connector.status, plan, connector.metadata.generation, _rfc3339(now)
        )
        await self._write_status(body, status)
        for event in plan.events:
            await self.kube.post_event(body, event.type, event.reason, event.message, now)
        for kind, message in repairs:
            metrics.DRIFT_REPAIRS.labels(kind=kind).inc()
            await self.kube.post_event(body, "Warning", "DriftRepaired", message, now)
        if plan.phase is not None:
            log.debug("reconciled %s/%s: %s", key[0], key[1], plan.phase.value)

    async def _credentials(self, connector: Connector) -> tuple[tuple[str, str] | None, str]:
        """(a problem that blocks the start, a digest of the credential values)."""
        spec = connector.spec
        secret_name = spec.credentials_secret_name()
        if secret_name is None:
            return None, resources.credentials_digest(spec.inline_credentials())
        info = await self._referenced_secret((connector.metadata.namespace, secret_name))
        if info is None:
            return (
                "SecretNotFound",
                f"Secret {secret_name!r} named by storage_config.credentials_secret_ref does not "
                f"exist in namespace {connector.metadata.namespace!r}; the Connector proceeds "
                "once it does.",
            ), ""
        missing = [k for k in CREDENTIAL_FIELDS[spec.storage_type] if k not in info.keys]
        if missing:
            return (
                "SecretIncomplete",
                f"Secret {secret_name!r} lacks the keys {', '.join(missing)}; the Connector "
                "proceeds once it has them.",
            ), ""
        return None, info.digest

    async def _referenced_secret(self, key: Key) -> SecretInfo | None:
        """The referenced Secret's digest, read (GET) only when the metadata watch shows a
        version newer than the one read last: the cache holds no Secret data of users."""
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
            resource_version(body), resources.credentials_digest(data), frozenset(data)
        )
        self._referenced[key] = info
        return info

    async def _write_status(self, body: Mapping[str, Any], status: dict[str, Any]) -> None:
        current = body.get("status") or {}
        if current == status:
            return
        patch: dict[str, Any] = {k: None for k in current if k not in status}
        patch.update(status)
        meta = body["metadata"]
        updated = await self.kube.patch_connector_status(
            meta["namespace"], meta["name"], patch, meta.get("resourceVersion")
        )
        self.cache.remember(self.cache.connectors, updated)

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
        await self._write_status(body, status)
        if previous.message != message:
            await self.kube.post_event(body, "Warning", reason, message, now)


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
