"""`orchestrator-operator render --repo PATH [--path FOLDER]`: what a git source of a checked-out
repository would become, without a cluster."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from orchestrator_operator.cli import main

REPOSITORY = Path(__file__).resolve().parents[1] / "fixtures" / "rhdh-serverless-workflows"


def _render(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(main, ["render", *args])
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return result.exit_code, documents, result.stderr


def test_a_repository_prints_every_workflow_and_the_config_map_of_its_large_file() -> None:
    status, documents, errors = _render("--repo", str(REPOSITORY), "-n", "team-a")

    assert status == 0, errors
    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for doc in documents)
    assert ("ConfigMap", "modify-vm-resources-source-specs") in kinds
    assert [name for kind, name in kinds if kind == "Workflow"] == sorted(
        [
            "azure",
            "universal-pr",
            "create-ocp-project",
            "ticketescalation",
            "failswitch",
            "greeting",
            "list-users",
            "modify-vm-resources",
            "patch-k8s-resource",
        ]
    )
    assert all("ownerReferences" not in doc["metadata"] for doc in documents)
    assert errors == ""


def test_one_folder_of_a_repository() -> None:
    status, documents, _ = _render("--repo", str(REPOSITORY), "--path", "greeting")

    assert status == 0
    assert [doc["metadata"]["name"] for doc in documents] == ["greeting"]


def test_problems_go_to_stderr_and_fail_the_command(tmp_path: Path) -> None:
    copy = tmp_path / "repository"
    shutil.copytree(REPOSITORY, copy)
    shutil.copytree(copy / "greeting", copy / "greeting-copy")
    (copy / "shared" / "schemas" / "workflow-result-schema.json").unlink()

    status, documents, errors = _render("--repo", str(copy))

    assert status == 1
    assert "greeting" not in [doc["metadata"]["name"] for doc in documents]
    assert "error: DuplicateWorkflowId: the folders greeting, greeting-copy" in errors
    assert "warning: MissingResourceFile: azure: the workflow refers to" in errors


def test_a_path_that_is_not_in_the_repository() -> None:
    status, documents, errors = _render("--repo", str(REPOSITORY), "--path", "nowhere")

    assert status == 1
    assert documents == []
    assert "PathNotFound" in errors


def test_files_and_a_repository_are_not_given_together() -> None:
    result = CliRunner().invoke(
        main, ["render", "--repo", str(REPOSITORY), "-f", str(REPOSITORY / "LICENSE")]
    )

    assert result.exit_code == 2
    assert "not both" in result.output
