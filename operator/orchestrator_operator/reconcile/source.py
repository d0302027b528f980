"""What to do about one git source: which objects to apply and delete, and the status to show.

Pure: the source controller fetches, discovers and lists; this module decides. Nothing is
deleted unless the commit was fetched and discovered in full (a search for workflow folders
that met its limits deletes nothing at all), and a Workflow whose folder has a problem (it no
longer parses, its id clashes with another folder's) is left as it is, so that a bad commit
never takes a running workflow away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from orchestrator_operator.reconcile.children import manifest_hash
from orchestrator_operator.reconcile.conditions import (
    FALSE,
    TRUE,
    Finding,
    merge_conditions,
    timestamp,
)
from orchestrator_operator.render.mirror import (
    INSTALLATION_NAMESPACE_LABEL,
    SOURCE_LABEL,
    SOURCE_PATH_ANNOTATION,
    SOURCE_WORKFLOW_LABEL,
    MirroredWorkflow,
    MirrorTarget,
)
from orchestrator_operator.render.names import INSTALLATION_LABEL
from orchestrator_operator.render.repository import DISCOVERY_INCOMPLETE, RepositoryProblem

SOURCE_SYNCED: Final = "SourceSynced"
SYNCED: Final = "Synced"
WORKFLOW_CONFLICT: Final = "WorkflowConflict"
APPLY_FAILED: Final = "ApplyFailed"
PATH_NOT_FOUND: Final = "PathNotFound"
CREDENTIALS_NOT_FOUND: Final = "CredentialsNotFound"

# Reasons that leave the mirror as it was, in the order they are worth reading.
_MAX_PROBLEMS_SHOWN: Final = 10


@dataclass(frozen=True)
class Desired:
    """One object to hold in the cluster, with the hash of its content (commit left out)."""

    kind: str
    name: str
    manifest: dict[str, Any]
    applied_hash: str
    workflow: str
    folder: str


@dataclass(frozen=True)
class SyncPlan:
    # ConfigMaps before the Workflows that mount them.
    apply: list[Desired]
    delete_workflows: list[str]
    delete_config_maps: list[str]
    problems: list[RepositoryProblem]
    workflows: int


@dataclass(frozen=True)
class SyncOutcome:
    """How a sync ended: with a commit mirrored (perhaps with problems), or with a failure."""

    commit: str | None = None
    failure: Finding | None = None
    problems: Sequence[RepositoryProblem] = ()
    workflows: int | None = None
    applied: int = 0
    deleted: int = 0

    @property
    def wrote(self) -> bool:
        return bool(self.applied or self.deleted)


@dataclass(frozen=True)
class StatusUpdate:
    entry: dict[str, Any]
    # An Event for the installation's owner, when the source's state changed in a way that
    # matters: (type, reason, message).
    event: tuple[str, str, str] | None = None
    changed: bool = False


def is_ours(labels: Mapping[str, str], target: MirrorTarget) -> bool:
    return (
        labels.get(INSTALLATION_LABEL) == target.installation
        and labels.get(INSTALLATION_NAMESPACE_LABEL) == target.installation_namespace
        and labels.get(SOURCE_LABEL) == target.source
    )


def desired_objects(mirrored: MirroredWorkflow) -> list[Desired]:
    def desired(kind: str, manifest: dict[str, Any]) -> Desired:
        return Desired(
            kind,
            manifest["metadata"]["name"],
            manifest,
            manifest_hash(manifest),
            mirrored.name,
            mirrored.folder,
        )

    return [
        *(desired("ConfigMap", cm) for cm in mirrored.config_maps),
        desired("Workflow", mirrored.workflow),
    ]


def plan_sync(
    mirrored: Sequence[MirroredWorkflow],
    problems: Sequence[RepositoryProblem],
    existing_workflows: Iterable[Mapping[str, Any]],
    existing_config_maps: Iterable[Mapping[str, Any]],
    target: MirrorTarget,
) -> SyncPlan:
    """Objects to apply and delete so that the namespace holds what the commit describes.

    `existing_workflows` are all Workflows of the target namespace, so that a name already
    taken by a Workflow that is not this source's is seen and left alone;
    `existing_config_maps` are this source's ConfigMaps.
    """
    workflows_by_name = {w["metadata"]["name"]: w for w in existing_workflows}
    problems = list(problems)
    kept_names = {p.name for p in problems if p.blocking and p.name}
    kept_folders = {p.folder for p in problems if p.blocking}

    apply: list[Desired] = []
    desired_names: set[str] = set()
    for item in mirrored:
        current = workflows_by_name.get(item.name)
        if current is not None and not is_ours(_labels(current), target):
            problems.append(_conflict(item, current, target))
            kept_names.add(item.name)
            continue
        desired_names.add(item.name)
        apply.extend(desired_objects(item))

    ours = {
        name: body for name, body in workflows_by_name.items() if is_ours(_labels(body), target)
    }
    incomplete = any(p.reason == DISCOVERY_INCOMPLETE for p in problems)
    kept_names |= {
        name
        for name, body in ours.items()
        if incomplete or _annotations(body).get(SOURCE_PATH_ANNOTATION) in kept_folders
    }
    delete_workflows = sorted(set(ours) - desired_names - kept_names)

    desired_config_maps = {d.name for d in apply if d.kind == "ConfigMap"}
    delete_config_maps = sorted(
        cm["metadata"]["name"]
        for cm in existing_config_maps
        if is_ours(_labels(cm), target)
        and cm["metadata"]["name"] not in desired_config_maps
        and _labels(cm).get(SOURCE_WORKFLOW_LABEL) not in kept_names
    )
    return SyncPlan(
        apply=sorted(apply, key=lambda d: (d.kind != "ConfigMap", d.name)),
        delete_workflows=delete_workflows,
        delete_config_maps=delete_config_maps,
        problems=problems,
        workflows=len(desired_names | (kept_names & set(ours))),
    )


def _conflict(
    item: MirroredWorkflow, current: Mapping[str, Any], target: MirrorTarget
) -> RepositoryProblem:
    labels = _labels(current)
    owner = labels.get(SOURCE_LABEL)
    holder = (
        f"the source {owner!r} of installation {labels.get(INSTALLATION_LABEL)!r}"
        if owner
        else "someone else (it was not mirrored from a source)"
    )
    return RepositoryProblem(
        WORKFLOW_CONFLICT,
        item.folder,
        f"{item.folder or '.'}: the Workflow {item.name!r} in namespace {target.namespace!r}"
        f" belongs to {holder}; it is left as it is",
        name=item.name,
    )


def _labels(body: Mapping[str, Any]) -> Mapping[str, str]:
    labels: Mapping[str, str] = body.get("metadata", {}).get("labels") or {}
    return labels


def _annotations(body: Mapping[str, Any]) -> Mapping[str, str]:
    annotations: Mapping[str, str] = body.get("metadata", {}).get("annotations") or {}
    return annotations


# -- status ------------------------------------------------------------------------------------


def source_status(
    name: str,
    previous: Mapping[str, Any] | None,
    outcome: SyncOutcome,
    generation: int,
    now: datetime,
) -> StatusUpdate:
    """The source's entry of the installation's status.sources after a sync.

    `lastSyncTime` moves only when the sync wrote something or the entry changed otherwise
    (another commit, another number of workflows, another condition), so that an unchanged
    poll writes nothing at all. A failed sync keeps the commit and the count of the last
    successful one.
    """
    previous = previous or {}
    finding = outcome.failure or _mirrored_finding(outcome)
    conditions = merge_conditions(previous.get("conditions", []), [finding], generation, now)
    entry: dict[str, Any] = {"name": name}
    commit = outcome.commit if outcome.failure is None else previous.get("commit")
    workflows = outcome.workflows if outcome.failure is None else previous.get("workflows")
    if commit:
        entry["commit"] = commit
    if previous.get("lastSyncTime"):
        entry["lastSyncTime"] = previous["lastSyncTime"]
    entry["workflows"] = workflows or 0
    entry["conditions"] = conditions

    changed = _differs(previous, entry)
    if outcome.failure is None and (changed or outcome.wrote):
        entry["lastSyncTime"] = timestamp(now)
    return StatusUpdate(
        entry, _event(name, previous, entry, finding, outcome), changed or outcome.wrote
    )


def _mirrored_finding(outcome: SyncOutcome) -> Finding:
    blocking = [p for p in outcome.problems if p.blocking]
    warnings = [p for p in outcome.problems if not p.blocking]
    commit = (outcome.commit or "")[:12]
    summary = f"{outcome.workflows or 0} workflows mirrored from commit {commit}"
    shown = [p.message for p in [*blocking, *warnings][:_MAX_PROBLEMS_SHOWN]]
    more = len(outcome.problems) - len(shown)
    details = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
    if blocking:
        reason = blocking[0].reason
        return Finding(
            SOURCE_SYNCED,
            FALSE,
            reason,
            f"{summary}; {len({p.folder for p in blocking})} folders are not: {details}",
        )
    message = f"{summary}; warnings: {details}" if warnings else summary
    return Finding(SOURCE_SYNCED, TRUE, SYNCED, message)


def _differs(previous: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    keys = ("name", "commit", "workflows", "conditions")
    return any(previous.get(key) != entry.get(key) for key in keys)


def _event(
    name: str,
    previous: Mapping[str, Any],
    entry: Mapping[str, Any],
    finding: Finding,
    outcome: SyncOutcome,
) -> tuple[str, str, str] | None:
    before: Mapping[str, Any] = next(iter(previous.get("conditions") or []), {})
    reason_changed = before.get("reason") != finding.reason
    commit_changed = outcome.failure is None and previous.get("commit") != entry.get("commit")
    if not (reason_changed or commit_changed or outcome.wrote):
        return None
    kind = "Normal" if finding.status == TRUE else "Warning"
    return kind, finding.reason, f"source {name}: {finding.message}"
