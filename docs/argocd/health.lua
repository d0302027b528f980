-- Argo CD health of orchestrator.dev Workflows and OrchestratorInstances, read from the Ready
-- condition the operator writes. It uses only Lua's base and table libraries, which Argo CD
-- opens for custom checks without useOpenLibs.
local health = {}

-- Reasons of a Ready condition that is False while the operator is still making progress:
-- a rollout under way, or a wait for something another resource is about to provide.
local progress_reasons = {
  RollingOut = true,
  NotRolledOut = true,
  NotPolledYet = true,
  NotSyncedYet = true,
  InstallationNotReady = true,
  PersistenceNotReady = true,
}
-- Reasons that say the resource was stopped on purpose.
local suspended_reasons = {
  ScaledToZero = true,
}

local generation = obj.metadata.generation
local status = obj.status
if status == nil or status.conditions == nil then
  health.status = "Progressing"
  health.message = "Waiting for the operator to report a status"
  return health
end
local observed = status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  health.status = "Progressing"
  health.message = "Waiting for the operator to reconcile generation " .. generation
  return health
end

local ready = nil
for _, condition in ipairs(status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  end
end
if ready == nil then
  health.status = "Progressing"
  health.message = "Waiting for the Ready condition"
  return health
end
-- A condition computed for an older generation says nothing about the current spec.
local ready_observed = ready.observedGeneration
if generation ~= nil and ready_observed ~= nil and ready_observed < generation then
  health.status = "Progressing"
  health.message = "Waiting for the operator to reconcile generation " .. generation
  return health
end

local reason = ready.reason or ""
local message = ready.message or ""
if ready.status == "True" then
  health.status = "Healthy"
  health.message = message
elseif ready.status == "False" and suspended_reasons[reason] then
  health.status = "Suspended"
  health.message = reason .. ": " .. message
elseif ready.status == "False" and not progress_reasons[reason] then
  health.status = "Degraded"
  health.message = reason .. ": " .. message
else
  health.status = "Progressing"
  health.message = reason .. ": " .. message
end
return health
