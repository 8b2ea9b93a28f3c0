"""Argo CD's health evaluation of deploy/argocd/health.lua, as Argo CD runs it: a real Lua 5.1
runtime (lupa; Argo CD embeds gopher-lua, a Lua 5.1) with only the libraries Argo CD opens for
the scripts of argocd-cm, the object as the global `obj` decoded the way Argo CD decodes it, and
the result read and checked as Argo CD reads it. Imports lupa: without it the tests fail."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lupa.lua51

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "deploy" / "argocd" / "health.lua"
# The health statuses Argo CD accepts from a script; any other becomes Unknown.
VALID = frozenset({"Healthy", "Progressing", "Suspended", "Degraded", "Missing", "Unknown"})
INVALID_MESSAGE = "Lua returned an invalid health status"

# Argo CD opens the base, package and table libraries and a safe part of os (no string, math,
# io or debug) unless argocd-cm sets resource.customizations.useOpenLibs for the kind. The
# script runs in an environment of just those; string methods ("x"):upper() are gone too.
SANDBOX = """
local safe_os = {clock = os.clock, date = os.date, difftime = os.difftime, time = os.time}
local env = {
  assert = assert, error = error, getmetatable = getmetatable, ipairs = ipairs, load = load,
  loadstring = loadstring, next = next, pairs = pairs, pcall = pcall, print = print,
  rawequal = rawequal, rawget = rawget, rawset = rawset, select = select,
  setmetatable = setmetatable, tonumber = tonumber, tostring = tostring, type = type,
  unpack = unpack, xpcall = xpcall, _VERSION = _VERSION,
  require = require, module = module, package = package, table = table, os = safe_os,
}
env._G = env
debug.setmetatable("", nil)
return function(source, obj)
  local chunk, problem = loadstring(source, "=health.lua")
  if chunk == nil then error(problem, 0) end
  env.obj = obj
  setfenv(chunk, env)
  return chunk()
end
"""


@dataclass(frozen=True)
class Health:
    status: str
    message: str


def _to_lua(runtime: lupa.lua51.LuaRuntime, value: Any) -> Any:
    """JSON as Argo CD decodes it into Lua: objects and arrays become tables (arrays from index
    1), numbers Lua numbers, null nothing (a key set to nil is no key)."""
    if isinstance(value, dict):
        table = runtime.table()
        for key, item in value.items():
            if item is not None:
                table[key] = _to_lua(runtime, item)
        return table
    if isinstance(value, list):
        table = runtime.table()
        for index, item in enumerate(value, start=1):
            if item is not None:
                table[index] = _to_lua(runtime, item)
        return table
    return value


def evaluate(obj: dict[str, Any], script: str | None = None) -> Health:
    """What Argo CD shows as the health of `obj` (an object as the API server returns it).
    A Lua error raises lupa's LuaError, as it makes Argo CD report the error."""
    runtime = lupa.lua51.LuaRuntime(register_eval=False, register_builtins=False)
    run = runtime.execute(SANDBOX)
    source = SCRIPT.read_text() if script is None else script
    result = run(source, _to_lua(runtime, obj))
    if lupa.lua51.lua_type(result) != "table":
        raise TypeError(f"expect table output from Lua script, not {lupa.lua51.lua_type(result)}")
    status, message = result["status"], result["message"]
    if status not in VALID:
        return Health("Unknown", INVALID_MESSAGE)
    return Health(str(status), "" if message is None else str(message))
