"""Loading workflow folders from disk: which files count, where they may come from, and
what is never read."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from orchestrator_operator.definition import (
    INVALID_DEFINITION,
    INVALID_WORKFLOW_FOLDER,
    MISSING_RESOURCE_FILE,
    DefinitionError,
    load_definition_file,
    load_workflow_folder,
    validate_definition,
)
from orchestrator_operator.definition.folder import property_keys

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPOSITORY = FIXTURES / "rhdh-serverless-workflows"


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A copy of the real workflow repository, free to change."""
    copy = tmp_path / "repository"
    shutil.copytree(REPOSITORY, copy, symlinks=True)
    return copy


def _folder_problem(path: Path) -> str:
    with pytest.raises(DefinitionError) as raised:
        load_workflow_folder(path)
    assert raised.value.problem.reason == INVALID_WORKFLOW_FOLDER
    return raised.value.problem.message


def test_files_the_runtime_does_not_need_are_left_out(repository: Path) -> None:
    greeting = repository / "greeting"
    (greeting / "README.md").write_text("# Greeting\n")
    (greeting / "greeting.svg").write_text("<svg/>")
    (greeting / "pom.xml").write_text("<project/>")
    (greeting / "Dockerfile").write_text("FROM scratch\n")
    (greeting / "argfile.conf").write_text("x=y\n")
    (greeting / ".hidden.json").write_text("{}")
    for folder in (".git", "target", "node_modules", "manifests"):
        (greeting / folder).mkdir()
        (greeting / folder / "x.yaml").write_text("a: 1\n")
    (greeting / "specs").mkdir()
    (greeting / "specs" / "service.proto").write_text('syntax = "proto3";\n')

    workflow = load_workflow_folder(greeting)

    assert set(workflow.files) == {
        "schemas/greeting.sw.input-schema.json",
        "schemas/workflow-output-schema.json",
        "shared/schemas/workflow-result-schema.json",
        "specs/service.proto",
    }


def test_a_missing_shared_file_is_reported_and_nothing_is_invented(repository: Path) -> None:
    (repository / "shared" / "schemas" / "workflow-result-schema.json").unlink()

    workflow = load_workflow_folder(repository / "greeting")
    problems = validate_definition(workflow.definition, workflow.files)

    assert "shared/schemas/workflow-result-schema.json" not in workflow.files
    assert [(p.reason, p.file) for p in problems] == [
        (MISSING_RESOURCE_FILE, "schemas/workflow-output-schema.json")
    ]
    assert '"shared/schemas/workflow-result-schema.json"' in problems[0].message


def test_files_referred_to_from_the_repository_follow_their_own_refs(repository: Path) -> None:
    shared = repository / "shared" / "schemas"
    (shared / "message.json").write_text('{"type": "string"}')
    result = (shared / "workflow-result-schema.json").read_text()
    (shared / "workflow-result-schema.json").write_text(
        result.replace(
            '"description": "High-level summary', '"$ref": "message.json", "description": "x'
        )
    )

    workflow = load_workflow_folder(repository / "greeting")

    assert "shared/schemas/message.json" in workflow.files
    assert validate_definition(workflow.definition, workflow.files) == []


