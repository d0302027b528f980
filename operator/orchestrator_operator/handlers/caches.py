"""The watch streams of Workflows and of the kinds we create, read straight into the
controllers.

kopf lists and watches each resource with handlers once, and hands every event to a task per
object that copies the body and runs the handlers. For Workflows, the kinds we create children
of, and the pods of runtimes, that machinery cost more than the work: the controllers need a
few facts of each child (who holds a name, what a child looked like, why a pod waits), the
Workflow's body, and a word to the owner. So the operator reads these streams as they arrive,
ahead of kopf's per-object tasks: each event updates the cache, tells the controllers, and goes
no further. The kinds keep a kopf handler only so that kopf watches them.

kopf's own indexes could keep these facts, but kopf holds every handler back until they are
filled, and the way it tracks that costs more than the square of the objects listed: with
thousands of ConfigMaps in the cluster the operator never got past its start. The cache follows
the listings itself (reconcile/cache.py), and only the controllers' workers wait for it.

Limitation: kopf has no public hook into its watch streams; this wraps `infinite_watch` of
`kopf._cogs.clients.watching`, which kopf's watcher calls through its module. A kopf release
that moves it stops the cache from filling, and with it every controller; the unit tests check
that the wrapper is the function kopf calls, and the integration tests that children are seen.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from functools import partial
from typing import Any

import kopf
from kopf._cogs.clients import watching

from orchestrator_operator.handlers.state import (
    INSTALLATION_CHILDREN,
    INSTALLATION_LINKS,
    MIRRORED_CONFIG_MAPS,
    POD_PROBLEMS,
    WORKFLOW_CHILDREN,
    OperatorState,
    holders_index,
)
from orchestrator_operator.reconcile.cache import Change, Entry, Indexer, WatchCache
from orchestrator_operator.reconcile.children import holder_of, observe
from orchestrator_operator.reconcile.installation_controller import linked_workflow_of
from orchestrator_operator.render.mirror import SOURCE_LABEL
from orchestrator_operator.render.names import (
    INSTALLATION_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    WORKFLOW_LABEL,
)

logger = logging.getLogger(__name__)

# Resources by kopf's plural name; the Workflows by their group too, since Argo Workflows
# shares the plural.
CHILD_RESOURCES = {
    "configmaps": "ConfigMap",
    "services": "Service",
    "deployments": "Deployment",
    "networkpolicies": "NetworkPolicy",
}
PODS = "pods"
WORKFLOWS = "workflows.orchestrator.dev"

# Waiting reasons that every starting pod passes through; they are not problems.
_ROUTINE_WAITING = {"ContainerCreating", "PodInitializing"}


def _child_entries(kind: str, body: Mapping[str, Any]) -> Iterator[Entry]:
    metadata = body["metadata"]
    namespace, name = metadata.get("namespace"), metadata["name"]
    labels = metadata.get("labels") or {}
    yield holders_index(kind), (namespace, name), holder_of(body)
    if labels.get(MANAGED_BY_LABEL) == MANAGED_BY:
        if WORKFLOW_LABEL in labels and kind != "NetworkPolicy":
            yield WORKFLOW_CHILDREN, (namespace, labels[WORKFLOW_LABEL]), observe(body)
        if INSTALLATION_LABEL in labels:
            key = (namespace, labels[INSTALLATION_LABEL])
            yield INSTALLATION_CHILDREN, key, observe(body)
    if kind == "ConfigMap" and SOURCE_LABEL in labels:
        yield MIRRORED_CONFIG_MAPS, (namespace, name), dict(labels)


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


def _pod_entries(body: Mapping[str, Any]) -> Iterator[Entry]:
    metadata = body["metadata"]
    labels = metadata.get("labels") or {}
    if WORKFLOW_LABEL in labels:
        key = (metadata.get("namespace"), labels[WORKFLOW_LABEL])
        yield POD_PROBLEMS, key, pod_problem(body)


def _link_entries(body: Mapping[str, Any]) -> Iterator[Entry]:
    link = linked_workflow_of(body)
    if link is not None:
        yield INSTALLATION_LINKS, link[0], link[1]


def new_cache() -> WatchCache:
    indexers: dict[str, Indexer] = {
        resource: partial(_child_entries, kind) for resource, kind in CHILD_RESOURCES.items()
    }
    indexers[PODS] = _pod_entries
    indexers[WORKFLOWS] = _link_entries
    return WatchCache(indexers=indexers)


def tell_owners(state: OperatorState, change: Change, body: Mapping[str, Any] | None) -> None:
    """Tell each controller what one change of a watched object means to it."""
    workflows, installations, sources = state.workflows, state.installations, state.sources
    if change.resource == WORKFLOWS:
        _workflow_changed(state, change, body)
        return
    # An owner once for each child that changed, whether it is the owner's before or after.
    owners: set[tuple[str, Any]] = {(index, key) for index, key, _ in change.before + change.after}
    for index, key in owners:
        if index in (WORKFLOW_CHILDREN, POD_PROBLEMS) and workflows:
            workflows.owner_changed(*key)
        elif index == INSTALLATION_CHILDREN and installations:
            installations.owner_changed(*key)
    namespace, name = change.ref
    if change.resource != "configmaps" or namespace is None:
        return
    labels = (body or {}).get("metadata", {}).get("labels") or {}
    if workflows and labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        workflows.config_map_changed(namespace, name)
    if sources and change.deleted:
        for index, _, mirrored_labels in change.before:
            if index == MIRRORED_CONFIG_MAPS:
                sources.mirrored_object_deleted("ConfigMap", namespace, name, mirrored_labels)


def _workflow_changed(state: OperatorState, change: Change, body: Mapping[str, Any] | None) -> None:
    namespace, name = change.ref
    if body is None or namespace is None:
        # Gone while the watch was away: only the listing that followed says so, without the
        # labels. A mirrored Workflow lost that way comes back at its source's next sync.
        body = {"metadata": {"namespace": namespace, "name": name}}
    if state.workflows:
        state.workflows.workflow_changed(body, deleted=change.deleted)
    if state.installations:
        state.installations.workflow_changed(body, deleted=change.deleted)
    labels = body["metadata"].get("labels") or {}
    if state.sources and change.deleted and SOURCE_LABEL in labels and namespace:
        state.sources.mirrored_object_deleted("Workflow", namespace, name, dict(labels))


def _resource_name(resource: Any) -> str:
    if resource.group == "orchestrator.dev":
        return f"{resource.plural}.{resource.group}"
    return str(resource.plural)


class _Tap:
    """The one consumer of the wrapped streams: the running operator's state, once started."""

    state: OperatorState | None = None


