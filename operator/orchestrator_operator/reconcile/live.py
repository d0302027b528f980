"""What the operator last learned from the Data Index and the runtimes, kept between polls.

Each record remembers when its value last *changed*, not when it was last confirmed: a poll
that finds the same figures changes nothing here, so it writes nothing to the API server. The
time a user sees (`runs.observedAt`, the time in a probe's message) is therefore when the
figures became what they are; `stale` says when the latest poll could not confirm them.

After a start the store is empty, but the statuses are not: the figures a Workflow's status
shows are taken in (`seed`) as if the operator had found them itself at the time they say, so
that the first poll finding the same figures changes nothing, and a Data Index that cannot be
asked marks them stale like any others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from orchestrator_operator.adapters.dataindex import RUN_STATES, LastRun, RunFigures, parse_moment
from orchestrator_operator.adapters.runtime import ProbeOutcome
from orchestrator_operator.reconcile.conditions import timestamp

WorkflowKey = tuple[str, str]  # namespace, name
InstallationKey = tuple[str, str]  # namespace, name


@dataclass(frozen=True)
class RunsReport:
    figures: RunFigures
    changed_at: datetime
    stale: bool = False


@dataclass(frozen=True)
class LinkedWorkflow:
    """A Workflow whose spec.installationRef names an installation, as its watch shows it."""

    namespace: str
    name: str
    workflow_id: str
    ready: bool = False
    # The figures its status shows. Not part of the link: figures that change do not make
    # the installation count its workflows again.
    reported: RunsReport | None = field(default=None, compare=False)

    @property
    def key(self) -> WorkflowKey:
        return (self.namespace, self.name)

    @property
    def service_url(self) -> str:
        return f"http://{self.name}.{self.namespace}"


def runs_of_status(runs: Any) -> RunsReport | None:
    """The figures a Workflow's `status.runs` shows, or None when it shows none we can read."""
    if not isinstance(runs, Mapping):
        return None
    changed_at = parse_moment(runs.get("observedAt"))
    counts = runs.get("counts")
    if changed_at is None or not isinstance(counts, Mapping):
        return None
    last = runs.get("lastRun")
    last_run = None
    if isinstance(last, Mapping) and last.get("id") is not None:
        last_run = LastRun(
            id=str(last["id"]),
            state=str(last.get("state") or "UNKNOWN"),
            start=parse_moment(last.get("start")),
            end=parse_moment(last.get("end")),
        )
    try:
        by_state = {state: int(counts.get(state.lower()) or 0) for state in RUN_STATES}
    except (TypeError, ValueError):
        return None
    figures = RunFigures(
        registered=bool(runs.get("registered")), counts=by_state, last_run=last_run
    )
    return RunsReport(figures, changed_at, stale=bool(runs.get("stale")))


@dataclass(frozen=True)
class ProbeReport:
    outcome: ProbeOutcome
    since: datetime

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    def describe(self) -> str:
        return f"{self.outcome.describe()} (since {timestamp(self.since)})"


@dataclass(frozen=True)
class Reachability:
    reachable: bool
    reason: str
    message: str
    since: datetime


class LiveStatus:
    """Figures by workflow, probes by workflow, reachability by installation."""

    def __init__(self) -> None:
        self.runs: dict[WorkflowKey, RunsReport] = {}
        self.probes: dict[WorkflowKey, ProbeReport] = {}
        self.reachability: dict[InstallationKey, Reachability] = {}

    def record_runs(
        self, figures: Mapping[WorkflowKey, RunFigures], now: datetime
    ) -> set[WorkflowKey]:
        """Keep fresh figures; the workflows whose report changed (figures or staleness)."""
        changed: set[WorkflowKey] = set()
        for key, fresh in figures.items():
            before = self.runs.get(key)
            if before is None or before.figures != fresh:
                self.runs[key] = RunsReport(fresh, now)
            elif before.stale:
                self.runs[key] = replace(before, stale=False)
            else:
                continue
            changed.add(key)
        return changed

    def seed(self, workflows: Iterable[LinkedWorkflow]) -> None:
        """Take in the figures the statuses of `workflows` show, where none are known here."""
        for workflow in workflows:
            if workflow.reported is not None and workflow.key not in self.runs:
                self.runs[workflow.key] = workflow.reported

    def mark_stale(self, keys: Iterable[WorkflowKey]) -> set[WorkflowKey]:
        """Keep the last figures of `keys` but flag them stale; the workflows that changed."""
        changed: set[WorkflowKey] = set()
        for key in keys:
            before = self.runs.get(key)
            if before is not None and not before.stale:
                self.runs[key] = replace(before, stale=True)
                changed.add(key)
        return changed

    def record_probe(self, key: WorkflowKey, outcome: ProbeOutcome, now: datetime) -> bool:
        before = self.probes.get(key)
        if before is not None and before.outcome == outcome:
            return False
        self.probes[key] = ProbeReport(outcome, now)
        return True

    def record_reachability(
        self, key: InstallationKey, reachable: bool, reason: str, message: str, now: datetime
    ) -> bool:
        before = self.reachability.get(key)
        if (
            before is not None
            and before.reachable == reachable
            and before.reason == reason
            and before.message == message
        ):
            return False
        since = before.since if before is not None and before.reachable == reachable else now
        self.reachability[key] = Reachability(reachable, reason, message, since)
        return True

    def forget_workflow(self, key: WorkflowKey) -> None:
        self.runs.pop(key, None)
        self.probes.pop(key, None)

    def forget_installation(self, key: InstallationKey) -> None:
        self.reachability.pop(key, None)
