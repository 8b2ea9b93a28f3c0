-- Argo CD health check of dataspace.dev/Connector (connector-operator): Argo CD runs it with the
-- Connector as the global `obj` and shows hs.status and hs.message. Installed through argocd-cm
-- (argocd-cm.yaml beside this file holds the same script). It uses Lua's base library only: Argo
-- CD opens no string or math library for the scripts of argocd-cm.
local hs = {}

local function condition(status, wanted)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local function holds(status, wanted)
  local c = condition(status, wanted)
  return c ~= nil and c.status == "True"
end

local status = obj.status
if status == nil or (status.phase == nil and status.conditions == nil) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report the Connector's status."
  return hs
end

-- A status written for an older spec says nothing about the spec applied now.
local generation = obj.metadata.generation
local observed = status.observedGeneration
if generation ~= nil and observed ~= nil and generation ~= observed then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
    .. " (its status is of generation " .. observed .. ")."
  return hs
end

local stalled = condition(status, "Stalled")
local message = status.message
if message == nil and stalled ~= nil then
  message = stalled.message
end

-- Stalled: progress is blocked until someone acts (a missing Secret, a refused action, ...),
-- whatever the phase.
if status.phase == "Failed" or (stalled ~= nil and stalled.status == "True") then
  hs.status = "Degraded"
  hs.message = message
  return hs
end

local byPhase = {
  Running = "Healthy",
  Starting = "Progressing",
  Restarting = "Progressing",
  Stopping = "Progressing",
  Stopped = "Suspended",
}
local health = byPhase[status.phase]
if health == nil then
  -- No phase yet, or one newer than this script: the kstatus conditions decide.
  if holds(status, "Reconciling") then
    health = "Progressing"
  elseif holds(status, "Ready") then
    health = "Healthy"
  elseif status.phase == nil then
    health = "Progressing"
  else
    health = "Unknown"
    message = "Unknown phase " .. status.phase .. ": " .. (message or "no message")
  end
end
hs.status = health
hs.message = message
return hs
