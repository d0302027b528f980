"""Read a raw definition mapping into the typed parts the checks need.

The field names and shapes follow the Serverless Workflow 0.8 specification as the SonataFlow
runtime reads it; ``states.py`` reads the states.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator_operator.definition.fields import Fields, pointer
from orchestrator_operator.definition.model import (
    AUTH,
    ERROR,
    EVENT,
    FUNCTION,
    FUNCTION_TYPES,
    RETRY,
    Definitions,
    FileReference,
    Function,
    Workflow,
)
from orchestrator_operator.definition.parse import describe
from orchestrator_operator.definition.problems import Problem
from orchestrator_operator.definition.states import read_state

OUTPUT_SCHEMA_EXTENSION = "workflow-output-schema"
URI_DEFINITIONS_EXTENSION = "workflow-uri-definitions"

# Top-level lists of named things that 0.8 also lets a definition keep in a separate file.
_NAMED_LISTS = {"functions": FUNCTION, "events": EVENT, "errors": ERROR, "retries": RETRY}


# The runtime finds its definition as the file `<id>.sw.json`, so the id must make one file
# name: one that a file system holds (255 bytes) and a pod's volume accepts as an item path.
DEFINITION_FILE_SUFFIX = ".sw.json"
MAX_FILE_NAME_BYTES = 255


def id_problem(workflow_id: str) -> str | None:
    """Why the id cannot name the definition's file, or None when it can."""
    file_name = workflow_id + DEFINITION_FILE_SUFFIX
    if "/" in workflow_id or "\0" in workflow_id:
        return (
            f"the definition's id {workflow_id!r} holds a '/' or a NUL character; the runtime"
            f" reads the definition from the file {file_name!r}, which must be one file name"
        )
    if workflow_id.startswith(".."):
        return (
            f"the definition's id {workflow_id!r} starts with '..'; a pod cannot mount the"
            f" file {file_name!r}"
        )
    if len(file_name.encode()) > MAX_FILE_NAME_BYTES:
        return (
            f"the definition's id is {len(workflow_id.encode())} bytes long; the file"
            f" <id>{DEFINITION_FILE_SUFFIX} must fit {MAX_FILE_NAME_BYTES} bytes, so the id at"
            f" most {MAX_FILE_NAME_BYTES - len(DEFINITION_FILE_SUFFIX)}"
        )
    return None


def read_workflow(definition: Mapping[str, Any]) -> tuple[Workflow, list[Problem]]:
    """Read a definition; return what was readable and the InvalidDefinition problems met."""
    reader = _Reader()
    workflow = reader.read(definition)
    return workflow, reader.problems


