"""Check the jq expressions of a definition with the jq library itself.

Only syntax is judged. The runtime evaluates jq with its own engine, which supplies
variables such as ``$WORKFLOW``, ``$SECRET``, ``$CONST`` and foreach iteration parameters,
and a set of built-in functions that differs a little from jq's; a name jq does not know is
therefore left to the runtime.
"""

from __future__ import annotations

import functools
import re
from typing import Final

import jq

from orchestrator_operator.definition.model import Workflow
from orchestrator_operator.definition.problems import (
    INVALID_EXPRESSION,
    UNRESOLVED_REFERENCE,
    Problem,
    suggestion,
)

# Written around an expression to mark it as one; the runtime strips them before compiling.
_MARKERS: Final = (("${", "}"), ("{{", "}}"))
FUNCTION_REFERENCE: Final = "fn:"
_EXCERPT: Final = 80
_LOCATION = re.compile(r"\s+at <top-level>, line (\d+), column (\d+):?$")


def strip_markers(expression: str) -> str:
    """The expression without its ``${ }`` (or legacy ``{{ }}``) marker, as the runtime reads it."""
    text = expression.strip()
    for prefix, suffix in _MARKERS:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            if text.endswith(suffix):
                text = text[: -len(suffix)]
            break
    return text.strip()


def check_expressions(workflow: Workflow) -> list[Problem]:
    """Problems with ``fn:`` references (any language) and jq syntax (jq only)."""
    expression_functions = [f.name for f in workflow.functions if f.type == "expression"]
    problems = []
    for expression in workflow.expressions:
        if expression.optional and not expression.text.strip().startswith("${"):
            # A function argument that does not compile is passed on as plain text.
            continue
        body = strip_markers(expression.text)
        if body.startswith(FUNCTION_REFERENCE):
            name = body[len(FUNCTION_REFERENCE) :]
            if workflow.functions_known and name not in expression_functions:
                problems.append(
                    Problem(
                        UNRESOLVED_REFERENCE,
                        f'{expression.where}: "{FUNCTION_REFERENCE}{name}" names no function '
                        f"of type expression{suggestion(name, expression_functions)}",
                        path=expression.pointer,
                    )
                )
            continue
        if not workflow.uses_jq or not body:
            continue
        error = jq_syntax_error(body)
        if error:
            problems.append(
                Problem(
                    INVALID_EXPRESSION,
                    f"{expression.where}: not a valid jq expression ({error}): {_excerpt(body)}",
                    path=expression.pointer,
                )
            )
    return problems


@functools.lru_cache(maxsize=4096)
def jq_syntax_error(program: str) -> str | None:
    """What jq finds wrong with a program, or None when it compiles or only names unknowns."""
    try:
        jq.compile(program)
    except ValueError as error:
        return _first_error(str(error))
    except TypeError:
        return "it holds characters jq cannot read"
    return None


def _first_error(report: str) -> str | None:
    errors = [
        line.removeprefix("jq: error: ")
        for line in report.splitlines()
        if line.startswith("jq: error: ")
    ]
    for error in errors:
        if " is not defined at " in error:
            continue
        return _LOCATION.sub(r" at line \1, column \2", error)
    if errors:
        return None
    lines = report.strip().splitlines()
    return lines[0] if lines else "it does not compile"


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 1] + "…"
