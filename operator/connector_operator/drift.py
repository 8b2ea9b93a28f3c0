"""Where an object on the server departs from the manifest the operator applies (pure: resources).

The desired manifest names every field the operator owns; the server's object carries more
(defaults, status, other managers' fields). A field differs when the operator sets it and the
server holds another value, or none. Lists of named items (containers, env, ports, volumes) are
matched by name, as server-side apply merges them; an item someone else added is theirs, not
drift. Any other list is compared whole, as apply replaces it whole. Where the operator owns a
field whole (`EXACT`: a Secret's data, a Service's ports), an added key or item is drift too: a
stray port opens the pod, a stray key is not the user's credentials.

Paths name fields, never values: they go into events, and a Secret's values must not.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from connector_operator.resources import stamp_of

EXACT = frozenset({"data", "spec.ports"})


def differences(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """The paths of the fields `desired` sets that `actual` does not hold as set, and of what
    was added under an `EXACT` path."""
    found: list[str] = []
    _compare(desired, actual, "", found)
    return found


def repair_patch(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch that makes `actual` hold `desired`: lists are replaced whole by a merge
    patch, and keys added under an `EXACT` map are removed (set to null)."""
    patch = copy.deepcopy(dict(desired))
    for path in EXACT:
        want, have = _at(desired, path), _at(actual, path)
        if isinstance(want, Mapping) and isinstance(have, Mapping):
            target = _at(patch, path)
            assert isinstance(target, dict)
            target.update({k: None for k in have if k not in want})
    return patch


def _at(obj: Mapping[str, Any], path: str) -> Any:
    for name in path.split("."):
        if not isinstance(obj, Mapping) or name not in obj:
            return None
        obj = obj[name]
    return obj


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _compare(desired: Any, actual: Any, path: str, found: list[str]) -> None:
    if isinstance(desired, Mapping):
        if not isinstance(actual, Mapping):
            found.append(path)
            return
        for name, value in desired.items():
            if name not in actual:
                found.append(_join(path, name))
            else:
                _compare(value, actual[name], _join(path, name), found)
        if path in EXACT:
            found.extend(_join(path, name) for name in actual if name not in desired)
    elif isinstance(desired, list):
        _compare_lists(desired, actual, path, found)
    elif desired != actual:
        found.append(path)


def _compare_lists(desired: list[Any], actual: Any, path: str, found: list[str]) -> None:
    if not isinstance(actual, list):
        found.append(path)
    elif _named(desired):
        _compare_named(desired, actual, path, found)
    elif len(desired) != len(actual) or not all(isinstance(i, Mapping) for i in desired):
        if desired != actual:  # a list of values is one field: apply replaces it whole
            found.append(path)
    else:
        for index, (want, have) in enumerate(zip(desired, actual, strict=True)):
            _compare(want, have, f"{path}[{index}]", found)


def _named(items: Sequence[Any]) -> bool:
    return bool(items) and all(isinstance(i, Mapping) and "name" in i for i in items)


def _compare_named(
    desired: Sequence[Mapping[str, Any]], actual: Sequence[Any], path: str, found: list[str]
) -> None:
    held = {i.get("name"): i for i in actual if isinstance(i, Mapping)}
    if path in EXACT:
        wanted = {item["name"] for item in desired}
        found.extend(f"{path}[{name}]" for name in held if name not in wanted)
        if len(held) != len(actual):
            found.append(path)  # items that are not even named
    for item in desired:
        where = f"{path}[{item['name']}]"
        if item["name"] not in held:
            found.append(where)
        else:
            _compare(item, held[item["name"]], where, found)


class Why(StrEnum):
    """Why a child is written in this pass."""

    CREATE = "create"  # it does not exist
    UPDATE = "update"  # the operator wants something new (its applied stamp differs)
    REPAIR = "repair"  # someone else changed a field the operator sets


def judge(
    desired: Mapping[str, Any], actual: Mapping[str, Any] | None, tolerated: frozenset[str]
) -> tuple[Why | None, list[str]]:
    """Whether to write `desired`, why, and (for a repair) which fields had drifted.

    `tolerated` are paths the API server itself rewrites (a normalized quantity, say): seen
    differing right after the operator's own write, they are not drift.
    """
    if actual is None:
        return Why.CREATE, []
    if stamp_of(actual) != stamp_of(desired):
        return Why.UPDATE, []
    drifted = [path for path in differences(desired, actual) if path not in tolerated]
    return (Why.REPAIR, drifted) if drifted else (None, [])
