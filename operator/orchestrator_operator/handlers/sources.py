"""The watch that feeds the source controller: installations, their sources and the sync-now
annotation. The deletion of mirrored objects, which the controller puts back, reaches it
through the cache (handlers/caches.py)."""

from __future__ import annotations

from typing import Any

import kopf

from orchestrator_operator.handlers.installation import plain
from orchestrator_operator.handlers.state import OperatorState

GROUP = "orchestrator.dev"
VERSION = "v1alpha1"


def _with_sources(
    spec: kopf.Spec, status: kopf.Status, namespace: str | None, name: str, memo: Any, **_: Any
) -> bool:
    """Installations with sources, and those whose sources are still to be cleaned up."""
    state: OperatorState = memo.state
    if spec.get("sources") or status.get("sources"):
        return True
    return bool(state.sources and state.sources.tracks(namespace or "", name))


@kopf.on.event(GROUP, VERSION, "orchestratorinstances", when=_with_sources)
async def source_installation_event(
    event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any
) -> None:
    state: OperatorState = memo.state
    if state.sources:
        state.sources.installation_changed(plain(body), deleted=event.get("type") == "DELETED")
