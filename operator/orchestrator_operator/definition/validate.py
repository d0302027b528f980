"""Validate a definition and the definitions among its resource files, before anything rolls out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator_operator.definition.expressions import check_expressions
from orchestrator_operator.definition.files import check_files
from orchestrator_operator.definition.graph import check_graph
from orchestrator_operator.definition.parse import parse_definition, read_info
from orchestrator_operator.definition.problems import (
    INVALID_DEFINITION,
    DefinitionError,
    Problem,
)
from orchestrator_operator.definition.reader import read_workflow
from orchestrator_operator.definition.references import THIS_DEFINITION, check_references
from orchestrator_operator.definition.resources import Resources


def validate_definition(definition: Mapping[str, Any], files: Mapping[str, bytes]) -> list[Problem]:
    """Every problem that would keep the runtime from building or running this workflow.

    ``files`` maps POSIX paths relative to the resources root (the folder of the definition)
    to their content; it should not hold the definition itself. Every definition among the
    files is validated too, as the runtime builds them all, and its problems are prefixed
    with its path. The list is empty when all is well, in a stable order: definitions among
    the files that do not parse and ids used twice; then the definition's own problems
    (structure, states, names, expressions, files); then those of each other definition by
    path. Never raises.
    """
    return _validate(definition, files).problems


def missing_resource_paths(definition: Mapping[str, Any], resources: Resources) -> set[str]:
    """Resource paths that the definitions and their documents need and ``resources`` lacks.

    Takes a Resources so that a loader adding files round by round parses each file once.
    """
    return _validate(definition, resources).missing


@dataclass
class _Outcome:
    problems: list[Problem] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)


def _validate(definition: Mapping[str, Any], files: Mapping[str, bytes] | Resources) -> _Outcome:
    resources = files if isinstance(files, Resources) else Resources(files)
    others = _other_definitions(definition, resources)
    workflow_ids = _workflow_ids(definition, others)

    # Definitions that do not parse and ids used twice come first: they explain the
    # unresolved sub-flows that follow from them.
    outcome = _Outcome()
    outcome.problems += [other for _, other in others if isinstance(other, Problem)]
    outcome.problems += _shared_ids(workflow_ids)
    _check(definition, resources, "", workflow_ids, outcome)
    for path, other in others:
        if isinstance(other, Problem):
            continue
        own = _Outcome()
        _check(other, resources, path, workflow_ids, own)
        outcome.problems += [_within(problem, path) for problem in own.problems]
        outcome.missing |= own.missing
    return outcome


def _check(
    definition: Mapping[str, Any],
    resources: Resources,
    path: str,
    workflow_ids: Mapping[str, list[str]],
    outcome: _Outcome,
) -> None:
    workflow, problems = read_workflow(definition)
    outcome.problems += problems
    outcome.problems += check_graph(workflow)
    outcome.problems += check_references(workflow, workflow_ids)
    outcome.problems += check_expressions(workflow)
    files = check_files(workflow, resources, path)
    outcome.problems += files.problems
    outcome.missing |= files.missing


def _other_definitions(
    definition: Mapping[str, Any], resources: Resources
) -> list[tuple[str, Mapping[str, Any] | Problem]]:
    others: list[tuple[str, Mapping[str, Any] | Problem]] = []
    for path in resources.definitions():
        try:
            other = parse_definition(resources.files[path], path)
        except DefinitionError as error:
            others.append((path, replace(error.problem, file=path)))
            continue
        # A caller that passes the whole folder may include the definition itself.
        if other != definition:
            others.append((path, other))
    return others


def _workflow_ids(
    definition: Mapping[str, Any], others: list[tuple[str, Mapping[str, Any] | Problem]]
) -> dict[str, list[str]]:
    workflow_ids: dict[str, list[str]] = {}
    for path, parsed in [(THIS_DEFINITION, definition), *others]:
        if isinstance(parsed, Mapping):
            workflow_id = read_info(parsed).id
            if workflow_id:
                workflow_ids.setdefault(workflow_id, []).append(path)
    return workflow_ids


def _shared_ids(workflow_ids: Mapping[str, list[str]]) -> list[Problem]:
    return [
        Problem(
            INVALID_DEFINITION,
            f'the id "{workflow_id}" is used by {len(paths)} definitions ({", ".join(paths)}); '
            "the runtime needs each id once",
            path="/id",
        )
        for workflow_id, paths in workflow_ids.items()
        if len(paths) > 1
    ]


def _within(problem: Problem, path: str) -> Problem:
    return replace(problem, message=f"{path}: {problem.message}", file=problem.file or path)
