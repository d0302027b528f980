"""The cache the controllers read: entries kept per object from the watch streams, and ready
only once every watched kind has been listed whole."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator, Mapping
from typing import Any, cast

import kopf
import pytest
from kopf._cogs.clients import watching
from kopf._cogs.structs.references import Resource
from kopf._core.reactor import queueing

from orchestrator_operator.config import OperatorConfig
from orchestrator_operator.handlers import caches
from orchestrator_operator.handlers.state import OperatorState
from orchestrator_operator.reconcile.cache import Entry, WatchCache
from orchestrator_operator.render.mirror import SOURCE_LABEL
from orchestrator_operator.render.names import MANAGED_BY, MANAGED_BY_LABEL, WORKFLOW_LABEL


def _by_owner(body: Mapping[str, Any]) -> Iterator[Entry]:
    metadata = body["metadata"]
    owner = (metadata.get("labels") or {}).get("owner")
    if owner:
        yield "by_owner", (metadata["namespace"], owner), metadata["name"]


def _object(name: str, namespace: str = "team", owner: str | None = "hello") -> dict[str, Any]:
    labels = {"owner": owner} if owner else {}
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}}


def _cache(*resources: str) -> WatchCache:
    return WatchCache(indexers=dict.fromkeys(resources, _by_owner))


def test_an_object_s_entries_are_replaced_whole_and_dropped_on_delete() -> None:
    cache = _cache("configmaps")
    cache.event("configmaps", None, "ADDED", _object("a"))
    cache.event("configmaps", None, "ADDED", _object("b"))
    assert sorted(cache.values("by_owner", ("team", "hello"))) == ["a", "b"]

    change = cache.event("configmaps", None, "MODIFIED", _object("a", owner="other"))
    assert cache.values("by_owner", ("team", "hello")) == ["b"]
    assert cache.values("by_owner", ("team", "other")) == ["a"]
    assert [entry[1] for entry in change.before] == [("team", "hello")]
    assert [entry[1] for entry in change.after] == [("team", "other")]

    change = cache.event("configmaps", None, "DELETED", _object("a", owner="other"))
    assert change.deleted
    assert change.after == ()
    assert cache.values("by_owner", ("team", "other")) == []


def test_ready_only_when_every_kind_has_a_stream_and_every_stream_is_listed() -> None:
    cache = _cache("configmaps", "services")
    cache.stream_started("configmaps", "team")
    cache.stream_started("configmaps", "other")
    cache.event("configmaps", "team", None, _object("a"))
    cache.listed("configmaps", "team")
    assert not cache.ready.is_set()  # the other namespace's listing is under way

    cache.listed("configmaps", "other")
    assert not cache.ready.is_set()  # no stream of services yet

    cache.stream_started("services", None)
    cache.listed("services", None)
    assert cache.ready.is_set()

    # Once ready, a stream that starts over does not hold the controllers back again.
    cache.stream_started("services", None)
    assert cache.ready.is_set()


def test_a_listing_again_drops_the_objects_it_no_longer_holds() -> None:
    cache = _cache("configmaps")
    cache.stream_started("configmaps", None)
    for name in ("a", "b", "c"):
        cache.event("configmaps", None, None, _object(name))
    cache.event("configmaps", None, None, _object("d", namespace="other"))
    cache.listed("configmaps", None)

    # The watch expired and kopf lists again: b and d went away meanwhile.
    cache.event("configmaps", None, None, _object("a"))
    cache.event("configmaps", None, None, _object("c"))
    gone = cache.listed("configmaps", None)

    assert sorted(change.ref for change in gone) == [("other", "d"), ("team", "b")]
    assert all(change.deleted and change.after == () for change in gone)
    assert sorted(cache.values("by_owner", ("team", "hello"))) == ["a", "c"]
    assert cache.values("by_owner", ("other", "hello")) == []


def test_an_empty_listing_of_one_namespace_leaves_the_others_alone() -> None:
    cache = _cache("configmaps")
    cache.event("configmaps", "team", None, _object("a"))
    cache.event("configmaps", "other", None, _object("b", namespace="other"))
    cache.listed("configmaps", "team")
    cache.listed("configmaps", "other")

    gone = cache.listed("configmaps", "team")  # listed again, and nothing is left there

    assert [change.ref for change in gone] == [("team", "a")]
    assert cache.values("by_owner", ("other", "hello")) == ["b"]


def test_kopf_s_watcher_reads_its_streams_through_the_function_the_cache_wraps() -> None:
    # The cache depends on these two facts of kopf's internals; a kopf release that changes
    # them must fail here rather than leave the controllers waiting for a cache that never fills.
    assert "watching.infinite_watch(" in inspect.getsource(queueing.watcher)
    assert vars(queueing)["watching"] is watching
    assert isinstance(watching.Bookmark.LISTED, watching.Bookmark)


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.keywords: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **keywords: Any) -> None:
            self.calls.append((name, args))
            self.keywords.append(keywords)

        return record


def _stream_through_the_tap(
    state: OperatorState, resource: Resource, events: list[Any]
) -> list[Any]:
    """Run `events` through the wrapped watch, as kopf's watcher would; return what kopf got."""

    async def kopf_stream(**_: Any) -> Any:
        for event in events:
            yield event

    async def consume() -> list[Any]:
        caches.attach(state)
        original = caches._KOPF_INFINITE_WATCH
        caches._KOPF_INFINITE_WATCH = kopf_stream
        try:
            stream = watching.infinite_watch(
                settings=kopf.OperatorSettings(), resource=resource, namespace=None
            )
            return [event async for event in stream]
        finally:
            caches._KOPF_INFINITE_WATCH = original
            caches.detach()
            watching.infinite_watch = original

    return asyncio.run(consume())


