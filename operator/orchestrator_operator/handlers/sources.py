"""Watches that feed the source controller: installations (their sources, the sync-now
annotation) and the deletion of mirrored Workflows, which the controller puts back. Mirrored
ConfigMaps reach it through the cache (handlers/caches.py)."""

from __future__ import annotations

from typing import Any

import kopf

from orchestrator_operator.handlers.state import OperatorState
from orchestrator_operator.handlers.workflow import plain
from orchestrator_operator.render.mirror import SOURCE_LABEL

GROUP = "orchestrator.dev"
VERSION = "v1alpha1"
MIRRORED = {SOURCE_LABEL: kopf.PRESENT}


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


@kopf.on.event(GROUP, VERSION, "workflows", labels=MIRRORED)
async def mirrored_object_event(
    event: kopf.RawEvent,
    body: kopf.Body,
    namespace: str | None,
    name: str,
    labels: kopf.Labels,
    memo: Any,
    **_: Any,
) -> None:
    state: OperatorState = memo.state
    if state.sources and namespace and event.get("type") == "DELETED":
        state.sources.mirrored_object_deleted(str(body.get("kind")), namespace, name, dict(labels))
