"""Run figures across an operator restart, and when no Data Index confirms them any more.

The operator keeps what it learned from the Data Index in memory, so after a start it knows
nothing, while the statuses still show the figures it wrote before. Those figures stand: the
first poll that finds the same ones writes nothing (not even a new time), and a Data Index that
cannot be asked marks them stale, on the Workflow and in the installation's totals alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator_operator.adapters.dataindex import DataIndexClient, RunFigures
from orchestrator_operator.adapters.serviceurls import ServiceUrls
from orchestrator_operator.models.installation import Installation, InstallationSpec
from orchestrator_operator.models.workflow import Workflow, WorkflowSpec
from orchestrator_operator.reconcile.installation import InstallationObserved, plan_installation
from orchestrator_operator.reconcile.installation_controller import (
    InstallationController,
    linked_workflow_of,
    status_patch,
)
from orchestrator_operator.reconcile.live import LinkedWorkflow, LiveStatus, RunsReport
from orchestrator_operator.reconcile.poller import PollTarget, RunsPoller
from orchestrator_operator.reconcile.workflow import InstallationLink, Observed, plan_workflow
from orchestrator_operator.render.properties import ServiceEndpoints
from standins.data_index import DataIndex, StandIn

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RESTART = T0 + timedelta(hours=3)
INSTALLATION_KEY = ("infra", "orch")
WORKFLOW_KEY = ("team-a", "greeting")
DATA_INDEX = "http://orch-data-index-service.infra"
DEFINITION = {
    "id": "greeting",
    "version": "1.0",
    "specVersion": "0.8",
    "start": "Say",
    "states": [{"name": "Say", "type": "inject", "data": {"greeting": "hi"}, "end": True}],
}


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn() as server:
        index = server.data_index("infra", "orch-data-index-service")
        index.register("greeting")
        # The Data Index answers with milliseconds; statuses show whole seconds.
        start = datetime(2026, 11, 30, 8, 0, 0, 250000, tzinfo=UTC)
        index.add_runs("greeting", "COMPLETED", 3, start=start)
        index.add_runs("greeting", "ERROR", 1, start=start + timedelta(hours=1))
        yield server


def data_index(standin: StandIn) -> DataIndex:
    return standin.data_index("infra", "orch-data-index-service")


class FakeApi:
    """The resolver reads installations from the watch in these tests: no request is made."""

    async def get(self, kind: Any, namespace: str, name: str) -> None:
        raise AssertionError("no GET expected")


def installation_body(status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "orch",
            "namespace": "infra",
            "uid": "u",
            "generation": 1,
            "resourceVersion": "10",
        },
        "spec": {"workflowNamespaces": ["team-a"], **spec},
        "status": status,
    }


def installation(**spec: Any) -> Installation:
    return Installation(
        name="orch",
        namespace="infra",
        uid="u",
        generation=1,
        spec=InstallationSpec.model_validate({"workflowNamespaces": ["team-a"], **spec}),
    )


def workflow() -> Workflow:
    return Workflow(
        name="greeting",
        namespace="team-a",
        uid="w",
        generation=1,
        spec=WorkflowSpec.model_validate(
            {"definition": DEFINITION, "installationRef": {"name": "orch", "namespace": "infra"}}
        ),
    )


def workflow_runs(link: InstallationLink | None, status: dict[str, Any]) -> dict[str, Any]:
    """The `runs` the Workflow controller writes, given what the link offers."""
    planned = plan_workflow(workflow(), Observed(status=status, installation=link), RESTART)
    runs: dict[str, Any] = planned.status["runs"]
    return runs


def workflow_body(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "greeting", "namespace": "team-a"},
        "spec": {
            "definition": DEFINITION,
            "installationRef": {"name": "orch", "namespace": "infra"},
        },
        "status": status,
    }


def poll(standin: StandIn, store: LiveStatus, target: PollTarget, now: datetime) -> list[Any]:
    """One round of the poller into `store`; the sets of workflows it said had changed."""
    changed: list[Any] = []

    async def go() -> None:
        poller = RunsPoller(
            client=DataIndexClient(timeout=5),
            probe=None,
            store=store,
            urls=ServiceUrls(template=standin.override_template),
            interval=30,
            targets=lambda key: target,
            workflows_changed=changed.append,
            installation_changed=lambda key: None,
            clock=lambda: now,
        )
        try:
            await poller.poll_once(INSTALLATION_KEY, target)
        finally:
            await poller.client.close()

    asyncio.run(go())
    return changed


def before_the_restart(standin: StandIn) -> tuple[dict[str, Any], dict[str, Any]]:
    """The statuses of the Workflow and of the installation as the first operator left them."""
    store = LiveStatus()
    linked = LinkedWorkflow("team-a", "greeting", "greeting", ready=True)
    poll(standin, store, PollTarget(DATA_INDEX, True, [linked]), T0)
    link = InstallationLink(endpoints=ServiceEndpoints(DATA_INDEX), runs=store.runs[WORKFLOW_KEY])
    planned = plan_workflow(workflow(), Observed(installation=link), T0)
    installation_status = plan_installation(
        installation(),
        InstallationObserved(
            linked=[linked], runs=store.runs, reachability=store.reachability[INSTALLATION_KEY]
        ),
        T0,
    ).status
    return planned.status, installation_status


def restarted(
    workflow_status: dict[str, Any], installation_status: dict[str, Any], **spec: Any
) -> InstallationController:
    """A new operator's installation controller: nothing in memory, the statuses as they are."""
    link = linked_workflow_of(workflow_body(workflow_status))
    assert link is not None
    ctl = InstallationController(
        api=FakeApi(),  # type: ignore[arg-type]
        children=lambda namespace, name: [],
        holders=lambda kind, namespace, name: None,
        linked_workflows=lambda namespace, name: (
            [link[1]] if (namespace, name) == INSTALLATION_KEY else []
        ),
    )
    ctl.installation_changed(installation_body(installation_status, **spec))
    ctl.workflow_changed(workflow_body(workflow_status))
    return ctl


