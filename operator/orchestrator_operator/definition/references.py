"""Check that every function, event, error, retry, auth and sub-flow a definition uses exists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator_operator.definition.model import (
    AUTH,
    ERROR,
    EVENT,
    FUNCTION,
    RETRY,
    SUBFLOW,
    Workflow,
)
from orchestrator_operator.definition.problems import UNRESOLVED_REFERENCE, Problem, suggestion

_LIST_OF = {FUNCTION: "functions", EVENT: "events", ERROR: "errors", RETRY: "retries", AUTH: "auth"}

THIS_DEFINITION = "the definition"


def check_references(
    workflow: Workflow, workflow_ids: Mapping[str, Sequence[str]]
) -> list[Problem]:
    """Problems with names that resolve to nothing.

    ``workflow_ids`` maps each workflow id among the definitions the runtime will hold to
    the files that define it; a sub-flow reference must name exactly one of them.
    """
    problems = []
    for reference in workflow.references:
        if reference.kind == SUBFLOW:
            message = _subflow_problem(reference.name, workflow, workflow_ids)
        else:
            message = _name_problem(reference.kind, reference.name, workflow)
        if message:
            problems.append(
                Problem(
                    UNRESOLVED_REFERENCE, f"{reference.where}: {message}", path=reference.pointer
                )
            )
    return problems


def _name_problem(kind: str, name: str, workflow: Workflow) -> str | None:
    defined = workflow.defined.get(kind)
    if defined is None or not defined.known or name in defined.names:
        return None
    return f'{kind} "{name}" is not defined in {_LIST_OF[kind]}{suggestion(name, defined.names)}'


def _subflow_problem(
    name: str, workflow: Workflow, workflow_ids: Mapping[str, Sequence[str]]
) -> str | None:
    if name == workflow.id:
        return None
    files = workflow_ids.get(name, ())
    if len(files) == 1:
        return None
    if files:
        return f'sub-flow "{name}" is the id of {len(files)} definitions ({", ".join(files)})'
    others = sorted(workflow_id for workflow_id in workflow_ids if workflow_id != workflow.id)
    known = f" (sub-flows found: {', '.join(others)})" if others else ""
    return (
        f'sub-flow "{name}" is not the id of any definition among the resource files'
        f"{suggestion(name, others) or known}"
    )
