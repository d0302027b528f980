"""Who holds each name our children could take, for every object of the kinds we create.

kopf watches these kinds whole anyway (one stream a kind serves every handler), so knowing every
name costs an entry per object and saves a read before each child is first applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from orchestrator_operator.reconcile.children import NameHolder, holder_of

# The index of each kind we create children of, by kind, named as kopf hands it to handlers.
HOLDER_INDEXES: Mapping[str, str] = {
    "ConfigMap": "config_map_holders",
    "Service": "service_holders",
    "Deployment": "deployment_holders",
    "NetworkPolicy": "network_policy_holders",
}
_RESOURCES = {
    "ConfigMap": "configmaps",
    "Service": "services",
    "Deployment": "deployments",
    "NetworkPolicy": "networkpolicies",
}


async def name_holder(
    body: kopf.Body, namespace: str | None, name: str | None, **_: Any
) -> dict[Any, NameHolder]:
    return {(namespace, name): holder_of(body)}


for _kind, _index in HOLDER_INDEXES.items():
    kopf.index(_RESOURCES[_kind], id=_index)(name_holder)


def holder_indexes(handler_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The holder indexes among what kopf handed a handler."""
    names = HOLDER_INDEXES.values()
    return {name: index for name, index in handler_kwargs.items() if name in names}
