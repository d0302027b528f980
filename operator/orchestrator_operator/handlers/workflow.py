"""Watches that feed the Workflow controller. Each handler only says which Workflow to look at."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from orchestrator_operator.handlers.holders import holder_indexes
from orchestrator_operator.handlers.state import OperatorState
from orchestrator_operator.reconcile.children import ChildObservation, observe
from orchestrator_operator.render.names import MANAGED_BY, MANAGED_BY_LABEL, WORKFLOW_LABEL

GROUP = "orchestrator.dev"
OWNED: Mapping[str, Any] = {MANAGED_BY_LABEL: MANAGED_BY, WORKFLOW_LABEL: kopf.PRESENT}
OWNED_PODS: Mapping[str, Any] = {WORKFLOW_LABEL: kopf.PRESENT}
Index = kopf.Index[Any, Any] | None

# Waiting reasons that every starting pod passes through; they are not problems.
_ROUTINE_WAITING = {"ContainerCreating", "PodInitializing"}


def plain(value: Any) -> Any:
    """kopf hands bodies as read-only views; the controllers work on plain data."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _owned_child(
    body: kopf.Body, namespace: str | None, labels: Mapping[str, str]
) -> dict[Any, ChildObservation]:
    return {(namespace, labels[WORKFLOW_LABEL]): observe(plain(body))}


# Limitation: kopf holds every handler back until each indexed kind is listed, and the way it
# tracks that costs time growing faster than the square of the objects listed at start. With
# 7,666 ConfigMaps in the cluster the operator did not reconcile anything within five minutes,
# and the listing then failed with 410 Gone (see the chunk size in handlers/operator.py): an
# operator in a cluster with thousands of ConfigMaps may not start. Replacing these indexes by
# caches kept from plain watch events would lift it.
@kopf.index("configmaps", labels=OWNED)
async def workflow_config_maps(
    body: kopf.Body, namespace: str | None, labels: Mapping[str, str], **_: Any
) -> Any:
    return _owned_child(body, namespace, labels)


@kopf.index("services", labels=OWNED)
async def workflow_services(
    body: kopf.Body, namespace: str | None, labels: Mapping[str, str], **_: Any
) -> Any:
    return _owned_child(body, namespace, labels)


@kopf.index("deployments", labels=OWNED)
async def workflow_deployments(
    body: kopf.Body, namespace: str | None, labels: Mapping[str, str], **_: Any
) -> Any:
    return _owned_child(body, namespace, labels)


@kopf.index("pods", labels=OWNED_PODS)
async def workflow_pod_problems(
    body: kopf.Body, namespace: str | None, labels: Mapping[str, str], **_: Any
) -> dict[Any, str | None]:
    return {(namespace, labels[WORKFLOW_LABEL]): pod_problem(plain(body))}


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


def _state(memo: Any, **indexes: Index) -> OperatorState:
    state: OperatorState = memo.state
    state.attach_indexes(**{name: index for name, index in indexes.items() if index is not None})
    return state


@kopf.on.event(GROUP, "v1alpha1", "workflows")
async def workflow_event(
    event: kopf.RawEvent,
    body: kopf.Body,
    memo: Any,
    workflow_config_maps: Index = None,
    workflow_services: Index = None,
    workflow_deployments: Index = None,
    workflow_pod_problems: Index = None,
    **kwargs: Any,
) -> None:
    state = _state(
        memo,
        workflow_config_maps=workflow_config_maps,
        workflow_services=workflow_services,
        workflow_deployments=workflow_deployments,
        workflow_pod_problems=workflow_pod_problems,
        **holder_indexes(kwargs),
    )
    if state.workflows:
        state.workflows.workflow_changed(plain(body), deleted=event.get("type") == "DELETED")


@kopf.on.event("configmaps", labels=OWNED)
@kopf.on.event("services", labels=OWNED)
@kopf.on.event("deployments", labels=OWNED)
@kopf.on.event("pods", labels=OWNED_PODS)
async def owned_object_event(
    namespace: str | None, labels: Mapping[str, str], memo: Any, **_: Any
) -> None:
    state: OperatorState = memo.state
    if state.workflows and namespace:
        state.workflows.owner_changed(namespace, labels[WORKFLOW_LABEL])


def _not_ours(labels: Mapping[str, str], **_: Any) -> bool:
    return labels.get(MANAGED_BY_LABEL) != MANAGED_BY


@kopf.on.event("configmaps", when=_not_ours)
async def user_config_map_event(namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    state: OperatorState = memo.state
    if state.workflows and namespace:
        state.workflows.config_map_changed(namespace, name)
