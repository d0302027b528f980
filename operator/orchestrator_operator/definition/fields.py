"""Typed access to the fields of a raw definition, reporting each wrongly typed one once.

A field of the wrong type is reported as InvalidDefinition and then read as absent, so that
one mistake gives one problem and the checks never meet a number where a name belongs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator_operator.definition.model import Expression, Reference, Workflow
from orchestrator_operator.definition.parse import describe
from orchestrator_operator.definition.problems import INVALID_DEFINITION, Problem


def pointer(base: str, *parts: str | int) -> str:
    """Extend a JSON Pointer, escaping as RFC 6901 asks."""
    escaped = (str(part).replace("~", "~0").replace("/", "~1") for part in parts)
    return "/".join((base, *escaped))


class Fields:
    """Reads fields into a Workflow and keeps the problems met on the way."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.workflow = Workflow(id=None, expression_lang="jq", start=None, start_pointer="")

    def invalid(self, message: str, at: str) -> None:
        self.problems.append(Problem(INVALID_DEFINITION, message, path=at))

    # Typed access. Each reports a wrongly typed field once and returns "absent".

    def text(self, raw: Mapping[str, Any], key: str, where: str, at: str) -> str | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        self.invalid(f"{where}: {key} must be a string, not {describe(value)}", pointer(at, key))
        return None

    def flag(self, raw: Mapping[str, Any], key: str, where: str, at: str) -> bool:
        value = raw.get(key)
        if value is None or isinstance(value, bool):
            return value is True
        self.invalid(
            f"{where}: {key} must be true or false, not {describe(value)}", pointer(at, key)
        )
        return False

    def mapping(self, raw: Mapping[str, Any], key: str, where: str, at: str) -> Mapping[str, Any]:
        value = raw.get(key)
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return value
        self.invalid(f"{where}: {key} must be a mapping, not {describe(value)}", pointer(at, key))
        return {}

    def items(
        self, raw: Mapping[str, Any], key: str, where: str, at: str
    ) -> Iterator[tuple[int, Mapping[str, Any]]]:
        value = raw.get(key)
        if value is None:
            return
        if not isinstance(value, list):
            self.invalid(f"{where}: {key} must be a list, not {describe(value)}", pointer(at, key))
            return
        for index, item in enumerate(value):
            if isinstance(item, Mapping):
                yield index, item
            else:
                self.invalid(
                    f"{where}: {key}[{index}] must be a mapping, not {describe(item)}",
                    pointer(at, key, index),
                )

    def strings(self, raw: Mapping[str, Any], key: str, where: str, at: str) -> list[str]:
        value = raw.get(key)
        if value is None:
            return []
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
        self.invalid(f"{where}: {key} must be a list of names", pointer(at, key))
        return []

    def refer(self, kind: str, name: str | None, where: str, at: str) -> None:
        if name is not None:
            self.workflow.references.append(Reference(kind, name, where, at))

    def expression(self, text: str | None, where: str, at: str, optional: bool = False) -> None:
        if text is not None:
            self.workflow.expressions.append(Expression(text, where, at, optional))
