"""Which Workflows a repository holds, read over the real workflow repository in the fixtures."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.definition import MISSING_RESOURCE_FILE
from orchestrator_operator.models.workflow import WorkflowSpec
from orchestrator_operator.render.mirror import (
    INLINE_FILE_LIMIT,
    SOURCE_LABEL,
    SOURCE_PATH_ANNOTATION,
    WORKFLOW_BUDGET,
    MirroredWorkflow,
    MirrorTarget,
    render_discovery,
    render_mirror,
)
from orchestrator_operator.render.repository import (
    DISCOVERY_INCOMPLETE,
    DUPLICATE_WORKFLOW_ID,
    INVALID_WORKFLOW,
    MAX_DEPTH,
    MAX_FOLDERS,
    SYMLINK_IGNORED,
    DiscoveredWorkflow,
    DiscoveryError,
    candidate_digests,
    discover,
    find_candidates,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPOSITORY = FIXTURES / "rhdh-serverless-workflows"
SHARED_RESULT = "shared/schemas/workflow-result-schema.json"
TARGET = MirrorTarget("orchestrator", "team-a", "uid-1", "main", "team-a")

# folder -> (Workflow name, some resource files it must carry)
EXPECTED = {
    "azure": ("azure", {"schemas/azure.json", "specs/azure.yaml", SHARED_RESULT}),
    "bulk-import-git-repos": (
        "universal-pr",
        {"schemas/create-pr-universal-input-schema.json", "specs/github.yaml"},
    ),
    "create-ocp-project": (
        "create-ocp-project",
        {"specs/jira-openapi.yaml", "specs/ocp-project-openapi.yaml", SHARED_RESULT},
    ),
    "escalation": (
        "ticketescalation",
        {"subflows/jiraSwf.sw.yaml", "subflows/specs/jira.yaml", "specs/kube.yaml"},
    ),
    "fail-switch": ("failswitch", {"schemas/fail-switch.sw.input-schema.json"}),
    "greeting": ("greeting", {"schemas/greeting.sw.input-schema.json", SHARED_RESULT}),
    "list-users": ("list-users", {"schemas/list-users.json", SHARED_RESULT}),
    "modify-vm-resources": (
        "modify-vm-resources",
        {"specs/kubevirt-openapi.yaml", "specs/jira-openapi.json", SHARED_RESULT},
    ),
    "patch-k8s-resource": ("patch-k8s-resource", {"specs/patch-k8s-resource.yaml"}),
}


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A copy of the real workflow repository, free to change."""
    copy = tmp_path / "repository"
    shutil.copytree(REPOSITORY, copy, symlinks=True)
    return copy


def by_folder(repository: Path, path: str = "") -> dict[str, DiscoveredWorkflow]:
    return {workflow.folder: workflow for workflow in discover(repository, path).workflows}


# Paths this process opens or lists while a test records them. An audit hook sees every open
# and listing that Python makes, and cannot be taken off again, so it records only on demand.
_RECORDINGS: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _RECORDINGS and event in ("open", "os.listdir", "os.scandir") and args:
        path = args[0]
        if isinstance(path, (str, bytes, os.PathLike)):
            _RECORDINGS[-1].append(os.path.abspath(os.fsdecode(path)))


sys.addaudithook(_audit)


@contextlib.contextmanager
def recording() -> Iterator[list[str]]:
    """Every path opened or listed inside the block."""
    paths: list[str] = []
    _RECORDINGS.append(paths)
    try:
        yield paths
    finally:
        _RECORDINGS.remove(paths)


def copy_as(source: Path, target: Path, workflow_id: str) -> None:
    """A copy of a workflow folder, or of a definition, under another id."""
    if source.is_dir():
        shutil.copytree(source, target)
        [definition] = target.glob("*.sw.yaml")
    else:
        definition = Path(shutil.copy(source, target))
    text = definition.read_text()
    old = next(line for line in text.splitlines() if line.startswith("id:"))
    definition.write_text(text.replace(old, f"id: {workflow_id}", 1))


