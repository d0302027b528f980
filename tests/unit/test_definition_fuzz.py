"""validate_definition returns problems, and never raises, whatever shape its input has."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.definition import (
    INVALID_DEFINITION,
    Problem,
    load_definition_file,
    load_workflow_folder,
    validate_definition,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPOSITORY = FIXTURES / "rhdh-serverless-workflows"

JUNK: list[Any] = [
    None,
    0,
    -1.5,
    True,
    "",
    "x",
    "${ .a ==== }",
    "fn:",
    "../../../etc/passwd",
    "specs/none.yaml#op",
    "#",
    [],
    [None],
    [1, "a", {}],
    {},
    {"name": None},
    {"nextState": 3},
    {"$ref": "#/nowhere"},
    {"refName": {"a": 1}},
]


def _containers(value: Any, found: list[Any]) -> list[Any]:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict | list):
            found.append(node)
            stack.extend(node.values() if isinstance(node, dict) else node)
    return found


def _mutate(definition: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    mutated = copy.deepcopy(definition)
    for _ in range(rng.randint(1, 4)):
        container = rng.choice(_containers(mutated, []))
        if isinstance(container, dict) and container:
            key = rng.choice(list(container))
            if rng.random() < 0.2:
                del container[key]
            else:
                container[key] = copy.deepcopy(rng.choice(JUNK))
        elif isinstance(container, list) and container:
            container[rng.randrange(len(container))] = copy.deepcopy(rng.choice(JUNK))
    return mutated


def _workflows() -> list[tuple[dict[str, Any], dict[str, bytes]]]:
    folders = [
        load_workflow_folder(REPOSITORY / name) for name in ("greeting", "escalation", "azure")
    ]
    lone = [
        load_definition_file(path)
        for path in sorted(FIXTURES.glob("kogito-serverless-examples/*/*.sw.json"))
    ]
    return [(workflow.definition, workflow.files) for workflow in [*folders, *lone]]


def test_random_damage_to_real_definitions_never_raises() -> None:
    rng = random.Random(20240601)
    workflows = _workflows()

    for _ in range(300):
        definition, files = rng.choice(workflows)
        problems = validate_definition(_mutate(definition, rng), files)
        assert all(isinstance(problem, Problem) for problem in problems)


def test_random_damage_to_resource_files_never_raises() -> None:
    rng = random.Random(7)
    workflow = load_workflow_folder(REPOSITORY / "escalation")

    for _ in range(30):
        files = dict(workflow.files)
        path = rng.choice(sorted(files))
        content = files[path]
        cut = rng.randrange(len(content))
        files[path] = content[:cut] + rng.choice([b"", b"\x00", b"[", b"{{", b"\xff", b"- -"])
        validate_definition(workflow.definition, files)


@pytest.mark.parametrize(
    "definition",
    [
        {},
        {"id": None, "states": None},
        {"id": 1, "start": 2, "states": 3, "functions": 4, "events": 5, "errors": 6},
        {"id": "x", "states": [None, 1, "a", [], {"name": 5}, {"name": "a", "type": 7}]},
        {"id": "x", "start": {"stateName": ["a"]}, "states": [{"name": "a", "type": "switch"}]},
        {"id": "x", "extensions": "x", "dataInputSchema": 5, "functions": "funcs.json"},
        {
            "id": "x",
            "extensions": [{"extensionid": "workflow-uri-definitions", "definitions": [1]}],
        },
        {"id": "x", "start": "a", "states": [{"name": "a", "type": "operation", "actions": "x"}]},
        {"id": "x", "start": "a", "states": [{"name": "a", "type": "callback", "action": [1]}]},
        {
            "id": "x",
            "start": "a",
            "states": [{"name": "a", "type": "foreach", "inputCollection": 1}],
        },
        {"id": "x", "start": "a", "states": [{"name": "a", "type": "parallel", "branches": [1]}]},
        {
            "id": "x",
            "start": "a",
            "states": [{"name": "a", "type": "event", "onEvents": [{"eventRefs": 1}]}],
        },
    ],
)
def test_odd_shapes_give_problems(definition: dict[str, Any]) -> None:
    problems = validate_definition(definition, {})

    assert problems
    assert problems[0].reason == INVALID_DEFINITION


@pytest.mark.parametrize(
    "files",
    [
        {"../escape.json": b"{}", "/abs.json": b"{}", "": b"", "a//b/../c.json": b"{}"},
        {"x.sw.yaml": b"- not a mapping", "y.sw.json": b"{", "z.sw.yml": "id: text-not-bytes"},
        {"schemas/s.json": None, 5: b"{}"},
    ],
)
def test_odd_files_never_raise(files: dict[Any, Any]) -> None:
    definition = load_workflow_folder(REPOSITORY / "greeting").definition

    problems = validate_definition(definition, files)

    assert all(isinstance(problem, Problem) for problem in problems)


def test_a_definition_that_is_not_a_mapping() -> None:
    problems = validate_definition([1, 2], {})  # type: ignore[arg-type]

    assert [(p.reason, p.message) for p in problems] == [
        (INVALID_DEFINITION, "the definition is a list, not a mapping")
    ]
