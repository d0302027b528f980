"""What is wrong with a definition, said so that its author can act on it.

Each problem carries a reason, a stable CamelCase word that the operator uses as a condition
and Event reason, and a message that names the state, function, event or file concerned.

Reasons:

``InvalidDefinition``
    The definition does not parse, is not a mapping, lacks its id or states, has an id that
    cannot name its file ``<id>.sw.json`` (a ``/``, a leading ``..``, too long), or holds a field
    of the wrong type (a number where a state name belongs, an unknown state or function type).
``InvalidStateGraph``
    The states do not form a workflow the runtime can build: no or an unknown start state,
    a transition to a state that does not exist, two states with one name, a state the start
    cannot reach, a state with neither transition nor end, or no end at all.
``UnresolvedReference``
    A name does not resolve: a function, event, error, retry, auth or sub-flow reference, an
    ``fn:`` expression reference, an operationId absent from its OpenAPI or AsyncAPI file, a
    service or method absent from its proto file, or a ``$ref`` fragment pointing at nothing.
``InvalidExpression``
    A jq expression does not compile (only when the definition's expressionLang is jq).
``MissingResourceFile``
    A file the definition needs is not among the resource files: the input or output schema,
    an OpenAPI, AsyncAPI or proto file named by a function, a file a ``$ref`` points to.
``InvalidResourceFile``
    A resource file is there but unusable: it does not parse, or a schema is not a JSON Schema.
``InvalidWorkflowFolder``
    A folder cannot be loaded as a workflow: no definition or several at its top level, a file
    too large, or too many files.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

INVALID_DEFINITION: Final = "InvalidDefinition"
INVALID_STATE_GRAPH: Final = "InvalidStateGraph"
UNRESOLVED_REFERENCE: Final = "UnresolvedReference"
INVALID_EXPRESSION: Final = "InvalidExpression"
MISSING_RESOURCE_FILE: Final = "MissingResourceFile"
INVALID_RESOURCE_FILE: Final = "InvalidResourceFile"
INVALID_WORKFLOW_FOLDER: Final = "InvalidWorkflowFolder"

REASONS: Final = (
    INVALID_DEFINITION,
    INVALID_STATE_GRAPH,
    UNRESOLVED_REFERENCE,
    INVALID_EXPRESSION,
    MISSING_RESOURCE_FILE,
    INVALID_RESOURCE_FILE,
    INVALID_WORKFLOW_FOLDER,
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition.

    ``file`` is the resource path of the document the problem sits in (a sub-flow definition
    or a schema file), or None for the definition itself. ``path`` is a JSON Pointer into that
    document, empty when the problem concerns the document as a whole.
    """

    reason: str
    message: str
    file: str | None = None
    path: str = ""


class DefinitionError(Exception):
    """A definition or workflow folder could not be read at all."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def condition_for(problems: Sequence[Problem]) -> tuple[str, str]:
    """The reason and message of a condition that reports these problems.

    The first problem's reason leads, as the checks run from the most basic (does it parse)
    to the most detailed (does a file hold an operationId).
    """
    if not problems:
        return "", ""
    return problems[0].reason, "; ".join(problem.message for problem in problems)


def suggestion(name: str, candidates: Sequence[str]) -> str:
    """A ``(did you mean "x"?)`` hint when a candidate is close to a name that did not resolve."""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
    return f' (did you mean "{close[0]}"?)' if close else ""