def test_every_workflow_folder_is_found_under_its_lower_cased_id() -> None:
    discovery = discover(REPOSITORY)

    found = {w.folder: (w.name, set(w.files)) for w in discovery.workflows}
    assert set(found) == set(EXPECTED)
    for folder, (name, files) in EXPECTED.items():
        assert found[folder][0] == name, folder
        assert files <= found[folder][1], folder
    assert discovery.problems == ()


def test_the_id_not_the_folder_names_the_workflow() -> None:
    escalation = by_folder(REPOSITORY)["escalation"]

    assert escalation.workflow_id == "ticketEscalation"
    assert escalation.name == "ticketescalation"


def test_a_maven_folder_takes_its_resources_root_and_its_properties_there() -> None:
    bulk = by_folder(REPOSITORY)["bulk-import-git-repos"]

    # The folder holds a second, tiny application.properties beside src/: not the one used.
    inner = REPOSITORY / "bulk-import-git-repos/src/main/resources/application.properties"
    assert bulk.properties == inner.read_text()
    assert bulk.secret_keys == ("ghToken",)
    assert not any(path.startswith("src/") for path in bulk.files)


def test_secret_properties_give_keys_and_never_values() -> None:
    bulk = by_folder(REPOSITORY)["bulk-import-git-repos"]
    rendered = render_mirror(bulk, TARGET)

    assert isinstance(rendered, MirroredWorkflow)
    assert rendered.workflow["spec"]["secrets"] == [
        {"secretName": "universal-pr-secrets", "keys": ["ghToken"]}
    ]
    # secret.properties holds a placeholder value; no part of it may reach a manifest.
    assert "ghp_ABC123" not in json.dumps(rendered.workflow)


def test_a_shared_schema_reached_through_dotdot_is_included_under_the_resolved_path() -> None:
    greeting = by_folder(REPOSITORY)["greeting"]

    shared = REPOSITORY / SHARED_RESULT
    assert greeting.files[SHARED_RESULT] == shared.read_bytes()


def test_a_missing_shared_file_is_reported_and_the_workflow_still_mirrored(
    repository: Path,
) -> None:
    (repository / SHARED_RESULT).unlink()

    discovery = discover(repository)

    assert "greeting" in {w.folder for w in discovery.workflows}
    missing = [p for p in discovery.problems if p.folder == "greeting"]
    assert [(p.reason, p.blocking) for p in missing] == [(MISSING_RESOURCE_FILE, False)]
    assert SHARED_RESULT in missing[0].message


def test_a_flat_folder_gives_one_workflow_per_definition_with_the_files_it_refers_to(
    tmp_path: Path,
) -> None:
    flat = tmp_path / "repo" / "workflows"
    for folder in ("greeting", "list-users"):
        shutil.copytree(REPOSITORY / folder, flat, dirs_exist_ok=True)
    shutil.copytree(REPOSITORY / "shared", tmp_path / "repo" / "shared")

    discovery = discover(tmp_path / "repo")

    found = {w.folder: w for w in discovery.workflows}
    assert set(found) == {"workflows/greeting.sw.yaml", "workflows/list-users.sw.yaml"}
    assert set(found["workflows/greeting.sw.yaml"].files) == {
        "schemas/greeting.sw.input-schema.json",
        "schemas/workflow-output-schema.json",
        SHARED_RESULT,
    }
    assert (
        "schemas/greeting.sw.input-schema.json" not in found["workflows/list-users.sw.yaml"].files
    )
    assert discovery.problems == ()


def test_two_folders_with_one_id_are_reported_and_neither_is_mirrored(repository: Path) -> None:
    shutil.copytree(repository / "greeting", repository / "greeting-copy")

    discovery = discover(repository)

    assert "greeting" not in {w.name for w in discovery.workflows}
    duplicates = [p for p in discovery.problems if p.reason == DUPLICATE_WORKFLOW_ID]
    assert {p.folder for p in duplicates} == {"greeting", "greeting-copy"}
    assert all("greeting, greeting-copy" in p.message for p in duplicates)
    assert discovery.kept_names == {"greeting"}


