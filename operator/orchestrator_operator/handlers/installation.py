"""Watches that feed the OrchestratorInstance controller. Each handler only says which
installation to look at again; indexes keep what the controller reads without asking the API
server: the installation's children, and which Workflows link to which installation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from orchestrator_operator.handlers.holders import holder_indexes
from orchestrator_operator.handlers.state import OperatorState
from orchestrator_operator.handlers.workflow import plain
from orchestrator_operator.reconcile.children import ChildObservation, observe
from orchestrator_operator.reconcile.installation_controller import linked_workflow_of
from orchestrator_operator.render.names import INSTALLATION_LABEL, MANAGED_BY, MANAGED_BY_LABEL

GROUP = "orchestrator.dev"
VERSION = "v1alpha1"
OWNED: Mapping[str, Any] = {MANAGED_BY_LABEL: MANAGED_BY, INSTALLATION_LABEL: kopf.PRESENT}
Index = kopf.Index[Any, Any] | None


def _owned_child(body: kopf.Body) -> dict[Any, ChildObservation]:
    metadata = body["metadata"]
    key = (metadata["namespace"], metadata["labels"][INSTALLATION_LABEL])
    return {key: observe(plain(body))}


@kopf.index("configmaps", labels=OWNED)
async def installation_config_maps(body: kopf.Body, **_: Any) -> Any:
    return _owned_child(body)


@kopf.index("services", labels=OWNED)
async def installation_services(body: kopf.Body, **_: Any) -> Any:
    return _owned_child(body)


@kopf.index("deployments", labels=OWNED)
async def installation_deployments(body: kopf.Body, **_: Any) -> Any:
    return _owned_child(body)


@kopf.index("networkpolicies", labels=OWNED)
async def installation_network_policies(body: kopf.Body, **_: Any) -> Any:
    return _owned_child(body)


@kopf.index(GROUP, VERSION, "workflows")
async def installation_links(body: kopf.Body, **_: Any) -> Any:
    """Installation -> the Workflows that name it, with what the poller needs of each."""
    link = linked_workflow_of(plain(body))
    return None if link is None else {link[0]: link[1]}


def _state(memo: Any, **indexes: Index) -> OperatorState:
    state: OperatorState = memo.state
    state.attach_indexes(**{name: index for name, index in indexes.items() if index is not None})
    return state


@kopf.on.event(GROUP, VERSION, "orchestratorinstances")
async def installation_event(
    event: kopf.RawEvent,
    body: kopf.Body,
    memo: Any,
    installation_config_maps: Index = None,
    installation_services: Index = None,
    installation_deployments: Index = None,
    installation_network_policies: Index = None,
    installation_links: Index = None,
    **kwargs: Any,
) -> None:
    state = _state(
        memo,
        installation_config_maps=installation_config_maps,
        installation_services=installation_services,
        installation_deployments=installation_deployments,
        installation_network_policies=installation_network_policies,
        installation_links=installation_links,
        **holder_indexes(kwargs),
    )
    if state.installations:
        state.installations.installation_changed(
            plain(body), deleted=event.get("type") == "DELETED"
        )


@kopf.on.event(GROUP, VERSION, "workflows")
async def installation_link_event(
    event: kopf.RawEvent, body: kopf.Body, memo: Any, installation_links: Index = None, **_: Any
) -> None:
    state = _state(memo, installation_links=installation_links)
    if state.installations:
        state.installations.workflow_changed(plain(body), deleted=event.get("type") == "DELETED")


@kopf.on.event("configmaps", labels=OWNED)
@kopf.on.event("services", labels=OWNED)
@kopf.on.event("deployments", labels=OWNED)
@kopf.on.event("networkpolicies", labels=OWNED)
async def installation_child_event(body: kopf.Body, memo: Any, **_: Any) -> None:
    state: OperatorState = memo.state
    if state.installations:
        metadata = body["metadata"]
        state.installations.owner_changed(
            metadata["namespace"], metadata["labels"][INSTALLATION_LABEL]
        )
