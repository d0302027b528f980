"""What the OrchestratorInstance controller decides from what it observed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator_operator.adapters.dataindex import RUN_STATES, LastRun, RunFigures
from orchestrator_operator.models.installation import Installation, InstallationSpec
from orchestrator_operator.reconcile.installation import (
    InstallationObserved,
    InstallationPlan,
    plan_installation,
)
from orchestrator_operator.reconcile.installation_controller import status_patch
from orchestrator_operator.reconcile.live import LinkedWorkflow, Reachability, RunsReport
from orchestrator_operator.reconcile.workflow import DeploymentState
from orchestrator_operator.render.names import CHECKSUM_ANNOTATION
from orchestrator_operator.render.workflow import ConsumedSecret

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POSTGRES = {
    "postgresql": {
        "serviceRef": {"name": "pg"},
        "secretRef": {"name": "pg-credentials", "userKey": "user", "passwordKey": "password"},
    }
}
SECRET = ConsumedSecret("pg-credentials", frozenset({"user", "password"}), "7")


def make(generation: int = 1, **spec: Any) -> Installation:
    return Installation(
        name="orch",
        namespace="sonataflow",
        uid="uid-1",
        generation=generation,
        spec=InstallationSpec.model_validate(spec),
    )


def plan(installation: Installation, **observed: Any) -> InstallationPlan:
    return plan_installation(installation, InstallationObserved(**observed), NOW)


def condition(result: InstallationPlan, kind: str) -> dict[str, Any]:
    return next(c for c in result.status["conditions"] if c["type"] == kind)


def rolled_out(installation: Installation, **observed: Any) -> dict[str, DeploymentState]:
    """Deployments as they are once the rendered ones have rolled out."""
    first = plan(installation, **observed)
    states = {}
    for child in first.children:
        if child["kind"] != "Deployment":
            continue
        component = child["metadata"]["labels"]["app.kubernetes.io/component"]
        replicas = child["spec"]["replicas"]
        states[component] = DeploymentState(
            generation=1,
            observed_generation=1,
            desired=replicas,
            updated=replicas,
            ready=replicas,
            available=replicas,
            checksum=child["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION],
        )
    return states


REACHABLE = Reachability(
    True, "Reachable", "http://orch-data-index-service.sonataflow answers", NOW
)


def test_a_new_installation_waits_for_its_deployments_and_its_first_poll() -> None:
    result = plan(make())
    assert condition(result, "PersistenceReady")["reason"] == "Ephemeral"
    assert condition(result, "DataIndexReady")["reason"] == "NotRolledOut"
    assert condition(result, "DataIndexReachable")["status"] == "Unknown"
    assert condition(result, "Ready")["status"] == "False"
    assert result.status["endpoints"] == {
        "dataIndex": "http://orch-data-index-service.sonataflow",
        "jobsService": "http://orch-jobs-service.sonataflow",
    }
    assert result.status["backstageConfigMap"] == "orch-backstage"
    assert result.status["observedGeneration"] == 1


def test_ready_once_rolled_out_and_the_data_index_answers() -> None:
    installation = make()
    result = plan(installation, deployments=rolled_out(installation), reachability=REACHABLE)
    ready = condition(result, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "InstallationReady")
    assert condition(result, "DataIndexReady")["message"] == (
        "the Data Index: 1 of 1 replicas available"
    )
    assert condition(result, "JobsServiceReady")["status"] == "True"
    assert result.events[0].type == "Normal"


@pytest.mark.parametrize(
    ("secrets", "reason", "named"),
    [
        ({"pg-credentials": None}, "SecretNotFound", "'pg-credentials'"),
        (
            {"pg-credentials": ConsumedSecret("pg-credentials", frozenset({"user"}), "1")},
            "SecretKeyMissing",
            "has no key 'password'",
        ),
        (
            {"pg-credentials": ConsumedSecret("pg-credentials", frozenset(), "1")},
            "SecretKeyMissing",
            "has no key 'user', 'password'",
        ),
    ],
    ids=["missing-secret", "missing-password-key", "missing-both-keys"],
)
def test_persistence_names_what_is_missing_and_holds_the_deployment_back(
    secrets: dict[str, ConsumedSecret | None], reason: str, named: str
) -> None:
    result = plan(make(dataIndex={"persistence": POSTGRES}), secrets=secrets)
    persistence = condition(result, "PersistenceReady")
    assert (persistence["status"], persistence["reason"]) == ("False", reason)
    assert named in persistence["message"]
    assert "spec.dataIndex.persistence.postgresql.secretRef" in persistence["message"]
    assert condition(result, "DataIndexReady")["reason"] == "PersistenceNotReady"
    assert condition(result, "Ready")["reason"] == reason
    assert ("Deployment", "orch-data-index-service") in result.held
    kinds = {(c["kind"], c["metadata"]["name"]) for c in result.children}
    assert ("Deployment", "orch-data-index-service") not in kinds
    assert ("Service", "orch-data-index-service") in kinds
    assert ("Deployment", "orch-jobs-service") in kinds


def test_persistence_ready_names_the_secret_it_found() -> None:
    installation = make(dataIndex={"persistence": POSTGRES})
    result = plan(installation, secrets={"pg-credentials": SECRET})
    persistence = condition(result, "PersistenceReady")
    assert (persistence["status"], persistence["reason"]) == ("True", "CredentialsFound")
    assert "'pg-credentials'" in persistence["message"]
    assert not result.held


def test_a_changed_secret_rolls_the_service_out() -> None:
    installation = make(dataIndex={"persistence": POSTGRES})
    before = rolled_out(installation, secrets={"pg-credentials": SECRET})
    changed = ConsumedSecret("pg-credentials", SECRET.keys, "8")
    result = plan(
        installation,
        secrets={"pg-credentials": changed},
        deployments=before,
        reachability=REACHABLE,
    )
    data_index = condition(result, "DataIndexReady")
    assert (data_index["status"], data_index["reason"]) == ("True", "RollingOut")


def test_an_unreachable_data_index_is_reported_with_its_error_and_since_when() -> None:
    installation = make()
    down = Reachability(
        False, "DataIndexUnreachable", "http://x/graphql: ConnectError", NOW - timedelta(minutes=5)
    )
    result = plan(installation, deployments=rolled_out(installation), reachability=down)
    reachable = condition(result, "DataIndexReachable")
    assert (reachable["status"], reachable["reason"]) == ("False", "DataIndexUnreachable")
    assert "ConnectError" in reachable["message"]
    assert "since 2026-12-01T11:55:00Z" in reachable["message"]
    assert condition(result, "Ready")["reason"] == "DataIndexUnreachable"


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"dataIndex": {"enabled": False, "externalUrl": "http://di.shared"}}, "External"),
        ({"dataIndex": {"enabled": False}}, "Disabled"),
    ],
)
def test_a_data_index_that_is_not_deployed_here(spec: dict[str, Any], reason: str) -> None:
    installation = make(**spec)
    result = plan(installation, deployments=rolled_out(installation), reachability=REACHABLE)
    assert condition(result, "DataIndexReady")["reason"] == reason
    if reason == "Disabled":
        assert "dataIndex" not in result.status["endpoints"]
        assert all(c["type"] != "DataIndexReachable" for c in result.status["conditions"])
        assert "backstageConfigMap" not in result.status
    else:
        assert result.status["endpoints"]["dataIndex"] == "http://di.shared"
        assert condition(result, "DataIndexReachable")["status"] == "True"


def figures(**counts: int) -> RunFigures:
    return RunFigures(
        registered=True,
        counts={state: counts.get(state.lower(), 0) for state in RUN_STATES},
        last_run=LastRun("r1", "ACTIVE", NOW),
    )


def test_linked_workflows_and_run_totals_count_only_admitted_workflows() -> None:
    installation = make(workflowNamespaces=["team-a"])
    linked = [
        LinkedWorkflow("sonataflow", "one", "one", ready=True),
        LinkedWorkflow("team-a", "two", "two", ready=False),
        LinkedWorkflow("team-z", "three", "three", ready=True),
    ]
    runs = {
        ("sonataflow", "one"): RunsReport(figures(completed=4, error=1), NOW),
        ("team-a", "two"): RunsReport(figures(active=2), NOW - timedelta(hours=1), stale=True),
        ("team-z", "three"): RunsReport(figures(completed=100), NOW),
    }
    result = plan(installation, linked=linked, runs=runs)
    assert result.status["workflows"] == {
        "linked": 2,
        "ready": 1,
        "registered": 2,
        "summary": "1/2",
    }
    assert result.status["runs"] == {
        "pending": 0,
        "active": 2,
        "completed": 4,
        "aborted": 0,
        "suspended": 0,
        "error": 1,
        "stale": True,
    }
    assert result.status["runsChangedAt"] == "2026-12-01T12:00:00Z"


def test_a_replan_with_nothing_new_changes_nothing_and_posts_nothing() -> None:
    installation = make()
    deployments = rolled_out(installation)
    first = plan(installation, deployments=deployments, reachability=REACHABLE)
    later = plan_installation(
        installation,
        InstallationObserved(status=first.status, deployments=deployments, reachability=REACHABLE),
        NOW + timedelta(hours=1),
    )
    assert later.status == first.status
    assert later.events == []
    assert status_patch(first.status, later.status) == {}


def test_conditions_written_by_others_are_kept() -> None:
    theirs = {
        "type": "BackupTaken",
        "status": "True",
        "reason": "Synced",
        "message": "",
        "lastTransitionTime": "2026-11-30T00:00:00Z",
    }
    result = plan(make(), status={"conditions": [theirs]})
    assert theirs in result.status["conditions"]


def test_status_patch_removes_what_is_no_longer_meant_and_leaves_sources_alone() -> None:
    current = {
        "endpoints": {"dataIndex": "http://a", "jobsService": "http://b"},
        "backstageConfigMap": "orch-backstage",
        "sources": [{"name": "git"}],
    }
    desired = {"endpoints": {"dataIndex": "http://a"}}
    assert status_patch(current, desired) == {
        "endpoints": {"dataIndex": "http://a", "jobsService": None},
        "backstageConfigMap": None,
    }


@pytest.mark.parametrize(
    ("entry", "status", "reason"),
    [
        (None, "False", "NotSyncedYet"),
        (
            {
                "name": "main",
                "conditions": [
                    {
                        "type": "SourceSynced",
                        "status": "False",
                        "reason": "AuthenticationFailed",
                        "message": "the server refused the credentials",
                        "lastTransitionTime": "2026-12-01T00:00:00Z",
                    }
                ],
            },
            "False",
            "AuthenticationFailed",
        ),
        (
            {
                "name": "main",
                "commit": "abc1234",
                "conditions": [
                    {
                        "type": "SourceSynced",
                        "status": "True",
                        "reason": "Synced",
                        "message": "",
                        "lastTransitionTime": "2026-12-01T00:00:00Z",
                    }
                ],
            },
            "True",
            "Synced",
        ),
    ],
)
def test_git_sources_count_towards_ready(
    entry: dict[str, Any] | None, status: str, reason: str
) -> None:
    installation = make(sources=[{"name": "main", "url": "https://git.example/workflows.git"}])
    result = plan(
        installation,
        deployments=rolled_out(installation),
        reachability=REACHABLE,
        status={"sources": [entry]} if entry else {},
    )
    synced = condition(result, "SourcesSynced")
    assert (synced["status"], synced["reason"]) == (status, reason)
    ready = condition(result, "Ready")
    assert ready["status"] == status
    if status == "False":
        assert ready["reason"] == reason
        assert "'main'" in ready["message"]
