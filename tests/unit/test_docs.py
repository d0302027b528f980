"""The docs say what the code does: the reference is generated, every reason is explained, and
the kind walk-through uses files, names and versions that exist."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator_operator.definition import validate_definition
from orchestrator_operator.models.installation import InstallationSpec
from orchestrator_operator.models.reference import reference_markdown
from orchestrator_operator.models.workflow import WorkflowSpec

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
APP_VERSION = yaml.safe_load((ROOT / "helm" / "orchestrator-operator" / "Chart.yaml").read_text())[
    "appVersion"
]

# Modules whose CamelCase string constants are condition types or reasons users see.
REASON_MODULES = [
    "orchestrator_operator.reconcile.apply",
    "orchestrator_operator.reconcile.workflow",
    "orchestrator_operator.reconcile.workflow_controller",
    "orchestrator_operator.reconcile.installation",
    "orchestrator_operator.reconcile.installation_controller",
    "orchestrator_operator.reconcile.poller",
    "orchestrator_operator.reconcile.source",
    "orchestrator_operator.adapters.git",
    "orchestrator_operator.render.repository",
    "orchestrator_operator.render.discovered",
    "orchestrator_operator.definition.problems",
]
# Reasons the Data Index client raises as plain strings.
DATA_INDEX_REASONS = {"DataIndexUnreachable", "DataIndexTimeout", "DataIndexError", "QueryRejected"}


def reasons_in_code() -> set[str]:
    found: set[str] = set()
    for name in REASON_MODULES:
        module = importlib.import_module(name)
        source = Path(str(module.__file__)).read_text()
        for constant, value in vars(module).items():
            defined_here = re.search(rf"^{constant}(: Final)? = ", source, re.M)
            camel = isinstance(value, str) and re.fullmatch(r"(?:[A-Z][a-z]+)+", value)
            if constant.isupper() and camel and defined_here:
                found.add(value)
    return found | DATA_INDEX_REASONS


def test_the_reference_is_generated_from_the_current_models() -> None:
    assert (DOCS / "reference.md").read_text() == reference_markdown(), (
        "docs/reference.md is stale: run hack/generate.py"
    )


def test_operations_explains_every_condition_and_reason() -> None:
    text = (DOCS / "operations.md").read_text()
    missing = sorted(reason for reason in reasons_in_code() if f"`{reason}`" not in text)
    assert missing == []


def test_troubleshooting_covers_the_failures_met_most() -> None:
    text = (DOCS / "troubleshooting.md").read_text()
    for failure in (
        "InvalidDefinition",
        "SecretKeyMissing",
        "ImagePullBackOff",
        "ConfigMapNotFound",
        "FileTooLarge",
        "DataIndexUnreachable",
        "ApplyFailed",
        "is invalid",
    ):
        assert failure in text, failure


def test_links_between_documents_lead_to_files_that_exist() -> None:
    for document in DOCS.glob("*.md"):
        # Code (fenced or inline) holds brackets and parentheses that are not links.
        prose = re.sub(r"```.*?```|`[^`\n]*`", "", document.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", prose):
            assert (document.parent / target).exists(), f"{document.name} links to {target}"


# -- kind --------------------------------------------------------------------------------------


def kind_commands() -> list[list[str]]:
    """The shell commands of docs/kind.md, continuation lines joined."""
    text = (DOCS / "kind.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line.split("#")[0]) for line in lines if line.strip()]


def test_the_kind_node_image_is_pinned_by_tag_and_digest() -> None:
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    for node in config["nodes"]:
        assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", node["image"])


def test_the_kind_walk_through_builds_loads_and_installs_one_versioned_image() -> None:
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    commands = kind_commands()
    image = f"orchestrator-operator:{APP_VERSION}"

    create = next(c for c in commands if c[:3] == ["kind", "create", "cluster"])
    assert "--config" in create
    assert create[create.index("--config") + 1] == "kind-config.yaml"
    build = next(c for c in commands if c[:2] == ["docker", "build"])
    assert build[build.index("-t") + 1] == image
    assert build[build.index("-f") + 1] == "Containerfile"
    load = next(c for c in commands if c[:3] == ["kind", "load", "docker-image"])
    assert load[3] == image
    assert load[load.index("--name") + 1] == config["name"]
    install = next(c for c in commands if c[:2] == ["helm", "install"])
    assert (ROOT / install[3] / "Chart.yaml").exists()
    delete = next(c for c in commands if c[:3] == ["kind", "delete", "cluster"])
    assert delete[delete.index("--name") + 1] == config["name"]


def test_the_kind_walk_through_applies_and_waits_for_the_examples() -> None:
    commands = kind_commands()
    applied = [c[c.index("-f") + 1] for c in commands if c[:2] == ["kubectl", "apply"]]
    waited = {
        c[3]: c[c.index("--namespace") + 1]
        for c in commands
        if c[:2] == ["kubectl", "wait"] and c[2] == "--for=condition=Ready"
    }
    expected: dict[str, str] = {}
    for path in applied:
        example = yaml.safe_load((ROOT / path).read_text())
        plural = {"Workflow": "workflows", "OrchestratorInstance": "orchestratorinstances"}
        resource = f"{plural[example['kind']]}.orchestrator.dev/{example['metadata']['name']}"
        expected[resource] = example["metadata"]["namespace"]
    assert waited == expected
    created = [c[3] for c in commands if c[:3] == ["kubectl", "create", "namespace"]]
    assert set(expected.values()) <= set(created)


# -- examples ----------------------------------------------------------------------------------


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return loaded


def test_the_example_installation_is_a_valid_spec() -> None:
    installation = example("installation.yaml")
    InstallationSpec.model_validate(installation["spec"])


def test_the_example_workflow_is_valid_and_links_to_the_example_installation() -> None:
    workflow = example("workflow.yaml")
    installation = example("installation.yaml")
    spec = WorkflowSpec.model_validate(workflow["spec"])

    assert validate_definition(spec.definition, {}) == []
    assert spec.installation_ref is not None
    assert spec.installation_ref.name == installation["metadata"]["name"]
    assert workflow["metadata"]["namespace"] == installation["metadata"]["namespace"]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_name_our_api_version(path: Path) -> None:
    assert yaml.safe_load(path.read_text())["apiVersion"] == "orchestrator.dev/v1alpha1"