def _ours(name: str, workflow: str, **labels: str) -> dict[str, Any]:
    return {
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "team",
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, WORKFLOW_LABEL: workflow, **labels},
        },
        "data": {},
    }


def test_the_streams_of_children_end_in_the_cache_and_tell_the_owners() -> None:
    workflows, sources = _Recorder(), _Recorder()
    state = OperatorState(
        config=OperatorConfig(),
        cache=caches.new_cache(),
        workflows=cast(Any, workflows),
        sources=cast(Any, sources),
    )
    user_map = {"kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "team"}}
    mirrored = _ours("hello-props", "hello", **{SOURCE_LABEL: "repo"})
    events: list[Any] = [
        {"type": None, "object": _ours("hello-definition", "hello")},
        {"type": None, "object": user_map},
        watching.Bookmark.LISTED,
        {"type": "ADDED", "object": mirrored},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
        {"type": "DELETED", "object": mirrored},
    ]

    passed_on = _stream_through_the_tap(state, Resource("", "v1", "configmaps"), events)

    # kopf gets only the bookmarks: no per-object task runs for a ConfigMap.
    assert all(
        isinstance(event, watching.Bookmark) or event["type"] == "BOOKMARK" for event in passed_on
    )
    assert state.name_holder("ConfigMap", "team", "settings") is not None
    assert [child.name for child in state.workflow_children("team", "hello")] == [
        "hello-definition"
    ]
    assert ("owner_changed", ("team", "hello")) in workflows.calls
    assert ("config_map_changed", ("team", "settings")) in workflows.calls
    assert ("config_map_changed", ("team", "hello-definition")) not in workflows.calls
    assert sources.calls == [
        (
            "mirrored_object_deleted",
            ("ConfigMap", "team", "hello-props", mirrored["metadata"]["labels"]),
        )
    ]
    assert state.cache is not None
    assert not state.cache.ready.is_set()


def test_workflow_events_reach_every_controller_and_not_kopf() -> None:
    workflows, installations, sources = _Recorder(), _Recorder(), _Recorder()
    state = OperatorState(
        config=OperatorConfig(),
        cache=caches.new_cache(),
        workflows=cast(Any, workflows),
        installations=cast(Any, installations),
        sources=cast(Any, sources),
    )
    linked = {
        "kind": "Workflow",
        "metadata": {"name": "hello", "namespace": "team", "labels": {SOURCE_LABEL: "repo"}},
        "spec": {"definition": {"id": "hello"}, "installationRef": {"name": "orchestrator"}},
    }
    gone = {"kind": "Workflow", "metadata": {"name": "old", "namespace": "team"}}
    events: list[Any] = [
        {"type": None, "object": gone},
        watching.Bookmark.LISTED,
        {"type": None, "object": linked},
        watching.Bookmark.LISTED,  # listed again, without "old"
        {"type": "DELETED", "object": linked},
    ]

    passed_on = _stream_through_the_tap(
        state, Resource("orchestrator.dev", "v1alpha1", "workflows"), events
    )

    assert all(isinstance(event, watching.Bookmark) for event in passed_on)
    assert [(name, args[0]["metadata"]["name"]) for name, args in workflows.calls] == [
        ("workflow_changed", "old"),
        ("workflow_changed", "hello"),
        ("workflow_changed", "old"),
        ("workflow_changed", "hello"),
    ]
    assert installations.calls == workflows.calls
    # The listing that dropped "old" says it is deleted; so does the DELETED event of "hello".
    assert [keywords["deleted"] for keywords in workflows.keywords] == [False, False, True, True]
    assert sources.calls == [
        ("mirrored_object_deleted", ("Workflow", "team", "hello", {SOURCE_LABEL: "repo"}))
    ]
    assert state.linked_workflows("team", "orchestrator") == []


def test_an_object_that_cannot_be_read_costs_only_itself(caplog: pytest.LogCaptureFixture) -> None:
    workflows = _Recorder()
    state = OperatorState(
        config=OperatorConfig(), cache=caches.new_cache(), workflows=cast(Any, workflows)
    )
    nameless = {
        "kind": "ConfigMap",
        "metadata": {"namespace": "team"},
        "data": {"key": "do-not-log-me"},
    }
    events: list[Any] = [
        {"type": "ADDED", "object": nameless},
        {"type": "ADDED", "object": _ours("hello-definition", "hello")},
    ]

    _stream_through_the_tap(state, Resource("", "v1", "configmaps"), events)

    assert [child.name for child in state.workflow_children("team", "hello")] == [
        "hello-definition"
    ]
    assert "Cannot read configmaps team/None" in caplog.text
    assert "do-not-log-me" not in caplog.text
