"""Who holds each name our children could take, for every object of the kinds we create.

kopf watches these kinds whole anyway (one stream a kind serves every handler), so knowing every
name costs an entry per object and saves a read before each child is first applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from orchestrator_operator.reconcile.children import NameHolder, holder_of


def _held(body: kopf.Body, namespace: str | None, name: str | None) -> dict[Any, NameHolder]:
    return {(namespace, name): holder_of(body)}


@kopf.index("configmaps")
async def config_map_holders(
    body: kopf.Body, namespace: str | None, name: str | None, **_: Any
) -> Any:
    return _held(body, namespace, name)


@kopf.index("services")
async def service_holders(
    body: kopf.Body, namespace: str | None, name: str | None, **_: Any
) -> Any:
    return _held(body, namespace, name)


@kopf.index("deployments")
async def deployment_holders(
    body: kopf.Body, namespace: str | None, name: str | None, **_: Any
) -> Any:
    return _held(body, namespace, name)


@kopf.index("networkpolicies")
async def network_policy_holders(
    body: kopf.Body, namespace: str | None, name: str | None, **_: Any
) -> Any:
    return _held(body, namespace, name)


# The index of each kind, by the name kopf hands it to handlers under.
HOLDER_INDEXES: Mapping[str, str] = {
    "ConfigMap": "config_map_holders",
    "Service": "service_holders",
    "Deployment": "deployment_holders",
    "NetworkPolicy": "network_policy_holders",
}


def holder_indexes(handler_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The holder indexes among what kopf handed a handler."""
    return {
        name: handler_kwargs[name] for name in HOLDER_INDEXES.values() if name in handler_kwargs
    }
