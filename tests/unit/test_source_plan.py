"""Deciding a sync: what to apply, what to delete, and what the source's status says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator_operator.reconcile.conditions import FALSE, Finding
from orchestrator_operator.reconcile.source import (
    SOURCE_SYNCED,
    SYNCED,
    WORKFLOW_CONFLICT,
    SyncOutcome,
    plan_sync,
    source_status,
)
from orchestrator_operator.render.mirror import (
    SOURCE_PATH_ANNOTATION,
    SOURCE_WORKFLOW_LABEL,
    MirroredWorkflow,
    MirrorTarget,
    source_labels,
)
from orchestrator_operator.render.repository import (
    DISCOVERY_INCOMPLETE,
    DUPLICATE_WORKFLOW_ID,
    INVALID_WORKFLOW,
    RepositoryProblem,
)

TARGET = MirrorTarget("orchestrator", "team-a", "uid-1", "main", "team-a")
OTHER_SOURCE = MirrorTarget("orchestrator", "team-a", "uid-1", "extra", "team-a")
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
COMMIT = "a" * 40


def mirrored(name: str, folder: str | None = None, large: bool = False) -> MirroredWorkflow:
    config_maps: tuple[dict[str, Any], ...] = ()
    if large:
        labels = {**source_labels(TARGET), SOURCE_WORKFLOW_LABEL: name}
        config_maps = (
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{name}-source-specs", "labels": labels},
                "data": {"big.yaml": "x"},
            },
        )
    return MirroredWorkflow(
        name=name,
        folder=folder or name,
        config_maps=config_maps,
        workflow={
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": name, "labels": source_labels(TARGET)},
            "spec": {"definition": {"id": name}},
        },
    )


def existing(
    name: str, target: MirrorTarget | None = TARGET, folder: str | None = None
) -> dict[str, Any]:
    labels = source_labels(target) if target else {"team": "a"}
    return {
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {SOURCE_PATH_ANNOTATION: folder or name},
        }
    }


def config_map(name: str, workflow: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {**source_labels(TARGET), SOURCE_WORKFLOW_LABEL: workflow},
        }
    }


def test_config_maps_are_applied_before_the_workflows_that_mount_them() -> None:
    plan = plan_sync([mirrored("b", large=True), mirrored("a")], [], [], [], TARGET)

    assert [(d.kind, d.name) for d in plan.apply] == [
        ("ConfigMap", "b-source-specs"),
        ("Workflow", "a"),
        ("Workflow", "b"),
    ]
    assert plan.workflows == 2


def test_a_workflow_whose_folder_left_git_is_deleted() -> None:
    plan = plan_sync(
        [mirrored("greeting")],
        [],
        [existing("greeting"), existing("old"), existing("someone-elses", target=None)],
        [config_map("old-source-specs", "old")],
        TARGET,
    )

    assert plan.delete_workflows == ["old"]
    assert plan.delete_config_maps == ["old-source-specs"]


def test_a_renamed_folder_replaces_its_workflow() -> None:
    plan = plan_sync([mirrored("hello", folder="hello")], [], [existing("greeting")], [], TARGET)

    assert [d.name for d in plan.apply] == ["hello"]
    assert plan.delete_workflows == ["greeting"]


def test_workflows_of_another_source_are_not_touched() -> None:
    plan = plan_sync([], [], [existing("theirs", target=OTHER_SOURCE)], [], TARGET)

    assert plan.delete_workflows == []


def test_a_workflow_of_a_folder_with_a_problem_is_kept_as_it_is() -> None:
    problems = [
        RepositoryProblem(INVALID_WORKFLOW, "greeting", "greeting: does not parse"),
        RepositoryProblem(DUPLICATE_WORKFLOW_ID, "a", "a and b: same id", name="dup"),
        RepositoryProblem(DUPLICATE_WORKFLOW_ID, "b", "a and b: same id", name="dup"),
    ]

    plan = plan_sync(
        [],
        problems,
        [existing("greeting"), existing("dup", folder="a")],
        [config_map("greeting-source-specs", "greeting")],
        TARGET,
    )

    assert plan.apply == []
    assert plan.delete_workflows == []
    assert plan.delete_config_maps == []
    assert plan.workflows == 2


def test_a_search_that_met_its_limits_deletes_nothing() -> None:
    limit = RepositoryProblem(DISCOVERY_INCOMPLETE, "deep/down", "deep/down: not searched")

    plan = plan_sync(
        [mirrored("greeting")],
        [limit],
        [existing("greeting"), existing("old"), existing("deeper", folder="deep/down/deeper")],
        [config_map("old-source-specs", "old")],
        TARGET,
    )

    assert [d.name for d in plan.apply] == ["greeting"]
    assert plan.delete_workflows == []
    assert plan.delete_config_maps == []
    assert plan.workflows == 3


def test_a_search_that_met_its_limits_makes_the_source_not_synced() -> None:
    limit = RepositoryProblem(DISCOVERY_INCOMPLETE, "deep", "deep: not searched (MAX_DEPTH)")

    condition = synced(commit=COMMIT, workflows=1, problems=[limit])["conditions"][0]

    assert (condition["status"], condition["reason"]) == ("False", DISCOVERY_INCOMPLETE)
    assert "MAX_DEPTH" in condition["message"]


def test_a_name_taken_by_a_workflow_that_is_not_ours_is_a_conflict() -> None:
    plan = plan_sync(
        [mirrored("greeting"), mirrored("theirs")],
        [],
        [existing("greeting", target=None), existing("theirs", target=OTHER_SOURCE)],
        [],
        TARGET,
    )

    assert plan.apply == []
    conflicts = {p.name: p for p in plan.problems if p.reason == WORKFLOW_CONFLICT}
    assert set(conflicts) == {"greeting", "theirs"}
    assert "not mirrored" in conflicts["greeting"].message
    assert "'extra'" in conflicts["theirs"].message


# -- status -----------------------------------------------------------------------------------


def synced(**outcome: Any) -> dict[str, Any]:
    update = source_status("main", None, SyncOutcome(**outcome), 4, NOW)
    return update.entry


def test_a_first_sync_writes_the_commit_the_count_and_the_time() -> None:
    update = source_status("main", None, SyncOutcome(commit=COMMIT, workflows=9, applied=9), 4, NOW)

    assert update.changed
    assert update.entry["commit"] == COMMIT
    assert update.entry["workflows"] == 9
    assert update.entry["lastSyncTime"] == "2026-01-02T03:04:05Z"
    [condition] = update.entry["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        SOURCE_SYNCED,
        "True",
        SYNCED,
    )
    assert update.event is not None


def test_an_unchanged_poll_changes_nothing_not_even_the_time() -> None:
    previous = synced(commit=COMMIT, workflows=9, applied=9)

    later = NOW + timedelta(minutes=5)
    update = source_status("main", previous, SyncOutcome(commit=COMMIT, workflows=9), 4, later)

    assert not update.changed
    assert update.entry == previous
    assert update.event is None


def test_a_failure_keeps_the_last_commit_and_says_why() -> None:
    previous = synced(commit=COMMIT, workflows=9, applied=9)
    failure = Finding(SOURCE_SYNCED, FALSE, "AuthenticationFailed", "Authentication failed")

    later = NOW + timedelta(minutes=5)
    update = source_status("main", previous, SyncOutcome(failure=failure), 4, later)

    assert update.changed
    assert update.entry["commit"] == COMMIT
    assert update.entry["workflows"] == 9
    assert update.entry["lastSyncTime"] == previous["lastSyncTime"]
    [condition] = update.entry["conditions"]
    assert (condition["status"], condition["reason"]) == ("False", "AuthenticationFailed")
    assert update.event == ("Warning", "AuthenticationFailed", "source main: Authentication failed")

    again = source_status("main", update.entry, SyncOutcome(failure=failure), 4, later)
    assert not again.changed
    assert again.event is None


def test_folders_that_are_not_mirrored_make_the_source_not_synced() -> None:
    problems = [RepositoryProblem(DUPLICATE_WORKFLOW_ID, "a", "a, b: same id", name="x")]

    entry = synced(commit=COMMIT, workflows=7, problems=problems)

    [condition] = entry["conditions"]
    assert (condition["status"], condition["reason"]) == ("False", DUPLICATE_WORKFLOW_ID)
    assert "a, b: same id" in condition["message"]


def test_warnings_leave_the_source_synced_and_are_shown() -> None:
    problems = [RepositoryProblem("SymlinkIgnored", "x", "x is a symbolic link", blocking=False)]

    entry = synced(commit=COMMIT, workflows=1, problems=problems)

    [condition] = entry["conditions"]
    assert condition["status"] == "True"
    assert "x is a symbolic link" in condition["message"]