class _Reader(Fields):
    """Reads the definition top down; ``read_state`` reads each state."""

    def read(self, definition: Mapping[str, Any]) -> Workflow:
        workflow = self.workflow
        if not isinstance(definition, Mapping):
            self.invalid(f"the definition is {describe(definition)}, not a mapping", "")
            workflow.states_readable = False
            return workflow

        workflow.id = self.text(definition, "id", "the definition", "")
        if definition.get("id") in (None, ""):
            self.invalid("the definition has no id", "/id")
        elif workflow.id and (problem := id_problem(workflow.id)):
            self.invalid(problem, "/id")
        workflow.expression_lang = (
            self.text(definition, "expressionLang", "the definition", "") or "jq"
        )

        self.read_start(definition)
        self.read_schemas(definition)
        self.read_extensions(definition)
        self.read_named_lists(definition)
        self.read_functions(definition)
        for key in ("constants", "secrets"):
            if isinstance(definition.get(key), str):
                workflow.files.append(FileReference(definition[key], key, f"/{key}", "any"))
        self.read_states(definition)
        return workflow

    def read_start(self, definition: Mapping[str, Any]) -> None:
        start = definition.get("start")
        if isinstance(start, str):
            self.workflow.start, self.workflow.start_pointer = start, "/start"
        elif isinstance(start, Mapping):
            self.workflow.start = self.text(start, "stateName", "start", "/start")
            self.workflow.start_pointer = "/start/stateName"
        elif start is not None:
            self.invalid(
                f"start must be a state name or a mapping with stateName, not {describe(start)}",
                "/start",
            )

    def read_schemas(self, definition: Mapping[str, Any]) -> None:
        self.schema(definition, "dataInputSchema", "dataInputSchema", "")

    def schema(self, raw: Mapping[str, Any], key: str, what: str, at: str) -> None:
        # A schema is a path, or a mapping whose `schema` is a path or an inline schema.
        value = raw.get(key)
        here = pointer(at, key)
        if isinstance(value, str):
            self.workflow.files.append(FileReference(value, what, here, "schema"))
        elif isinstance(value, Mapping):
            self.flag(value, "failOnValidationErrors", what, here)
            inner = value.get("schema")
            if isinstance(inner, str):
                self.workflow.files.append(
                    FileReference(inner, what, pointer(here, "schema"), "schema")
                )
            elif not isinstance(inner, Mapping):
                self.invalid(
                    f"{what}: schema must be a file path or a schema", pointer(here, "schema")
                )
        elif value is not None:
            self.invalid(f"{what} must be a file path or a mapping, not {describe(value)}", here)

    def read_extensions(self, definition: Mapping[str, Any]) -> None:
        for index, extension in self.items(definition, "extensions", "the definition", ""):
            at = pointer("/extensions", index)
            kind = extension.get("extensionid")
            if kind == OUTPUT_SCHEMA_EXTENSION:
                self.schema(extension, "outputSchema", "output schema", at)
            elif kind == URI_DEFINITIONS_EXTENSION:
                where = f"extension {URI_DEFINITIONS_EXTENSION}"
                for alias, uri in self.mapping(extension, "definitions", where, at).items():
                    if isinstance(uri, str):
                        self.workflow.uri_aliases[alias] = uri
                    else:
                        self.invalid(
                            f"{where}: definition {alias!r} must be a URI, not {describe(uri)}",
                            pointer(at, "definitions", alias),
                        )

    def read_named_lists(self, definition: Mapping[str, Any]) -> None:
        for key, kind in (*_NAMED_LISTS.items(), ("auth", AUTH)):
            defined = Definitions()
            self.workflow.defined[kind] = defined
            value = definition.get(key)
            if isinstance(value, str):
                # Limitation: names kept in a separate file (the 0.8 string form) are not read,
                # so references to them are not checked; the file itself must exist.
                defined.known = False
                self.workflow.files.append(FileReference(value, key, f"/{key}", f"list:{key}"))
                continue
            for index, item in self.items(definition, key, "the definition", ""):
                name = self.text(item, "name", f"{key}[{index}]", pointer(f"/{key}", index))
                if name:
                    defined.names.append(name)
                else:
                    self.invalid(f"{key}[{index}] has no name", pointer(f"/{key}", index))

    def read_functions(self, definition: Mapping[str, Any]) -> None:
        workflow = self.workflow
        workflow.functions_known = workflow.defined[FUNCTION].known
        if not workflow.functions_known:
            return
        for index, raw in self.items(definition, "functions", "the definition", ""):
            at = pointer("/functions", index)
            name = self.text(raw, "name", f"functions[{index}]", at)
            if not name:
                continue
            where = f'function "{name}"'
            kind = self.text(raw, "type", where, at) or "rest"
            if kind not in FUNCTION_TYPES:
                self.invalid(
                    f'{where}: type "{kind}" is not one of {", ".join(FUNCTION_TYPES)}',
                    pointer(at, "type"),
                )
                continue
            operation = self.text(raw, "operation", where, at)
            if operation is None:
                self.invalid(f"{where} has no operation", pointer(at, "operation"))
                continue
            workflow.functions.append(Function(name, kind, operation, at))
            self.refer(AUTH, self.text(raw, "authRef", where, at), where, pointer(at, "authRef"))
            if kind == "expression":
                self.expression(operation, f"{where}, operation", pointer(at, "operation"))

    def read_states(self, definition: Mapping[str, Any]) -> None:
        workflow = self.workflow
        states = definition.get("states")
        if not isinstance(states, list) or not states:
            shape = "no states" if states is None else f"states as {describe(states)}"
            if isinstance(states, list):
                shape = "an empty list of states"
            self.invalid(f"the definition has {shape}; it needs a list of states", "/states")
            workflow.states_readable = False
            return
        for index, raw in enumerate(states):
            at = pointer("/states", index)
            if not isinstance(raw, Mapping):
                self.invalid(f"states[{index}] is {describe(raw)}, not a state", at)
                workflow.states_readable = False
                continue
            name = raw.get("name")
            if not isinstance(name, str) or not name:
                self.invalid(f"states[{index}] has no name", pointer(at, "name"))
                workflow.states_readable = False
                name = None
            state = read_state(self, raw, name or f"states[{index}]", at)
            if name is not None:
                workflow.states.append(state)