def test_ids_that_differ_only_in_case_clash_too(repository: Path) -> None:
    shutil.copytree(repository / "greeting", repository / "shouting")
    definition = repository / "shouting" / "greeting.sw.yaml"
    definition.write_text(definition.read_text().replace("id: greeting", "id: Greeting", 1))

    problems = discover(repository).problems

    assert {(p.reason, p.folder) for p in problems} == {
        (DUPLICATE_WORKFLOW_ID, "greeting"),
        (DUPLICATE_WORKFLOW_ID, "shouting"),
    }


@pytest.mark.parametrize(
    ("workflow_id", "why"),
    [
        ("greeting_v2", "holds '_'"),
        ("2greeting", "starts with a digit"),
        ("g" * 50, "is longer than 49 characters"),
        ("greeting-", "ends with '-'"),
    ],
)
def test_an_id_that_cannot_name_a_workflow_is_reported(
    repository: Path, workflow_id: str, why: str
) -> None:
    definition = repository / "greeting" / "greeting.sw.yaml"
    definition.write_text(definition.read_text().replace("id: greeting", f"id: {workflow_id}", 1))

    discovery = discover(repository)

    assert "greeting" not in {w.folder for w in discovery.workflows}, why
    [problem] = [p for p in discovery.problems if p.folder == "greeting"]
    assert problem.reason == INVALID_WORKFLOW
    assert workflow_id in problem.message


def test_a_definition_that_does_not_parse_keeps_its_folder(repository: Path) -> None:
    (repository / "greeting" / "greeting.sw.yaml").write_text("id: [unclosed\n")

    discovery = discover(repository)

    [problem] = discovery.problems
    assert (problem.reason, problem.folder, problem.blocking) == (
        INVALID_WORKFLOW,
        "greeting",
        True,
    )
    assert discovery.kept_folders == {"greeting"}
    assert len(discovery.workflows) == len(EXPECTED) - 1


def test_a_symlink_out_of_the_repository_is_never_read(repository: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"password": "hunter2"}')
    schemas = repository / "greeting" / "schemas"
    (schemas / "greeting.sw.input-schema.json").unlink()
    os.symlink(outside / "secret.json", schemas / "greeting.sw.input-schema.json")
    os.symlink(outside, repository / "linked-folder")

    discovery = discover(repository)

    greeting = {w.folder: w for w in discovery.workflows}["greeting"]
    assert not any(b"hunter2" in content for content in greeting.files.values())
    links = {p.folder for p in discovery.problems if p.reason == SYMLINK_IGNORED}
    assert links == {"greeting/schemas/greeting.sw.input-schema.json", "linked-folder"}
    assert any(
        p.reason == MISSING_RESOURCE_FILE and p.folder == "greeting" for p in discovery.problems
    )


def test_a_repository_that_is_one_workflow_folder_reads_nothing_beside_it(tmp_path: Path) -> None:
    repository = tmp_path / "checkout"
    shutil.copytree(REPOSITORY / "greeting", repository)
    # Beside the checkout, where a loader looking up "../shared" would go.
    shutil.copytree(REPOSITORY / "shared", tmp_path / "shared")

    with recording() as opened:
        discovery = discover(repository)

    [greeting] = discovery.workflows
    assert greeting.folder == ""
    assert SHARED_RESULT not in greeting.files
    assert [p.reason for p in discovery.problems] == [MISSING_RESOURCE_FILE]
    outside = [
        path
        for path in opened
        if Path(path).is_relative_to(tmp_path) and not Path(path).is_relative_to(repository)
    ]
    assert outside == []
    assert str(repository / "greeting.sw.yaml") in opened


def test_a_symlink_inside_the_repository_is_not_followed_either(repository: Path) -> None:
    schemas = repository / "greeting" / "schemas"
    (schemas / "greeting.sw.input-schema.json").unlink()
    # Both point at files of the repository: still links, not files.
    os.symlink(
        "../../list-users/schemas/list-users.json", schemas / "greeting.sw.input-schema.json"
    )
    shared = repository / "shared"
    shared.rename(repository / "common")
    os.symlink("common", shared)

    discovery = discover(repository)

    greeting = by_folder(repository)["greeting"]
    assert "schemas/greeting.sw.input-schema.json" not in greeting.files
    assert SHARED_RESULT not in greeting.files
    links = {p.folder for p in discovery.problems if p.reason == SYMLINK_IGNORED}
    assert links == {"greeting/schemas/greeting.sw.input-schema.json", "shared"}


