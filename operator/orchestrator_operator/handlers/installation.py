"""Watches that feed the OrchestratorInstance controller. Each handler only says which
installation to look at again. The installations' children, and which Workflows link to which
installation, reach it through the cache (handlers/caches.py)."""

from __future__ import annotations

from typing import Any

import kopf

from orchestrator_operator.handlers.state import OperatorState
from orchestrator_operator.handlers.workflow import plain

GROUP = "orchestrator.dev"
VERSION = "v1alpha1"


@kopf.on.event(GROUP, VERSION, "orchestratorinstances")
async def installation_event(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    state: OperatorState = memo.state
    if state.installations:
        state.installations.installation_changed(
            plain(body), deleted=event.get("type") == "DELETED"
        )


@kopf.on.event(GROUP, VERSION, "workflows")
async def installation_link_event(
    event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any
) -> None:
    state: OperatorState = memo.state
    if state.installations:
        state.installations.workflow_changed(plain(body), deleted=event.get("type") == "DELETED")
