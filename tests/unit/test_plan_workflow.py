"""What the Workflow controller decides, for real fixture workflows and for bad input."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.definition.folder import load_workflow_folder
from orchestrator_operator.models.workflow import Workflow, WorkflowSpec
from orchestrator_operator.reconcile.workflow import (
    DeploymentState,
    Observed,
    WorkflowPlan,
    plan_workflow,
)
from orchestrator_operator.render.folder import workflow_manifest
from orchestrator_operator.render.workflow import ConsumedSecret

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rhdh-serverless-workflows"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FOLDERS = [
    "greeting",
    "create-ocp-project",
    "escalation",
    "modify-vm-resources",
    "list-users",
    "azure",
    "patch-k8s-resource",
    "fail-switch",
    "bulk-import-git-repos",
]


def workflow_from(folder: str, generation: int = 1, **changes: Any) -> Workflow:
    manifest = workflow_manifest(load_workflow_folder(FIXTURES / folder), namespace="team-a")
    spec = {**manifest["spec"], **changes}
    return Workflow(
        name=manifest["metadata"]["name"],
        namespace="team-a",
        uid="uid-1",
        generation=generation,
        spec=WorkflowSpec.model_validate(spec),
    )


def secrets_for(workflow: Workflow) -> dict[str, ConsumedSecret | None]:
    return {
        ref.secret_name: ConsumedSecret(ref.secret_name, frozenset(ref.keys or ()), "1")
        for ref in workflow.spec.secrets
    }


def available(desired: int = 1, checksum: str | None = None) -> DeploymentState:
    return DeploymentState(
        generation=1,
        observed_generation=1,
        desired=desired,
        updated=desired,
        ready=desired,
        available=desired,
        checksum=checksum,
    )


def condition(plan: WorkflowPlan, kind: str) -> dict[str, Any]:
    return next(c for c in plan.status["conditions"] if c["type"] == kind)


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_fixture_workflow_is_valid_and_renders(folder: str) -> None:
    workflow = workflow_from(folder)
    plan = plan_workflow(workflow, Observed(secrets=secrets_for(workflow)), NOW)
    assert condition(plan, "DefinitionValid")["status"] == "True", condition(
        plan, "DefinitionValid"
    )["message"]
    assert condition(plan, "DependenciesResolved")["status"] == "True"
    assert plan.children is not None
    kinds = sorted(child["kind"] for child in plan.children)
    assert kinds.count("Deployment") == 1
    assert kinds.count("Service") == 1
    assert condition(plan, "Ready") == {
        "type": "Ready",
        "status": "False",
        "observedGeneration": 1,
        "lastTransitionTime": "2026-12-01T12:00:00Z",
        "reason": "NotRolledOut",
        "message": "the runtime's Deployment does not exist yet",
    }


def test_a_rolled_out_runtime_is_ready() -> None:
    workflow = workflow_from("greeting")
    first = plan_workflow(workflow, Observed(), NOW)
    assert first.children is not None
    checksum = first.children[-1]["spec"]["template"]["metadata"]["annotations"][
        "orchestrator.dev/checksum"
    ]
    plan = plan_workflow(workflow, Observed(deployment=available(checksum=checksum)), NOW)
    assert condition(plan, "Ready")["status"] == "True"
    assert condition(plan, "Ready")["reason"] == "RuntimeAvailable"
    assert plan.status["replicas"] == {"desired": 1, "updated": 1, "available": 1}
    assert plan.status["url"] == "http://greeting.team-a"
    assert [e.reason for e in plan.events] == ["RuntimeAvailable"]


def test_a_deployment_with_an_older_checksum_is_rolling_out() -> None:
    plan = plan_workflow(
        workflow_from("greeting"), Observed(deployment=available(checksum="old")), NOW
    )
    assert condition(plan, "Available")["reason"] == "RollingOut"
    assert condition(plan, "Ready")["status"] == "False"
    assert plan.events == []


def test_pod_problems_are_named_in_the_available_condition() -> None:
    deployment = DeploymentState(1, 1, 1, 1, 0, 0, None)
    plan = plan_workflow(
        workflow_from("greeting"),
        Observed(
            deployment=deployment,
            pod_problems=["pod greeting-abc: ImagePullBackOff: Back-off pulling image"],
        ),
        NOW,
    )
    available_condition = condition(plan, "Available")
    assert available_condition["status"] == "False"
    assert available_condition["reason"] == "RuntimeUnavailable"
    assert "ImagePullBackOff" in available_condition["message"]
    assert "0 of 1 replicas available" in available_condition["message"]
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "RuntimeUnavailable")]


def test_last_transition_time_is_kept_while_the_status_does_not_change() -> None:
    workflow = workflow_from("greeting")
    first = plan_workflow(workflow, Observed(), NOW)
    later = plan_workflow(workflow, Observed(status=first.status), NOW + timedelta(minutes=5))
    assert later.status == first.status
    assert later.events == []


def break_definition(edit: Any) -> Workflow:
    workflow = workflow_from("greeting")
    definition = copy.deepcopy(workflow.spec.definition)
    edit(definition)
    return workflow.model_copy(
        update={"spec": workflow.spec.model_copy(update={"definition": definition})}
    )


def test_an_invalid_definition_rolls_nothing_out_and_keeps_the_old_runtime() -> None:
    workflow = break_definition(lambda d: d["states"][1].update(transition="Nowhere"))
    plan = plan_workflow(
        workflow, Observed(deployment=available(checksum="previous"), status={}), NOW
    )
    assert plan.children is None
    valid = condition(plan, "DefinitionValid")
    assert (valid["status"], valid["reason"]) == ("False", "InvalidStateGraph")
    assert "Nowhere" in valid["message"]
    assert condition(plan, "Available")["status"] == "True"
    ready = condition(plan, "Ready")
    assert ready["reason"] == "InvalidStateGraph"
    assert ready["message"].endswith("the runtime of the last valid version keeps running")
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "InvalidStateGraph")]


def test_a_missing_secret_key_is_named() -> None:
    workflow = workflow_from("create-ocp-project")
    (reference,) = workflow.spec.secrets
    keys = frozenset((reference.keys or [])[1:])
    plan = plan_workflow(
        workflow,
        Observed(secrets={reference.secret_name: ConsumedSecret(reference.secret_name, keys, "1")}),
        NOW,
    )
    assert plan.children is None
    resolved = condition(plan, "DependenciesResolved")
    assert resolved["reason"] == "SecretKeyMissing"
    assert repr((reference.keys or [])[0]) in resolved["message"]
    assert reference.secret_name in resolved["message"]


def test_a_missing_config_map_of_files_is_named() -> None:
    workflow = workflow_from(
        "greeting", configMapFiles=[{"configMap": "vendor-specs", "path": "specs"}]
    )
    plan = plan_workflow(workflow, Observed(config_maps={"vendor-specs": None}), NOW)
    assert plan.children is None
    assert condition(plan, "DefinitionValid")["reason"] == "ConfigMapNotFound"
    assert "vendor-specs" in condition(plan, "DefinitionValid")["message"]


def test_files_from_config_maps_count_for_validation() -> None:
    folder = load_workflow_folder(FIXTURES / "greeting")
    schemas = {
        path.removeprefix("schemas/"): content.decode()
        for path, content in folder.files.items()
        if path.startswith("schemas/")
    }
    workflow = workflow_from("greeting")
    without_schemas = [f for f in workflow.spec.files if not f.path.startswith("schemas/")]
    workflow = workflow.model_copy(
        update={
            "spec": workflow.spec.model_copy(
                update={
                    "files": without_schemas,
                    "config_map_files": WorkflowSpec.model_validate(
                        {
                            "definition": {"id": "x", "states": [{}]},
                            "configMapFiles": [{"configMap": "schemas", "path": "schemas"}],
                        }
                    ).config_map_files,
                }
            )
        }
    )
    plan = plan_workflow(workflow, Observed(config_maps={"schemas": schemas}), NOW)
    assert condition(plan, "DefinitionValid")["status"] == "True"
    missing = plan_workflow(workflow, Observed(config_maps={"schemas": {}}), NOW)
    assert condition(missing, "DefinitionValid")["reason"] == "MissingResourceFile"


def test_a_managed_property_set_by_the_user_gives_one_warning_per_generation() -> None:
    workflow = workflow_from("greeting", properties="quarkus.http.port=1234\n")
    plan = plan_workflow(workflow, Observed(), NOW)
    warnings = [e for e in plan.events if e.reason == "ManagedPropertyOverridden"]
    assert len(warnings) == 1
    assert "quarkus.http.port" in warnings[0].message
    again = plan_workflow(workflow, Observed(status=plan.status), NOW)
    assert [e for e in again.events if e.reason == "ManagedPropertyOverridden"] == []


def test_gitops_does_not_ask_for_files_baked_into_the_image() -> None:
    workflow = workflow_from("greeting", profile="gitops", image="registry.example/greeting:1")
    stripped = workflow.model_copy(update={"spec": workflow.spec.model_copy(update={"files": []})})
    plan = plan_workflow(stripped, Observed(), NOW)
    assert condition(plan, "DefinitionValid")["status"] == "True"
    assert plan.children is not None
    assert {c["metadata"]["name"] for c in plan.children if c["kind"] == "ConfigMap"} == {
        "greeting-props",
        "greeting-managed-props",
    }


@pytest.mark.parametrize(
    ("changes", "config_maps", "path", "other"),
    [
        (
            {
                "files": [{"path": "specs/x.yaml", "content": "a"}],
                "configMapFiles": [{"configMap": "ovl", "path": "specs"}],
            },
            {"ovl": {"x.yaml": "b"}},
            "specs/x.yaml",
            "ConfigMap 'ovl'",
        ),
        (
            {"files": [{"path": "application.properties", "content": "a=b"}]},
            {},
            "application.properties",
            "spec.properties",
        ),
        (
            {"files": [{"path": "greeting.sw.json", "content": "{}"}]},
            {},
            "greeting.sw.json",
            "the definition",
        ),
    ],
)
def test_two_files_at_one_path_are_refused_before_the_api_server_sees_the_pod(
    changes: dict[str, Any], config_maps: dict[str, Any], path: str, other: str
) -> None:
    base = workflow_from("greeting")
    files = [f.model_dump(by_alias=True) for f in base.spec.files]
    workflow = workflow_from("greeting", **{**changes, "files": files + changes["files"]})
    plan = plan_workflow(workflow, Observed(config_maps=config_maps), NOW)
    assert plan.children is None
    valid = condition(plan, "DefinitionValid")
    assert valid["reason"] == "DuplicateFilePath"
    assert repr(path) in valid["message"]
    assert other in valid["message"]