# -- workflow folders inside workflow folders ---------------------------------------------------


def test_a_definition_at_the_root_leaves_every_workflow_folder_a_workflow(
    repository: Path,
) -> None:
    copy_as(REPOSITORY / "greeting" / "greeting.sw.yaml", repository / "stray.sw.yaml", "stray")

    discovery = discover(repository)

    found = {w.folder: w for w in discovery.workflows}
    assert set(found) == set(EXPECTED) | {""}
    assert found[""].name == "stray"
    for folder, (name, files) in EXPECTED.items():
        assert found[folder].name == name, folder
        assert files <= set(found[folder].files), folder
    # The stray definition takes what is not another workflow's: the shared schemas.
    assert set(found[""].files) == {
        path.relative_to(repository).as_posix() for path in (repository / "shared").rglob("*.json")
    }
    assert not any(p.blocking for p in discovery.problems)


def test_a_workflow_folder_inside_another_is_a_workflow_and_none_of_its_files(
    repository: Path,
) -> None:
    copy_as(repository / "greeting", repository / "escalation" / "hello", "hello")
    copy_as(repository / "list-users", repository / "escalation" / "tools" / "users", "users")
    (repository / "escalation" / "tools" / "notes.json").write_text("{}")
    copy_as(repository / "azure", repository / "fail-switch" / "azure-copy", "azure-copy")

    found = by_folder(repository)

    escalation = found["escalation"]
    assert "subflows/jiraSwf.sw.yaml" in escalation.files
    assert "tools/notes.json" in escalation.files
    assert not any(p.startswith(("hello/", "tools/users/")) for p in escalation.files)
    assert found["escalation/hello"].name == "hello"
    assert "schemas/greeting.sw.input-schema.json" in found["escalation/hello"].files
    assert found["escalation/tools/users"].name == "users"
    assert found["fail-switch/azure-copy"].name == "azure-copy"
    assert set(found) == set(EXPECTED) | {
        "escalation/hello",
        "escalation/tools/users",
        "fail-switch/azure-copy",
    }


def test_a_change_inside_a_nested_workflow_leaves_the_outer_one_unread(repository: Path) -> None:
    copy_as(repository / "greeting", repository / "escalation" / "hello", "hello")
    before = candidate_digests(repository, find_candidates(repository))

    schema = repository / "escalation/hello/schemas/greeting.sw.input-schema.json"
    schema.write_text(schema.read_text().replace("language", "language ", 1))
    after = candidate_digests(repository, find_candidates(repository))

    changed = {c.folder for c in before if before[c] != after[c]}
    assert changed == {"escalation/hello"}


def test_sub_flows_schemas_and_specs_are_the_workflows_own_whatever_they_hold(
    repository: Path,
) -> None:
    copy_as(repository / "greeting", repository / "greeting" / "specs" / "inner", "inner")

    found = by_folder(repository)

    assert "inner" not in {w.name for w in found.values()}
    assert "specs/inner/greeting.sw.yaml" in found["greeting"].files
    assert "specs/inner/schemas/greeting.sw.input-schema.json" in found["greeting"].files
    assert "subflows/jiraSwf.sw.yaml" in found["escalation"].files


# -- the limits of the search -----------------------------------------------------------------


def test_a_tree_deeper_than_the_search_is_reported_and_blocks(repository: Path) -> None:
    deep = repository.joinpath(*(f"level{n}" for n in range(MAX_DEPTH + 1)))
    copy_as(repository / "greeting", deep / "hello", "hello")

    discovery = discover(repository)

    [limit] = [p for p in discovery.problems if p.reason == DISCOVERY_INCOMPLETE]
    assert limit.blocking
    assert limit.folder == deep.parent.relative_to(repository).as_posix()
    assert f"{MAX_DEPTH} folders deep" in limit.message
    assert limit.folder in limit.message
    assert "hello" not in {w.name for w in discovery.workflows}
    assert set(EXPECTED) <= {w.folder for w in discovery.workflows}


