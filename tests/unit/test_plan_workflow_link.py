"""A Workflow linked to an installation: the managed properties, the installation's defaults,
the run figures and the runtime probe in its status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator_operator.adapters.dataindex import RUN_STATES, LastRun, RunFigures
from orchestrator_operator.adapters.runtime import ProbeOutcome
from orchestrator_operator.models.installation import WorkflowDefaults
from orchestrator_operator.models.workflow import Workflow, WorkflowSpec
from orchestrator_operator.reconcile.conditions import FALSE, Finding
from orchestrator_operator.reconcile.live import ProbeReport, RunsReport
from orchestrator_operator.reconcile.workflow import (
    DEPENDENCIES_RESOLVED,
    DeploymentState,
    InstallationLink,
    Observed,
    WorkflowPlan,
    plan_workflow,
)
from orchestrator_operator.render.names import CHECKSUM_ANNOTATION
from orchestrator_operator.render.properties import ServiceEndpoints

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DEFINITION = {
    "id": "hello",
    "version": "1.0",
    "specVersion": "0.8",
    "start": "Say",
    "states": [{"name": "Say", "type": "inject", "data": {"greeting": "hi"}, "end": True}],
}
ENDPOINTS = ServiceEndpoints(
    "http://orch-data-index-service.sonataflow", "http://orch-jobs-service.sonataflow"
)


def make(**spec: Any) -> Workflow:
    return Workflow(
        name="hello",
        namespace="team-a",
        uid="uid-1",
        generation=1,
        spec=WorkflowSpec.model_validate(
            {"definition": DEFINITION, "installationRef": {"name": "orch"}, **spec}
        ),
    )


def plan(workflow: Workflow, link: InstallationLink | None, **observed: Any) -> WorkflowPlan:
    return plan_workflow(workflow, Observed(installation=link, **observed), NOW)


def child(result: WorkflowPlan, kind: str, name: str) -> dict[str, Any]:
    assert result.children is not None
    return next(c for c in result.children if c["kind"] == kind and c["metadata"]["name"] == name)


def managed(result: WorkflowPlan) -> str:
    return str(
        child(result, "ConfigMap", "hello-managed-props")["data"]["application-dev.properties"]
    )


def checksum(result: WorkflowPlan) -> str:
    template = child(result, "Deployment", "hello")["spec"]["template"]
    return str(template["metadata"]["annotations"][CHECKSUM_ANNOTATION])


def condition(result: WorkflowPlan, kind: str) -> dict[str, Any]:
    return next(c for c in result.status["conditions"] if c["type"] == kind)


def available() -> DeploymentState:
    """The runtime's Deployment, rolled out with what the plan renders."""
    rendered = checksum(plan(make(), InstallationLink(endpoints=ENDPOINTS)))
    return DeploymentState(1, 1, 1, 1, 1, 1, checksum=rendered)


def test_a_linked_workflow_gets_the_data_index_and_jobs_service_properties() -> None:
    text = managed(plan(make(), InstallationLink(endpoints=ENDPOINTS)))
    lines = {line for line in text.splitlines() if line and not line.startswith("#")}
    data_index = "http://orch-data-index-service.sonataflow"
    jobs_service = "http://orch-jobs-service.sonataflow"
    outgoing = "mp.messaging.outgoing"
    about_the_data_index = ("data-index", "processinstances", "processdefinitions")
    assert {line for line in lines if any(word in line for word in about_the_data_index)} == {
        f"kogito.data-index.url={data_index}",
        "kogito.data-index.health-enabled=true",
        "kogito.events.processinstances.enabled=true",
        "kogito.events.processdefinitions.enabled=true",
        "kogito.events.processdefinitions.errors.propagate=true",
        f"{outgoing}.kogito-processinstances-events.connector=quarkus-http",
        f"{outgoing}.kogito-processinstances-events.url={data_index}/processes",
        f"{outgoing}.kogito-processinstances-events.method=POST",
        f"{outgoing}.kogito-processdefinitions-events.connector=quarkus-http",
        f"{outgoing}.kogito-processdefinitions-events.url={data_index}/definitions",
        f"{outgoing}.kogito-processdefinitions-events.method=POST",
    }
    assert {line for line in lines if "jobs-service" in line or "job-request" in line} == {
        f"kogito.jobs-service.url={jobs_service}",
        f"{outgoing}.kogito-job-service-job-request-events.connector=quarkus-http",
        f"{outgoing}.kogito-job-service-job-request-events.url={jobs_service}/v2/jobs/events",
        # The definition has no timer: its readiness does not wait on the Jobs Service.
        "kogito.jobs-service.health-enabled=false",
    }


def test_a_new_data_index_url_rolls_the_runtime_out() -> None:
    before = plan(make(), InstallationLink(endpoints=ENDPOINTS))
    moved = ServiceEndpoints("http://di.elsewhere", ENDPOINTS.jobs_service_url)
    after = plan(make(), InstallationLink(endpoints=moved))
    assert checksum(after) != checksum(before)
    assert checksum(plan(make(), InstallationLink(endpoints=ENDPOINTS))) == checksum(before)


@pytest.mark.parametrize(
    "reason", ["InstallationNotFound", "InstallationNotAllowed", "InstallationNotReady"]
)
def test_an_installation_that_cannot_serve_the_workflow_is_a_dependency_problem(
    reason: str,
) -> None:
    problem = Finding(DEPENDENCIES_RESOLVED, FALSE, reason, f"because {reason}")
    result = plan(make(), InstallationLink(problem=problem))
    resolved = condition(result, "DependenciesResolved")
    assert (resolved["status"], resolved["reason"]) == ("False", reason)
    assert result.children is None