def test_nothing_outside_the_repository_is_read(repository: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text('{"password": "x"}')
    schema = repository / "greeting" / "schemas" / "greeting.sw.input-schema.json"
    schema.write_text('{"type": "object", "properties": {"a": {"$ref": "../../../secret.json"}}}')

    workflow = load_workflow_folder(repository / "greeting")
    problems = validate_definition(workflow.definition, workflow.files)

    assert all("secret" not in path for path in workflow.files)
    assert [p.reason for p in problems] == [MISSING_RESOURCE_FILE]
    assert "resolves outside the resources root" in problems[0].message


def test_a_reference_cannot_bring_in_a_secret_or_hidden_file(repository: Path) -> None:
    definition = repository / "greeting" / "greeting.sw.yaml"
    definition.write_text(
        definition.read_text().replace(
            "schemas/greeting.sw.input-schema.json", "escalation/secret.properties"
        )
    )
    (repository / ".git").mkdir()
    (repository / ".git" / "config.json").write_text("{}")
    output = repository / "greeting" / "schemas" / "workflow-output-schema.json"
    output.write_text(output.read_text().replace("../shared/schemas/", "../.git/config.json#"))

    workflow = load_workflow_folder(repository / "greeting")
    problems = validate_definition(workflow.definition, workflow.files)

    assert set(workflow.files) == {
        "schemas/greeting.sw.input-schema.json",
        "schemas/workflow-output-schema.json",
    }
    assert [p.reason for p in problems] == [MISSING_RESOURCE_FILE, MISSING_RESOURCE_FILE]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_symbolic_links_are_not_followed_even_inside_the_folder(
    repository: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.json").write_text('{"leak": true}')
    greeting = repository / "greeting"
    (greeting / "schemas" / "leak.json").symlink_to(outside / "leak.json")
    (greeting / "linked").symlink_to(outside, target_is_directory=True)
    (greeting / "schemas" / "inside.json").symlink_to(
        greeting / "schemas" / "greeting.sw.input-schema.json"
    )
    # A shared file that is a link out of the repository is not read either.
    shared = repository / "shared" / "schemas" / "workflow-result-schema.json"
    shared.unlink()
    shared.symlink_to(outside / "leak.json")

    workflow = load_workflow_folder(greeting)

    assert set(workflow.files) == {
        "schemas/greeting.sw.input-schema.json",
        "schemas/workflow-output-schema.json",
    }


def test_a_definition_or_properties_file_that_is_a_link_is_not_read(repository: Path) -> None:
    greeting = repository / "greeting"
    (greeting / "application.properties").unlink()
    (greeting / "application.properties").symlink_to(
        repository / "list-users" / "application.properties"
    )
    definition = greeting / "greeting.sw.yaml"
    definition.rename(repository / "greeting.sw.yaml")
    definition.symlink_to(repository / "greeting.sw.yaml")

    assert _folder_problem(greeting).startswith("the folder holds no definition")
    (greeting / "greeting.sw.yaml").unlink()
    shutil.copy(repository / "greeting.sw.yaml", greeting)
    assert load_workflow_folder(greeting).properties is None


def test_a_repository_folder_is_not_a_workflow_folder() -> None:
    message = _folder_problem(REPOSITORY)

    assert message.startswith(
        "the folder holds no definition (*.sw.yaml, *.sw.yml or *.sw.json) at its top level, "
        "but its subfolders azure/, bulk-import-git-repos/, create-ocp-project/"
    )
    assert "each of those is a workflow folder to give on its own" in message


def test_a_folder_without_any_definition(tmp_path: Path) -> None:
    assert _folder_problem(tmp_path) == (
        "the folder holds no definition (*.sw.yaml, *.sw.yml or *.sw.json) at its top level"
    )


def test_a_maven_layout_looks_only_in_its_resources(repository: Path) -> None:
    resources = repository / "bulk-import-git-repos" / "src" / "main" / "resources"
    (resources / "create-pr-universal.sw.yaml").rename(
        repository / "bulk-import-git-repos" / "x.sw.yaml"
    )

    assert _folder_problem(repository / "bulk-import-git-repos") == (
        "the folder holds no definition (*.sw.yaml, *.sw.yml or *.sw.json) in src/main/resources"
    )


def test_a_folder_with_two_definitions() -> None:
    message = _folder_problem(
        FIXTURES / "kogito-serverless-examples/serverless-workflow-subflows-event"
    )

    assert message == (
        "the folder holds 4 definitions at its top level (master.sw.json, setup.sw.json, "
        "workflowA.sw.json, workflowB.sw.json); a workflow folder holds exactly one"
    )


def test_a_definition_that_does_not_parse(repository: Path) -> None:
    (repository / "greeting" / "greeting.sw.yaml").write_text("id: greeting\nstates: [\n")

    with pytest.raises(DefinitionError) as raised:
        load_workflow_folder(repository / "greeting")

    assert raised.value.problem.reason == INVALID_DEFINITION
    assert raised.value.problem.message.startswith("greeting.sw.yaml: is not valid YAML")


def test_a_definition_too_large_for_a_config_map(repository: Path) -> None:
    definition = repository / "list-users" / "list-users.sw.yaml"
    definition.write_text(definition.read_text() + "#" * 1_100_000 + "\n")

    assert _folder_problem(repository / "list-users") == (
        "list-users.sw.yaml is 1,100,622 bytes, more than the 1,048,576 allowed"
    )


def test_a_lone_definition_file_has_no_resource_files() -> None:
    workflow = load_definition_file(REPOSITORY / "greeting" / "greeting.sw.yaml")
    problems = validate_definition(workflow.definition, workflow.files)

    assert (workflow.files, workflow.properties, workflow.secret_keys) == ({}, None, [])
    assert [p.reason for p in problems] == [MISSING_RESOURCE_FILE, MISSING_RESOURCE_FILE]


def test_a_path_that_is_not_a_folder() -> None:
    assert _folder_problem(REPOSITORY / "LICENSE").endswith("LICENSE is not a folder")


def test_secret_values_are_never_kept(repository: Path) -> None:
    (repository / "greeting" / "secret.properties").write_text(
        "# comment = not a key\n"
        "! another comment\n"
        "\n"
        "plain=hunter2\n"
        "  indented : hunter3\n"
        "spaced hunter4\n"
        "empty=\n"
        "continued = first \\\n"
        "    second.line = not a key\n"
        "escaped\\=key=hunter5\n"
        "unicode\\u00e9=hunter6\n"
        "windows=hunter7\r\n"
        "plain=again\n"
        "last-without-newline"
    )

    workflow = load_workflow_folder(repository / "greeting")

    assert workflow.secret_keys == [
        "plain",
        "indented",
        "spaced",
        "empty",
        "continued",
        "escaped=key",
        "unicodeé",
        "windows",
        "last-without-newline",
    ]


def test_property_keys_read_nothing_past_the_key_into_a_buffer() -> None:
    stream = io.BytesIO(b"token=s3cr3t\nother:more\n")
    taken: list[bytes] = []

    def read_byte() -> bytes:
        byte = stream.read(1)
        taken.append(byte)
        return byte

    assert property_keys(read_byte, 1000) == ["token", "other"]
    # Every byte passed through one at a time; none of a value was gathered anywhere.
    assert all(len(byte) <= 1 for byte in taken)


def test_property_keys_stop_at_the_limit() -> None:
    stream = io.BytesIO(b"a=1\nb=2\nc=3\n")

    assert property_keys(lambda: stream.read(1), 6) == ["a", "b"]