_TAP = _Tap()
_KOPF_INFINITE_WATCH = watching.infinite_watch


async def _watch_into_cache(*, resource: Any, namespace: Any, **kwargs: Any) -> AsyncIterator[Any]:
    stream = _KOPF_INFINITE_WATCH(resource=resource, namespace=namespace, **kwargs)
    state = _TAP.state
    name = _resource_name(resource)
    cache = state.cache if state else None
    if state is None or cache is None or not cache.watches(name):
        async for raw_event in stream:
            yield raw_event
        return
    cache.stream_started(name, namespace)
    try:
        async for raw_event in stream:
            if raw_event is watching.Bookmark.LISTED:
                for change in cache.listed(name, namespace):
                    _tell_owners_safely(state, change, None)
            if isinstance(raw_event, watching.Bookmark) or raw_event["type"] == "BOOKMARK":
                # kopf keeps its own account of the stream; objects end here.
                yield raw_event
                continue
            body = raw_event["object"]
            try:
                change = cache.event(name, namespace, raw_event["type"], body)
            except Exception:
                _log_failure(name, body)
                continue
            _tell_owners_safely(state, change, body)
    finally:
        cache.stream_ended(name, namespace)


def _tell_owners_safely(
    state: OperatorState, change: Change, body: Mapping[str, Any] | None
) -> None:
    # This runs inside kopf's watcher: an exception here would end the watch, and kopf would
    # stop the operator. One object that our code cannot read must cost only that object.
    try:
        tell_owners(state, change, body)
    except Exception:
        _log_failure(
            change.resource,
            body or {"metadata": dict(zip(("namespace", "name"), change.ref, strict=True))},
        )


def _log_failure(resource: str, body: Mapping[str, Any]) -> None:
    metadata = body.get("metadata") or {}
    # The object's name only: a body may carry data that must not reach a log.
    logger.exception(
        "Cannot read %s %s/%s from its watch; it is skipped until it changes",
        resource,
        metadata.get("namespace"),
        metadata.get("name"),
    )


def attach(state: OperatorState) -> None:
    """Feed the streams of this operator's watches into its cache, from now on."""
    _TAP.state = state
    watching.infinite_watch = _watch_into_cache


def detach() -> None:
    _TAP.state = None


async def _watched_through_the_cache(**_: Any) -> None:
    """Never called: the stream of these kinds ends in the cache. The handler makes kopf watch
    them."""


for _resource in (*CHILD_RESOURCES, PODS):
    kopf.on.event(_resource, id=f"cache-{_resource}")(_watched_through_the_cache)
kopf.on.event("orchestrator.dev", "v1alpha1", "workflows", id="cache-workflows")(
    _watched_through_the_cache
)
