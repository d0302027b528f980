"""Real workflows, written by others and run in production, load and validate cleanly."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.definition import (
    UNRESOLVED_REFERENCE,
    load_definition_file,
    load_workflow_folder,
    read_info,
    resources,
    validate_definition,
)
from orchestrator_operator.definition.parse import load_document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPOSITORY = FIXTURES / "rhdh-serverless-workflows"
KOGITO = FIXTURES / "kogito-serverless-examples"

# Folder -> (workflow id, resource files the folder yields).
WORKFLOW_FOLDERS = {
    "greeting": (
        "greeting",
        {
            "schemas/greeting.sw.input-schema.json",
            "schemas/workflow-output-schema.json",
            "shared/schemas/workflow-result-schema.json",
        },
    ),
    "create-ocp-project": (
        "create-ocp-project",
        {
            "schemas/create-ocp-project__main-schema.json",
            "schemas/workflow-output-schema.json",
            "shared/schemas/workflow-result-schema.json",
            "specs/jira-openapi.yaml",
            "specs/ocp-project-openapi.yaml",
        },
    ),
    "escalation": (
        "ticketEscalation",
        {
            "schemas/ticket-escalation-schema.json",
            "schemas/ticket-escalation_sub_schema.json",
            "specs/kube.yaml",
            "subflows/jiraSwf.sw.yaml",
            "subflows/schemas/ticketing-service-schema.json",
            "subflows/schemas/ticketing-service_sub_schema.json",
            "subflows/specs/jira.yaml",
        },
    ),
    "modify-vm-resources": (
        "modify-vm-resources",
        {
            "schemas/modify-vm-resources__main-schema.json",
            "schemas/workflow-output-schema.json",
            "shared/schemas/workflow-result-schema.json",
            "specs/jira-openapi.json",
            "specs/kubevirt-openapi.yaml",
        },
    ),
    "list-users": (
        "list-users",
        {
            "schemas/list-users.json",
            "schemas/workflow-output-schema.json",
            "shared/schemas/workflow-result-schema.json",
        },
    ),
    "azure": (
        "azure",
        {
            "schemas/azure.json",
            "schemas/workflow-output-schema.json",
            "shared/schemas/workflow-result-schema.json",
            "specs/azure.yaml",
        },
    ),
    "patch-k8s-resource": (
        "patch-k8s-resource",
        {"schemas/patch-k8s-resource.json", "specs/patch-k8s-resource.yaml"},
    ),
    "fail-switch": (
        "failSwitch",
        {
            "schemas/fail-switch.sw.input-schema.json",
            "schemas/workflow-output-schema.json",
            "specs/httpbin.yaml",
        },
    ),
    "bulk-import-git-repos": (
        "universal-pr",
        {
            "schemas/create-pr-universal-input-schema.json",
            "specs/github.yaml",
            "specs/gitlab.yaml",
        },
    ),
}


@pytest.mark.parametrize("folder", sorted(WORKFLOW_FOLDERS))
def test_real_workflow_folder_loads_and_validates(folder: str) -> None:
    workflow = load_workflow_folder(REPOSITORY / folder)
    workflow_id, files = WORKFLOW_FOLDERS[folder]

    assert validate_definition(workflow.definition, workflow.files) == []
    assert read_info(workflow.definition).id == workflow_id
    assert set(workflow.files) == files


def test_the_shared_schema_comes_from_the_repository_under_the_path_the_runtime_resolves() -> None:
    workflow = load_workflow_folder(REPOSITORY / "greeting")

    shared = REPOSITORY / "shared" / "schemas" / "workflow-result-schema.json"
    assert workflow.files["shared/schemas/workflow-result-schema.json"] == shared.read_bytes()


def test_maven_layout_reads_its_resources_root() -> None:
    workflow = load_workflow_folder(REPOSITORY / "bulk-import-git-repos")
    resources = REPOSITORY / "bulk-import-git-repos" / "src" / "main" / "resources"

    assert workflow.resources_root == resources
    assert workflow.definition_path == resources / "create-pr-universal.sw.yaml"
    assert workflow.properties == (resources / "application.properties").read_text()
    assert workflow.secret_keys == ["ghToken"]


def test_properties_verbatim_and_secret_keys_only() -> None:
    workflow = load_workflow_folder(REPOSITORY / "escalation")
    folder = REPOSITORY / "escalation"

    assert workflow.properties == (folder / "application.properties").read_text()
    assert workflow.secret_keys == ["NOTIFICATIONS_BEARER_TOKEN"]
    assert workflow.definition_text == (folder / "ticketEscalation.sw.yaml").read_text()
    assert "application.properties" not in workflow.files
    assert "secret.properties" not in workflow.files


def test_a_folder_without_properties_has_none() -> None:
    workflow = load_workflow_folder(REPOSITORY / "fail-switch")

    assert workflow.secret_keys == []
    assert workflow.properties is not None
    assert "quarkus" in workflow.properties


def test_validating_the_workflow_with_the_330_kb_spec_parses_each_file_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Parsing the large spec is most of the work; each function that names it must not parse it
    # again. The time it takes is measured in bench/validation.py.
    workflow = load_workflow_folder(REPOSITORY / "modify-vm-resources")
    assert len(workflow.files["specs/kubevirt-openapi.yaml"]) > 300_000
    parsed: Counter[str] = Counter()

    def counted(content: bytes | str, filename: str, *, max_bytes: int) -> Any:
        parsed[filename] += 1
        return load_document(content, filename, max_bytes=max_bytes)

    monkeypatch.setattr(resources, "load_document", counted)
    problems = validate_definition(workflow.definition, workflow.files)

    assert problems == []
    assert parsed["specs/kubevirt-openapi.yaml"] == 1
    assert set(parsed.values()) == {1}


KOGITO_DEFINITIONS = sorted(KOGITO.glob("*/*.sw.json"))


@pytest.mark.parametrize("path", KOGITO_DEFINITIONS, ids=lambda path: path.name)
def test_kogito_example_validates_as_a_lone_definition(path: Path) -> None:
    workflow = load_definition_file(path)

    problems = validate_definition(workflow.definition, workflow.files)

    # A lone definition has no resource files, so the one example that calls sub-flows kept
    # beside it cannot resolve them; every other example needs no file at all.
    if path.name == "master.sw.json":
        assert [(p.reason, p.path) for p in problems] == [
            (UNRESOLVED_REFERENCE, "/states/0/actions/0/subFlowRef"),
            (UNRESOLVED_REFERENCE, "/states/1/onEvents/0/actions/0/subFlowRef"),
            (UNRESOLVED_REFERENCE, "/states/1/onEvents/1/actions/0/subFlowRef"),
        ]
        assert 'sub-flow "setup"' in problems[0].message
        assert 'sub-flow "workflowB"' in problems[2].message
    else:
        assert problems == []


def test_kogito_sub_flows_resolve_when_given_as_resource_files() -> None:
    folder = KOGITO / "serverless-workflow-subflows-event"
    master = load_definition_file(folder / "master.sw.json")
    files = {
        path.name: path.read_bytes()
        for path in folder.glob("*.sw.json")
        if path.name != "master.sw.json"
    }

    assert validate_definition(master.definition, files) == []


def test_kogito_definitions_without_version_or_spec_version_read_as_none() -> None:
    foreach = read_info(
        load_definition_file(
            KOGITO / "serverless-workflow-foreach-quarkus" / "foreach.sw.json"
        ).definition
    )
    error = read_info(
        load_definition_file(
            KOGITO / "serverless-workflow-error-quarkus" / "error.sw.json"
        ).definition
    )

    assert (foreach.id, foreach.version, foreach.spec_version) == ("foreach", None, "0.8")
    assert (error.expression_lang, error.spec_version) == ("jsonpath", None)