def test_installation_defaults_fill_what_the_workflow_leaves_out() -> None:
    defaults = WorkflowDefaults.model_validate(
        {
            "image": "registry.example/devmode:custom",
            "properties": "quarkus.log.level=DEBUG\nshared.key=installation\n",
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
        }
    )
    link = InstallationLink(endpoints=ENDPOINTS, defaults=defaults)
    result = plan(make(properties="shared.key=workflow\n"), link)
    container = child(result, "Deployment", "hello")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/devmode:custom"
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}}
    user = child(result, "ConfigMap", "hello-props")["data"]["application.properties"]
    # The installation's lines first, the Workflow's after: a later line wins in a properties
    # file, so the Workflow's own value is the one the runtime reads.
    assert user.index("shared.key=installation") < user.index("shared.key=workflow")
    assert "quarkus.log.level=DEBUG\n" in user

    own = plan(make(image="registry.example/mine:1", resources={"requests": {"cpu": "100m"}}), link)
    container = child(own, "Deployment", "hello")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/mine:1"
    assert container["resources"] == {"requests": {"cpu": "100m"}}


def figures() -> RunFigures:
    counts = dict.fromkeys(RUN_STATES, 0) | {"COMPLETED": 4, "ERROR": 1}
    return RunFigures(
        registered=True,
        counts=counts,
        last_run=LastRun("run-9", "ERROR", NOW - timedelta(minutes=3), NOW - timedelta(minutes=2)),
    )


def test_run_figures_appear_in_the_status() -> None:
    report = RunsReport(figures(), NOW - timedelta(minutes=1))
    result = plan(make(), InstallationLink(endpoints=ENDPOINTS, runs=report))
    assert result.status["runs"] == {
        "registered": True,
        "counts": {
            "pending": 0,
            "active": 0,
            "completed": 4,
            "aborted": 0,
            "suspended": 0,
            "error": 1,
        },
        "lastRun": {
            "id": "run-9",
            "state": "ERROR",
            "start": "2026-12-01T11:57:00Z",
            "end": "2026-12-01T11:58:00Z",
        },
        "observedAt": "2026-12-01T11:59:00Z",
        "stale": False,
    }
    stale = plan(
        make(), InstallationLink(endpoints=ENDPOINTS, runs=RunsReport(figures(), NOW, True))
    )
    assert stale.status["runs"]["stale"] is True


def test_before_the_first_poll_the_figures_of_the_status_stay_and_unlinked_show_none() -> None:
    """Only until the installation's first poll after a start: from then on the link carries
    a report, which is the status figures themselves when nothing changed (see
    test_restart_figures.py), marked stale when the Data Index could not be asked."""
    previous = {"runs": {"registered": True, "counts": {"completed": 1}}}
    kept = plan(make(), InstallationLink(endpoints=ENDPOINTS), status=previous)
    assert kept.status["runs"] == previous["runs"]
    unlinked = Workflow(
        name="hello",
        namespace="team-a",
        uid="uid-1",
        generation=1,
        spec=WorkflowSpec.model_validate({"definition": DEFINITION}),
    )
    assert "runs" not in plan(unlinked, None, status=previous).status


def test_a_refused_link_shows_the_last_figures_stale_with_the_time_they_changed() -> None:
    refused = InstallationLink(
        problem=Finding(DEPENDENCIES_RESOLVED, FALSE, "InstallationNotAllowed", "not admitted"),
        runs=RunsReport(figures(), NOW - timedelta(days=2), stale=True),
    )
    runs = plan(make(), refused).status["runs"]
    assert runs["stale"] is True
    assert runs["observedAt"] == "2026-11-29T12:00:00Z"
    assert runs["counts"]["completed"] == 4
    assert runs["lastRun"]["id"] == "run-9"


def test_the_runtime_probe_decides_availability_and_is_reported_with_url_code_and_time() -> None:
    url = "http://hello.team-a/management/processes/hello"
    served = ProbeReport(ProbeOutcome(url, code=200), NOW - timedelta(minutes=5))
    ok = plan(make(), InstallationLink(endpoints=ENDPOINTS, probe=served), deployment=available())
    available_condition = condition(ok, "Available")
    assert available_condition["status"] == "True"
    assert (
        f"GET {url} answered HTTP 200 (since 2026-12-01T11:55:00Z)"
        in (available_condition["message"])
    )

    refused = ProbeReport(ProbeOutcome(url, code=404), NOW)
    bad = plan(make(), InstallationLink(endpoints=ENDPOINTS, probe=refused), deployment=available())
    unavailable = condition(bad, "Available")
    assert (unavailable["status"], unavailable["reason"]) == ("False", "ProcessNotServed")
    assert f"GET {url} answered HTTP 404 (since 2026-12-01T12:00:00Z)" in unavailable["message"]
    assert condition(bad, "Ready")["reason"] == "ProcessNotServed"

    failed = ProbeReport(ProbeOutcome(url, error="ConnectError: refused"), NOW)
    down = plan(make(), InstallationLink(endpoints=ENDPOINTS, probe=failed), deployment=available())
    assert f"GET {url} failed: ConnectError: refused" in condition(down, "Available")["message"]
