"""The watch that feeds the Workflow controller: each event says which Workflow to look at.
Its children and their pods reach it through the cache (handlers/caches.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from orchestrator_operator.handlers.state import OperatorState

GROUP = "orchestrator.dev"

# Waiting reasons that every starting pod passes through; they are not problems.
_ROUTINE_WAITING = {"ContainerCreating", "PodInitializing"}


def plain(value: Any) -> Any:
    """kopf hands bodies as read-only views; the controllers work on plain data."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def pod_problem(pod: Mapping[str, Any]) -> str | None:
    """Why a pod of the runtime does not serve, in words from the kubelet, or None."""
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"pod {name}: {condition.get('reason')}: {condition.get('message', '')}".strip()
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        waiting = state.get("waiting")
        if waiting and waiting.get("reason") not in _ROUTINE_WAITING:
            return f"pod {name}: {waiting.get('reason')}: {waiting.get('message', '')}".strip(": ")
        terminated = (container.get("lastState") or {}).get("terminated")
        if terminated and terminated.get("exitCode") and not container.get("ready"):
            restarts = container.get("restartCount", 0)
            return (
                f"pod {name}: exited with code {terminated['exitCode']}"
                f" ({terminated.get('reason', 'Error')}), restarted {restarts} times"
            )
    return None


@kopf.on.event(GROUP, "v1alpha1", "workflows")
async def workflow_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    state: OperatorState = memo.state
    if state.workflows:
        state.workflows.workflow_changed(plain(body), deleted=event.get("type") == "DELETED")
