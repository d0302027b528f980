"""Watches that feed the OrchestratorInstance controller. Each handler only says which
installation to look at again. The installations' children, and which Workflows link to which
installation, reach it through the cache (handlers/caches.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from orchestrator_operator.handlers.state import OperatorState

GROUP = "orchestrator.dev"
VERSION = "v1alpha1"


def plain(value: Any) -> Any:
    """kopf hands bodies as read-only views; the controllers work on plain data."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


@kopf.on.event(GROUP, VERSION, "orchestratorinstances")
async def installation_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    state: OperatorState = memo.state
    if state.installations:
        state.installations.installation_changed(
            plain(body), deleted=event.get("type") == "DELETED"
        )
