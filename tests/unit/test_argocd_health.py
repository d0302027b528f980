"""The Argo CD health check gives each state of a Workflow or installation the right health.

The script runs in Lua 5.1 (the language of gopher-lua, Argo CD's interpreter) with only the
libraries Argo CD opens for a custom check: base, table and package. The cases are kept in
Argo CD's own test layout (health_test.yaml beside testdata/), so that they can be offered
upstream as they are.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from orchestrator_operator.reconcile import installation, installation_controller, workflow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "argocd" / "health.lua"
SNIPPET = ROOT / "docs" / "argocd" / "resource-customizations.yaml"
CASES = ROOT / "tests" / "fixtures" / "argocd"
KINDS = ("Workflow", "OrchestratorInstance")


def run_health_check(script: str, obj: dict[str, Any]) -> dict[str, str]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    # What Argo CD does not open without useOpenLibs, so that a script relying on it fails here.
    runtime.execute(
        "debug.setmetatable('', nil)"
        " string = nil; math = nil; io = nil; os = nil; coroutine = nil; debug = nil"
    )
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(script)
    return {str(key): str(value) for key, value in result.items()}


def cases(kind: str) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    folder = CASES / kind
    tests = yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]
    return [
        (
            case["inputPath"],
            yaml.safe_load((folder / case["inputPath"]).read_text()),
            case["healthStatus"],
        )
        for case in tests
    ]


ALL_CASES = [(kind, *case) for kind in KINDS for case in cases(kind)]


@pytest.mark.parametrize(
    ("kind", "path", "obj", "expected"),
    ALL_CASES,
    ids=[f"{kind}/{Path(path).stem}" for kind, path, _, _ in ALL_CASES],
)
def test_health(kind: str, path: str, obj: dict[str, Any], expected: dict[str, str]) -> None:
    snippet = yaml.safe_load(SNIPPET.read_text())["data"]
    script = snippet[f"resource.customizations.health.orchestrator.dev_{kind}"]

    assert obj["kind"] == kind
    assert run_health_check(script, obj) == expected


def test_every_health_status_is_covered_for_workflows() -> None:
    statuses = {expected["status"] for _, _, expected in cases("Workflow")}
    assert statuses == {"Healthy", "Progressing", "Degraded", "Suspended"}


def test_the_snippet_and_the_docs_carry_the_script_unchanged() -> None:
    script = SCRIPT.read_text()
    snippet = yaml.safe_load(SNIPPET.read_text())["data"]
    for kind in KINDS:
        assert snippet[f"resource.customizations.health.orchestrator.dev_{kind}"] == script, kind
    docs = (ROOT / "docs" / "argocd.md").read_text()
    assert f"```lua\n{script}```" in docs


def test_the_progress_reasons_are_reasons_the_operator_uses() -> None:
    # A renamed reason would otherwise turn a rollout into Degraded without any test noticing.
    table = re.search(r"local progress_reasons = \{(.*?)\}", SCRIPT.read_text(), re.S)
    assert table is not None
    in_script = set(re.findall(r"(\w+) = true", table.group(1)))
    assert in_script == {
        workflow.ROLLING_OUT,
        workflow.NOT_ROLLED_OUT,
        installation.ROLLING_OUT,
        installation.NOT_ROLLED_OUT,
        installation.NOT_POLLED,
        installation.NOT_SYNCED_YET,
        installation.PERSISTENCE_NOT_READY,
        installation_controller.INSTALLATION_NOT_READY,
    }
    suspended = re.search(r"local suspended_reasons = \{(.*?)\}", SCRIPT.read_text(), re.S)
    assert suspended is not None
    assert set(re.findall(r"(\w+) = true", suspended.group(1))) == {
        workflow.SCALED_TO_ZERO,
        installation.SCALED_TO_ZERO,
    }
