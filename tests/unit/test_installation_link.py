"""How the installation controller answers a linked Workflow, and when it counts it again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator_operator.adapters.dataindex import LastRun, RunFigures
from orchestrator_operator.adapters.runtime import ProbeOutcome
from orchestrator_operator.models.workflow import Workflow, WorkflowSpec
from orchestrator_operator.reconcile.installation_controller import (
    InstallationController,
    linked_workflow_of,
)
from orchestrator_operator.reconcile.live import (
    LinkedWorkflow,
    ProbeReport,
    RunsReport,
    runs_of_status,
)
from orchestrator_operator.reconcile.workflow import InstallationLink

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DEFINITION = {"id": "hello", "states": [{"name": "s", "type": "inject", "end": True}]}


class FakeApi:
    """Answers GETs of installations from a dict; the resolver needs nothing else."""

    def __init__(self, installations: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.installations = installations
        self.gets = 0

    async def get(self, kind: Any, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets += 1
        return self.installations.get((namespace, name))


def installation_body(
    namespace: str = "infra", status: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "OrchestratorInstance",
        "metadata": {
            "name": "orch",
            "namespace": namespace,
            "uid": "u",
            "generation": 1,
            "resourceVersion": "10",
        },
        "spec": spec,
        "status": status or {},
    }


def workflow(namespace: str = "team-a", ref_namespace: str | None = "infra") -> Workflow:
    ref: dict[str, Any] = {"name": "orch"}
    if ref_namespace:
        ref["namespace"] = ref_namespace
    return Workflow(
        name="hello",
        namespace=namespace,
        uid="w",
        generation=1,
        spec=WorkflowSpec.model_validate({"definition": DEFINITION, "installationRef": ref}),
    )


PUBLISHED = {
    "observedGeneration": 1,
    "endpoints": {"dataIndex": "http://orch-data-index-service.infra"},
}


def controller(api: FakeApi) -> InstallationController:
    return InstallationController(
        api=api,  # type: ignore[arg-type]
        children=lambda namespace, name: [],
        holders=lambda kind, namespace, name: None,
        linked_workflows=lambda namespace, name: [],
    )


def resolve(ctl: InstallationController, wf: Workflow) -> InstallationLink:
    link = asyncio.run(ctl.resolve(wf))
    assert link is not None
    return link


@pytest.mark.parametrize(
    ("installations", "reason", "says"),
    [
        ({}, "InstallationNotFound", "does not exist"),
        (
            {("infra", "orch"): installation_body(status=PUBLISHED)},
            "InstallationNotAllowed",
            "add it to the installation's spec.workflowNamespaces",
        ),
        (
            {("infra", "orch"): installation_body(workflowNamespaces=["team-a"])},
            "InstallationNotReady",
            "has not been reconciled yet",
        ),
    ],
    ids=["missing", "namespace-not-admitted", "not-reconciled"],
)
def test_a_link_that_cannot_be_served_says_why(
    installations: dict[tuple[str, str], dict[str, Any]], reason: str, says: str
) -> None:
    link = resolve(controller(FakeApi(installations)), workflow())
    assert link.problem is not None
    assert (link.problem.type, link.problem.status, link.problem.reason) == (
        "DependenciesResolved",
        "False",
        reason,
    )
    assert says in link.problem.message
    assert "OrchestratorInstance 'orch' in namespace 'infra'" in link.problem.message


def test_an_admitted_workflow_gets_endpoints_defaults_figures_and_probe() -> None:
    body = installation_body(
        status=PUBLISHED,
        workflowNamespaces=["*"],
        workflowDefaults={"image": "registry.example/devmode:1"},
    )
    api = FakeApi({})
    ctl = controller(api)
    ctl.installation_changed(body)
    runs = RunsReport(RunFigures.empty(), NOW)
    probe = ProbeReport(ProbeOutcome("http://hello.team-a/management/processes/hello", 200), NOW)
    ctl.store.runs[("team-a", "hello")] = runs
    ctl.store.probes[("team-a", "hello")] = probe

    link = resolve(ctl, workflow())
    assert link.problem is None
    assert link.endpoints is not None
    assert link.endpoints.data_index_url == "http://orch-data-index-service.infra"
    assert link.endpoints.jobs_service_url is None
    assert link.defaults is not None
    assert link.defaults.image == "registry.example/devmode:1"
    assert (link.runs, link.probe) == (runs, probe)
    assert api.gets == 0, "a watched installation is answered from the watch"


def status_runs(completed: int) -> dict[str, Any]:
    return {
        "registered": True,
        "counts": {"completed": completed, "error": 1},
        "lastRun": {"id": "r7", "state": "ERROR", "start": "2026-11-30T08:00:00Z"},
        "observedAt": "2026-12-01T11:00:00Z",
        "stale": False,
    }


def workflow_body(ready: str = "False", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "hello", "namespace": "team-a"},
        "spec": {"definition": DEFINITION, "installationRef": {"name": "orch"}, **spec},
        "status": {"conditions": [{"type": "Ready", "status": ready}], "runs": status_runs(3)},
    }


def test_linked_workflow_of_reads_the_installation_id_and_readiness() -> None:
    assert linked_workflow_of(workflow_body(ready="True")) == (
        ("team-a", "orch"),
        LinkedWorkflow("team-a", "hello", "hello", ready=True),
    )
    unlinked = workflow_body()
    unlinked["spec"].pop("installationRef")
    assert linked_workflow_of(unlinked) is None


def test_linked_workflow_of_reads_the_figures_its_status_shows() -> None:
    link = linked_workflow_of(workflow_body())
    assert link is not None
    assert link[1].reported == RunsReport(
        RunFigures(
            registered=True,
            counts={
                "PENDING": 0,
                "ACTIVE": 0,
                "COMPLETED": 3,
                "ABORTED": 0,
                "SUSPENDED": 0,
                "ERROR": 1,
            },
            last_run=LastRun("r7", "ERROR", datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),
        ),
        datetime(2026, 12, 1, 11, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "runs",
    [
        None,
        "three",
        {"counts": {"completed": 1}},  # no time
        {"observedAt": "yesterday", "counts": {}},
        {"observedAt": "2026-12-01T11:00:00Z", "counts": {"completed": "many"}},
        {"observedAt": "2026-12-01T11:00:00Z"},  # no counts
    ],
)
def test_figures_a_status_does_not_show_readably_are_not_taken_in(runs: Any) -> None:
    assert runs_of_status(runs) is None


def test_an_installation_counts_a_workflow_again_only_when_its_link_changes() -> None:
    ctl = controller(FakeApi({}))
    queued: list[Any] = []
    ctl.queue.add = queued.append  # type: ignore[method-assign]
    ctl.installation_changed(installation_body(namespace="team-a"))
    queued.clear()

    ctl.workflow_changed(workflow_body())
    assert queued == [("team-a", "orch")]
    changed_figures = workflow_body()
    changed_figures["status"]["runs"] = status_runs(4)
    ctl.workflow_changed(changed_figures)
    assert queued == [("team-a", "orch")], "run figures alone do not change the counts"
    ctl.workflow_changed(workflow_body(ready="True"))
    assert queued == [("team-a", "orch")] * 2
    ctl.workflow_changed(workflow_body(ready="True"), deleted=True)
    assert queued == [("team-a", "orch")] * 3
