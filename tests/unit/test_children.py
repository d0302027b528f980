"""When a child needs a write: the watch's digests while the operator runs, and the object itself
at the first look after a start, so that an edit made while the operator was away is undone."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator_operator.reconcile.children import (
    AppliedContent,
    Verdict,
    holds,
    observe,
    with_applied_hash,
)

SENT: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "hello-props",
        "namespace": "team-a",
        "labels": {"orchestrator.dev/workflow": "hello"},
        "ownerReferences": [{"kind": "Workflow", "name": "hello", "uid": "u-1"}],
    },
    "data": {"application.properties": "a=b\n"},
}

# What the API server answers for SENT: with the fields it and others add.
LIVE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "hello-props",
        "namespace": "team-a",
        "uid": "c-1",
        "resourceVersion": "42",
        "labels": {"orchestrator.dev/workflow": "hello", "team": "a"},
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        "ownerReferences": [
            {"kind": "Workflow", "name": "hello", "uid": "u-1", "blockOwnerDeletion": True}
        ],
        "managedFields": [{"manager": "orchestrator-operator"}],
    },
    "data": {"application.properties": "a=b\n"},
}


def edited(change: Any) -> dict[str, Any]:
    live: dict[str, Any] = {**LIVE, "metadata": dict(LIVE["metadata"]), "data": dict(LIVE["data"])}
    change(live)
    return live


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        (LIVE, True),
        (edited(lambda o: o["data"].update({"application.properties": "edited\n"})), False),
        (edited(lambda o: o["data"].pop("application.properties")), False),
        # A key someone else added is theirs: an apply would not remove it either.
        (edited(lambda o: o["data"].update({"extra": "x"})), True),
        (edited(lambda o: o["metadata"].update(labels={"team": "a"})), False),
        (edited(lambda o: o["metadata"].update(ownerReferences=[])), False),
    ],
    ids=["as sent", "value edited", "key removed", "key added", "label removed", "owner gone"],
)
def test_the_object_holds_what_we_sent(live: dict[str, Any], expected: bool) -> None:
    assert holds(live, SENT) is expected


@pytest.mark.parametrize(
    ("live", "sent", "expected"),
    [
        ({"env": [{"name": "A", "value": "1"}]}, {"env": [{"name": "A", "value": "1"}]}, True),
        ({"env": [{"name": "A", "value": "1"}]}, {"env": [{"name": "A", "value": "2"}]}, False),
        ({"env": [{"name": "A"}, {"name": "B"}]}, {"env": [{"name": "A"}]}, False),
        ({"env": [{"name": "B"}, {"name": "A"}]}, {"env": [{"name": "A"}, {"name": "B"}]}, False),
        # The server leaves out empty lists and mappings.
        ({}, {"env": [], "annotations": {}}, True),
        ({"replicas": 1}, {"replicas": 2}, False),
        ({"replicas": 1, "strategy": {"type": "RollingUpdate"}}, {"replicas": 1}, True),
        ({"ports": [{"port": 80, "protocol": "TCP"}]}, {"ports": [{"port": 80}]}, True),
        ({"targetPort": "8080"}, {"targetPort": 8080}, False),
    ],
)
def test_holds_is_a_deep_subset_with_lists_item_by_item(
    live: dict[str, Any], sent: dict[str, Any], expected: bool
) -> None:
    assert holds(live, sent) is expected


def test_a_first_look_compares_with_the_object_and_later_looks_use_the_watch() -> None:
    applied = AppliedContent()
    key = ("ConfigMap", "team-a", "hello-props")
    annotated, applied_hash = with_applied_hash(SENT)
    live = {
        **LIVE,
        "metadata": {**LIVE["metadata"], "annotations": annotated["metadata"]["annotations"]},
    }
    observed = observe(live)

    assert applied.verdict(key, applied_hash, None) is Verdict.STALE
    assert applied.verdict(key, "another-hash", observed) is Verdict.STALE
    assert applied.verdict(key, applied_hash, observed) is Verdict.UNVERIFIED
    assert applied.verify(key, annotated, live) is True
    assert applied.verdict(key, applied_hash, observed) is Verdict.CURRENT

    changed = observe({**live, "data": {"application.properties": "edited\n"}})
    assert applied.verdict(key, applied_hash, changed) is Verdict.STALE


def test_an_object_edited_while_unwatched_is_not_taken_as_ours() -> None:
    applied = AppliedContent()
    key = ("ConfigMap", "team-a", "hello-props")
    annotated, applied_hash = with_applied_hash(SENT)
    drifted = {
        **LIVE,
        "metadata": {**LIVE["metadata"], "annotations": annotated["metadata"]["annotations"]},
        "data": {"application.properties": "edited by hand\n"},
    }

    assert applied.verdict(key, applied_hash, observe(drifted)) is Verdict.UNVERIFIED
    assert applied.verify(key, annotated, drifted) is False
    assert applied.verify(key, annotated, None) is False
    assert applied.verdict(key, applied_hash, observe(drifted)) is Verdict.UNVERIFIED