def test_a_tree_of_more_folders_than_the_search_visits_is_reported(tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    for number in range(MAX_FOLDERS + 5):
        (repository / "many" / f"f{number:05}").mkdir(parents=True)
    copy_as(REPOSITORY / "greeting", repository / "zz-greeting", "greeting")

    discovery = discover(repository)

    [limit] = discovery.problems
    assert (limit.reason, limit.blocking) == (DISCOVERY_INCOMPLETE, True)
    assert f"{MAX_FOLDERS} folders" in limit.message
    assert limit.folder == f"many/f{MAX_FOLDERS - 2:05}"
    assert limit.folder in limit.message
    assert discovery.workflows == ()


def test_the_path_of_a_source_limits_discovery(repository: Path) -> None:
    assert set(by_folder(repository, "greeting")) == {"greeting"}


@pytest.mark.parametrize("path", ["nope", "../etc", "greeting/greeting.sw.yaml"])
def test_a_path_that_is_not_a_folder_of_the_repository_is_an_error(
    repository: Path, path: str
) -> None:
    with pytest.raises(DiscoveryError):
        discover(repository, path)


def test_a_path_through_a_symlink_is_an_error(repository: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path, repository / "elsewhere")

    with pytest.raises(DiscoveryError, match="symbolic link"):
        discover(repository, "elsewhere")


# -- what the workflows become ----------------------------------------------------------------


def mirrored_fixtures(target: MirrorTarget = TARGET) -> dict[str, MirroredWorkflow]:
    mirrored, problems = render_discovery(discover(REPOSITORY), target)
    assert problems == []
    return {m.folder: m for m in mirrored}


def test_every_mirrored_workflow_is_a_valid_workflow_spec() -> None:
    for folder, mirrored in mirrored_fixtures().items():
        WorkflowSpec.model_validate(mirrored.workflow["spec"])
        metadata = mirrored.workflow["metadata"]
        assert metadata["annotations"][SOURCE_PATH_ANNOTATION] == folder
        assert metadata["labels"][SOURCE_LABEL] == "main"
        assert mirrored.workflow["spec"]["installationRef"] == {"name": "orchestrator"}


def test_a_large_openapi_file_goes_to_a_config_map_and_the_workflow_stays_small() -> None:
    modify = mirrored_fixtures()["modify-vm-resources"]

    [config_map] = modify.config_maps
    assert config_map["metadata"]["name"] == "modify-vm-resources-source-specs"
    assert list(config_map["data"]) == ["kubevirt-openapi.yaml"]
    assert modify.workflow["spec"]["configMapFiles"] == [
        {"configMap": "modify-vm-resources-source-specs", "path": "specs"}
    ]
    inline = {f["path"] for f in modify.workflow["spec"]["files"]}
    assert "specs/kubevirt-openapi.yaml" not in inline
    assert "specs/jira-openapi.json" in inline
    assert len(json.dumps(modify.workflow)) < WORKFLOW_BUDGET


def test_no_inline_file_passes_the_inline_limit() -> None:
    for mirrored in mirrored_fixtures().values():
        for file in mirrored.workflow["spec"].get("files", []):
            assert len(file["content"].encode()) <= INLINE_FILE_LIMIT, file["path"]


def test_workflows_in_the_installations_namespace_are_owned_by_it() -> None:
    greeting = mirrored_fixtures()["greeting"].workflow["metadata"]

    assert greeting["ownerReferences"] == [
        {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "OrchestratorInstance",
            "name": "orchestrator",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_workflows_in_another_namespace_carry_labels_and_a_full_installation_ref() -> None:
    target = MirrorTarget("orchestrator", "team-a", "uid-1", "main", "team-b")

    mirrored = mirrored_fixtures(target)

    for item in mirrored.values():
        for manifest in (item.workflow, *item.config_maps):
            assert "ownerReferences" not in manifest["metadata"]
            assert manifest["metadata"]["namespace"] == "team-b"
        assert item.workflow["spec"]["installationRef"] == {
            "name": "orchestrator",
            "namespace": "team-a",
        }


def test_the_rendered_workflow_holds_no_commit() -> None:
    # A new commit that leaves a folder alone must render the same bytes.
    first = mirrored_fixtures()["greeting"].workflow
    assert "orchestrator.dev/source-commit" not in first["metadata"].get("annotations", {})