def installation_after(
    ctl: InstallationController, status: dict[str, Any], **spec: Any
) -> dict[str, Any]:
    """The installation status planned from what the controller holds now."""
    return plan_installation(
        installation(**spec),
        InstallationObserved(
            status=status,
            linked=list(ctl.linked_workflows(*INSTALLATION_KEY)),
            runs=ctl.store.runs,
            reachability=ctl.store.reachability.get(INSTALLATION_KEY),
        ),
        RESTART,
    ).status


def runs_patch(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The part of the installation's status patch that is about runs."""
    patch = status_patch(current, desired)
    return {key: patch[key] for key in ("runs", "runsChangedAt") if key in patch}


def test_the_figures_read_back_from_a_status_equal_those_asked_again(standin: StandIn) -> None:
    workflow_status, _ = before_the_restart(standin)
    link = linked_workflow_of(workflow_body(workflow_status))
    assert link is not None
    reported = link[1].reported
    assert reported is not None
    fresh = LiveStatus()
    poll(standin, fresh, PollTarget(DATA_INDEX, True, [link[1]]), T0)
    assert reported == fresh.runs[WORKFLOW_KEY]


def test_a_restart_that_finds_the_same_figures_writes_nothing(standin: StandIn) -> None:
    workflow_status, installation_status = before_the_restart(standin)
    ctl = restarted(workflow_status, installation_status)

    # Before the first poll: the status stands, on both resources.
    link = asyncio.run(ctl.resolve(workflow()))
    assert workflow_runs(link, workflow_status) == workflow_status["runs"]
    assert runs_patch(installation_status, installation_after(ctl, installation_status)) == {}

    target = ctl.poll_target(INSTALLATION_KEY)
    assert target is not None
    assert poll(standin, ctl.store, target, RESTART) == []
    assert ctl.store.runs[WORKFLOW_KEY].changed_at == T0
    link = asyncio.run(ctl.resolve(workflow()))
    runs = workflow_runs(link, workflow_status)
    assert runs == workflow_status["runs"]
    assert runs["observedAt"] == "2026-12-01T12:00:00Z"
    assert runs_patch(installation_status, installation_after(ctl, installation_status)) == {}


def test_a_data_index_down_at_start_marks_the_figures_of_the_statuses_stale(
    standin: StandIn,
) -> None:
    workflow_status, installation_status = before_the_restart(standin)
    ctl = restarted(workflow_status, installation_status)
    data_index(standin).failing = 503

    target = ctl.poll_target(INSTALLATION_KEY)
    assert target is not None
    assert poll(standin, ctl.store, target, RESTART) == [{WORKFLOW_KEY}]
    assert ctl.store.reachability[INSTALLATION_KEY].reachable is False

    runs = workflow_runs(asyncio.run(ctl.resolve(workflow())), workflow_status)
    assert runs == {**workflow_status["runs"], "stale": True}
    assert runs["counts"]["completed"] == 3
    assert runs["observedAt"] == "2026-12-01T12:00:00Z"

    after = installation_after(ctl, installation_status)
    assert after["runs"] == {**installation_status["runs"], "stale": True}
    assert after["runsChangedAt"] == installation_status["runsChangedAt"]


def test_totals_the_status_shows_stand_when_no_workflow_figures_are_known() -> None:
    """A status whose Workflows show no figures: the totals stay, marked stale when the Data
    Index has failed since."""
    previous = {
        "runs": {
            "pending": 0,
            "active": 1,
            "completed": 7,
            "aborted": 0,
            "suspended": 0,
            "error": 2,
            "stale": False,
        },
        "runsChangedAt": "2026-11-30T10:00:00Z",
    }
    linked = [LinkedWorkflow("team-a", "greeting", "greeting")]
    kept = plan_installation(
        installation(), InstallationObserved(status=previous, linked=linked), RESTART
    ).status
    assert runs_patch(previous, kept) == {}

    ctl = restarted({}, previous)
    ctl.store.record_reachability(INSTALLATION_KEY, False, "DataIndexError", "HTTP 503", RESTART)
    down = installation_after(ctl, previous)
    assert down["runs"] == {**previous["runs"], "stale": True}
    assert down["runsChangedAt"] == previous["runsChangedAt"]

    unlinked = plan_installation(
        installation(), InstallationObserved(status=previous), RESTART
    ).status
    assert runs_patch(previous, unlinked) == {"runs": None, "runsChangedAt": None}


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"workflowNamespaces": ["team-b"]}, "InstallationNotAllowed"),
        ({"dataIndex": {"replicas": "many"}}, "InstallationNotReady"),
    ],
    ids=["namespace-no-longer-admitted", "invalid-spec"],
)
def test_a_refused_link_keeps_the_figures_marked_stale(
    standin: StandIn, spec: dict[str, Any], reason: str
) -> None:
    workflow_status, installation_status = before_the_restart(standin)
    ctl = restarted(workflow_status, installation_status)
    target = ctl.poll_target(INSTALLATION_KEY)
    assert target is not None
    poll(standin, ctl.store, target, RESTART)
    assert ctl.store.runs[WORKFLOW_KEY].stale is False

    ctl.installation_changed(installation_body(installation_status, **spec))
    link = asyncio.run(ctl.resolve(workflow()))
    assert link.problem is not None
    assert link.problem.reason == reason
    runs = workflow_runs(link, workflow_status)
    assert runs == {**workflow_status["runs"], "stale": True}
    assert ctl.store.runs[WORKFLOW_KEY] == RunsReport(
        ctl.store.runs[WORKFLOW_KEY].figures, T0, stale=True
    )


def test_a_refused_link_after_a_restart_marks_the_status_figures_stale(
    standin: StandIn,
) -> None:
    workflow_status, installation_status = before_the_restart(standin)
    ctl = restarted(workflow_status, installation_status, workflowNamespaces=["team-b"])
    link = asyncio.run(ctl.resolve(workflow()))
    assert link.problem is not None
    assert link.problem.reason == "InstallationNotAllowed"
    assert workflow_runs(link, workflow_status) == {**workflow_status["runs"], "stale": True}


def test_without_a_data_index_the_totals_are_stale() -> None:
    report = RunsReport(RunFigures.empty(), T0)
    linked = [LinkedWorkflow("team-a", "greeting", "greeting")]
    status = plan_installation(
        installation(dataIndex={"enabled": False}),
        InstallationObserved(linked=linked, runs={WORKFLOW_KEY: report}),
        RESTART,
    ).status
    assert status["runs"]["stale"] is True
    assert status["runsChangedAt"] == "2026-12-01T12:00:00Z"
