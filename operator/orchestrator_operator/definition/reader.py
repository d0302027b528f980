"""Read a raw definition mapping into the typed parts the checks need.

Fields of the wrong type are reported as InvalidDefinition and then treated as absent, so
that one mistake gives one problem and the checks after this never meet a number where a
name belongs. The field names and shapes follow the Serverless Workflow 0.8 specification as
the SonataFlow runtime reads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator_operator.definition.model import (
    AUTH,
    ERROR,
    EVENT,
    FUNCTION,
    FUNCTION_TYPES,
    RETRY,
    STATE_TYPES,
    SUBFLOW,
    Definitions,
    Edge,
    Expression,
    FileReference,
    Function,
    Reference,
    State,
    Workflow,
)
from orchestrator_operator.definition.parse import describe
from orchestrator_operator.definition.problems import INVALID_DEFINITION, Problem

OUTPUT_SCHEMA_EXTENSION = "workflow-output-schema"
URI_DEFINITIONS_EXTENSION = "workflow-uri-definitions"

# Top-level lists of named things that 0.8 also lets a definition keep in a separate file.
_NAMED_LISTS = {"functions": FUNCTION, "events": EVENT, "errors": ERROR, "retries": RETRY}


def pointer(base: str, *parts: str | int) -> str:
    """Extend a JSON Pointer, escaping as RFC 6901 asks."""
    escaped = (str(part).replace("~", "~0").replace("/", "~1") for part in parts)
    return "/".join((base, *escaped))


def read_workflow(definition: Mapping[str, Any]) -> tuple[Workflow, list[Problem]]:
    """Read a definition; return what was readable and the InvalidDefinition problems met."""
    reader = _Reader()
    workflow = reader.read(definition)
    return workflow, reader.problems


class _Reader:
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

    # The definition, top down.

    def read(self, definition: Mapping[str, Any]) -> Workflow:
        workflow = self.workflow
        if not isinstance(definition, Mapping):
            self.invalid(f"the definition is {describe(definition)}, not a mapping", "")
            workflow.states_readable = False
            return workflow

        workflow.id = self.text(definition, "id", "the definition", "")
        if not workflow.id:
            self.invalid("the definition has no id", "/id")
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
                # Names kept in a file: the file is checked, the names are not known here.
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
            state = _StateReader(self, raw, name or f"states[{index}]", at).read()
            if name is not None:
                workflow.states.append(state)


class _StateReader:
    """Reads one state: its exits, the actions it runs and the expressions it holds."""

    def __init__(self, reader: _Reader, raw: Mapping[str, Any], name: str, at: str) -> None:
        self.reader = reader
        self.raw = raw
        self.name = name
        self.at = at
        self.where = f'state "{name}"'
        self.edges: list[Edge] = []
        self.ends = False
        self.defects: list[str] = []

    def read(self) -> State:
        reader, raw, where, at = self.reader, self.raw, self.where, self.at
        kind = raw.get("type")
        if kind is None:
            reader.invalid(f"{where} has no type", pointer(at, "type"))
        elif kind not in STATE_TYPES:
            reader.invalid(
                f'{where}: type "{kind}" is not one of {", ".join(STATE_TYPES)}',
                pointer(at, "type"),
            )

        has_exit = self.exits(raw, where, at)
        if kind == "switch":
            has_exit = self.switch()
        self.error_handlers()
        self.data_filter(raw, "stateDataFilter", ("input", "output"), where, at)
        self.actions_of(kind)

        compensated_by = reader.text(raw, "compensatedBy", where, at)
        return State(
            name=self.name,
            type=kind if isinstance(kind, str) else "",
            pointer=at,
            edges=tuple(self.edges),
            ends=self.ends,
            has_exit=has_exit,
            compensation=reader.flag(raw, "usedForCompensation", where, at),
            compensated_by=(
                Edge(compensated_by, f"{where}: compensatedBy", pointer(at, "compensatedBy"))
                if compensated_by
                else None
            ),
            defects=tuple(self.defects),
        )

    def exits(self, raw: Mapping[str, Any], where: str, at: str) -> bool:
        """Read the transition and end of a state or condition; whether it has either."""
        transition = raw.get("transition")
        target: str | None = None
        if isinstance(transition, str) and transition:
            target = transition
        elif isinstance(transition, Mapping):
            target = self.reader.text(transition, "nextState", where, pointer(at, "transition"))
            self.produced_events(transition, where, pointer(at, "transition"))
        elif transition is not None:
            self.reader.invalid(
                f"{where}: transition must be a state name or a mapping with nextState, "
                f"not {describe(transition)}",
                pointer(at, "transition"),
            )
        if target:
            self.edges.append(Edge(target, where, pointer(at, "transition")))

        end = raw.get("end")
        ends = end is True or isinstance(end, Mapping)
        if isinstance(end, Mapping):
            self.produced_events(end, where, pointer(at, "end"))
            self.continue_as(end, where, pointer(at, "end"))
        elif not (end is None or isinstance(end, bool)):
            self.reader.invalid(
                f"{where}: end must be true, false or a mapping, not {describe(end)}",
                pointer(at, "end"),
            )
        self.ends = self.ends or ends
        return target is not None or ends

    def produced_events(self, raw: Mapping[str, Any], where: str, at: str) -> None:
        for index, produced in self.reader.items(raw, "produceEvents", where, at):
            here = pointer(at, "produceEvents", index)
            name = self.reader.text(produced, "eventRef", where, here)
            self.reader.refer(EVENT, name, f"{where}, produceEvents[{index}]", here)
            data = produced.get("data")
            if isinstance(data, str):
                self.reader.expression(
                    data, f"{where}, produceEvents[{index}].data", pointer(here, "data")
                )

    def continue_as(self, end: Mapping[str, Any], where: str, at: str) -> None:
        value = end.get("continueAs")
        here = pointer(at, "continueAs")
        if isinstance(value, str):
            self.reader.refer(SUBFLOW, value, f"{where}, continueAs", here)
        elif isinstance(value, Mapping):
            name = self.reader.text(value, "workflowId", where, here)
            self.reader.refer(SUBFLOW, name, f"{where}, continueAs", pointer(here, "workflowId"))

    def switch(self) -> bool:
        reader, raw, where, at = self.reader, self.raw, self.where, self.at
        data_conditions = list(reader.items(raw, "dataConditions", where, at))
        event_conditions = list(reader.items(raw, "eventConditions", where, at))
        if data_conditions and event_conditions:
            self.defects.append(f"switch {where} has both dataConditions and eventConditions")
        for index, condition in data_conditions:
            here = pointer(at, "dataConditions", index)
            label = f"{where}, dataConditions[{index}]"
            text = reader.text(condition, "condition", label, here)
            if text is None:
                reader.invalid(f"{label} has no condition", pointer(here, "condition"))
            reader.expression(text, f"{label}.condition", pointer(here, "condition"))
            if not self.exits(condition, label, here):
                self.defects.append(f"{label} has neither transition nor end")
        for index, condition in event_conditions:
            here = pointer(at, "eventConditions", index)
            label = f"{where}, eventConditions[{index}]"
            reader.refer(EVENT, reader.text(condition, "eventRef", label, here), label, here)
            self.data_filter(condition, "eventDataFilter", ("data", "toStateData"), label, here)
            if not self.exits(condition, label, here):
                self.defects.append(f"{label} has neither transition nor end")
        default = reader.mapping(raw, "defaultCondition", where, at)
        if "defaultCondition" in raw and isinstance(raw["defaultCondition"], Mapping):
            label = f"{where}, defaultCondition"
            if not self.exits(default, label, pointer(at, "defaultCondition")):
                self.defects.append(f"{label} has neither transition nor end")
        if not data_conditions and not event_conditions:
            self.defects.append(f"switch {where} has neither dataConditions nor eventConditions")
        # A switch leaves through its conditions; the defects above say which cannot.
        return True

    def error_handlers(self) -> None:
        reader, where = self.reader, self.where
        for index, handler in reader.items(self.raw, "onErrors", where, self.at):
            here = pointer(self.at, "onErrors", index)
            label = f"{where}, onErrors[{index}]"
            reader.refer(ERROR, reader.text(handler, "errorRef", label, here), label, here)
            for name in reader.strings(handler, "errorRefs", label, here):
                reader.refer(ERROR, name, label, pointer(here, "errorRefs"))
            if not self.exits(handler, label, here):
                self.defects.append(f"{label} has neither transition nor end")

    def data_filter(
        self, raw: Mapping[str, Any], key: str, fields: tuple[str, ...], where: str, at: str
    ) -> None:
        data_filter = self.reader.mapping(raw, key, where, at)
        for field in fields:
            value = data_filter.get(field)
            if isinstance(value, str):
                self.reader.expression(value, f"{where}, {key}.{field}", pointer(at, key, field))

    def actions_of(self, kind: Any) -> None:
        reader, raw, where, at = self.reader, self.raw, self.where, self.at
        if kind in ("operation", "foreach"):
            self.actions(raw, where, at, "actions")
        if kind == "foreach":
            for key in ("inputCollection", "outputCollection"):
                reader.expression(
                    reader.text(raw, key, where, at), f"{where}, {key}", pointer(at, key)
                )
        elif kind == "parallel":
            for index, branch in reader.items(raw, "branches", where, at):
                branch_name = branch.get("name")
                label = (
                    f'{where}, branch "{branch_name}"'
                    if isinstance(branch_name, str)
                    else (f"{where}, branches[{index}]")
                )
                self.actions(branch, label, pointer(at, "branches", index), "actions")
        elif kind == "event":
            for index, on_event in reader.items(raw, "onEvents", where, at):
                here = pointer(at, "onEvents", index)
                label = f"{where}, onEvents[{index}]"
                for name in reader.strings(on_event, "eventRefs", label, here):
                    reader.refer(EVENT, name, label, pointer(here, "eventRefs"))
                self.data_filter(on_event, "eventDataFilter", ("data", "toStateData"), label, here)
                self.actions(on_event, label, here, "actions")
        elif kind == "callback":
            reader.refer(
                EVENT, reader.text(raw, "eventRef", where, at), where, pointer(at, "eventRef")
            )
            self.data_filter(raw, "eventDataFilter", ("data", "toStateData"), where, at)
            action = reader.mapping(raw, "action", where, at)
            if action:
                self.action(
                    action, self.action_label(action, where, "action"), pointer(at, "action")
                )

    def actions(self, raw: Mapping[str, Any], where: str, at: str, key: str) -> None:
        for index, action in self.reader.items(raw, key, where, at):
            label = self.action_label(action, where, f"{key}[{index}]")
            self.action(action, label, pointer(at, key, index))

    @staticmethod
    def action_label(action: Mapping[str, Any], where: str, fallback: str) -> str:
        name = action.get("name")
        return (
            f'{where}, action "{name}"'
            if isinstance(name, str) and name
            else f"{where}, {fallback}"
        )

    def action(self, action: Mapping[str, Any], where: str, at: str) -> None:
        reader = self.reader
        function_ref = action.get("functionRef")
        here = pointer(at, "functionRef")
        if isinstance(function_ref, str):
            reader.refer(FUNCTION, function_ref, where, here)
        elif isinstance(function_ref, Mapping):
            name = reader.text(function_ref, "refName", where, here)
            if name is None:
                reader.invalid(f"{where}: functionRef has no refName", pointer(here, "refName"))
            reader.refer(FUNCTION, name, where, pointer(here, "refName"))
            self.arguments(function_ref.get("arguments"), where, pointer(here, "arguments"))
        elif function_ref is not None:
            reader.invalid(
                f"{where}: functionRef must be a function name or a mapping with refName, "
                f"not {describe(function_ref)}",
                here,
            )

        event_ref = reader.mapping(action, "eventRef", where, at)
        here = pointer(at, "eventRef")
        for key in ("triggerEventRef", "resultEventRef"):
            reader.refer(EVENT, reader.text(event_ref, key, where, here), where, pointer(here, key))
        if isinstance(event_ref.get("data"), str):
            reader.expression(event_ref["data"], f"{where}, eventRef.data", pointer(here, "data"))

        subflow = action.get("subFlowRef")
        here = pointer(at, "subFlowRef")
        if isinstance(subflow, str):
            reader.refer(SUBFLOW, subflow, where, here)
        elif isinstance(subflow, Mapping):
            name = reader.text(subflow, "workflowId", where, here)
            if name is None:
                reader.invalid(
                    f"{where}: subFlowRef has no workflowId", pointer(here, "workflowId")
                )
            reader.refer(SUBFLOW, name, where, pointer(here, "workflowId"))
        elif subflow is not None:
            reader.invalid(
                f"{where}: subFlowRef must be a workflow id or a mapping with workflowId, "
                f"not {describe(subflow)}",
                here,
            )

        reader.refer(
            RETRY, reader.text(action, "retryRef", where, at), where, pointer(at, "retryRef")
        )
        for key in ("retryableErrors", "nonRetryableErrors"):
            for name in reader.strings(action, key, where, at):
                reader.refer(ERROR, name, f"{where}, {key}", pointer(at, key))
        self.data_filter(
            action, "actionDataFilter", ("fromStateData", "results", "toStateData"), where, at
        )
        reader.expression(
            reader.text(action, "condition", where, at),
            f"{where}, condition",
            pointer(at, "condition"),
        )

    def arguments(self, arguments: Any, where: str, at: str) -> None:
        """Collect the argument strings; the runtime evaluates those that compile."""
        stack: list[tuple[Any, str, str]] = [(arguments, "arguments", at)]
        while stack:
            value, label, here = stack.pop()
            if isinstance(value, str):
                self.reader.expression(value, f"{where}, {label}", here, optional=True)
            elif isinstance(value, Mapping):
                for key in reversed(list(value)):
                    stack.append((value[key], f"{label}.{key}", pointer(here, key)))
            elif isinstance(value, list):
                for index in reversed(range(len(value))):
                    stack.append((value[index], f"{label}[{index}]", pointer(here, index)))
