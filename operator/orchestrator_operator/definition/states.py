"""Read one state: where it leads, how it ends, the actions it runs, the expressions it holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator_operator.definition.fields import Fields, pointer
from orchestrator_operator.definition.model import (
    ERROR,
    EVENT,
    FUNCTION,
    RETRY,
    STATE_TYPES,
    SUBFLOW,
    Edge,
    State,
)
from orchestrator_operator.definition.parse import describe


def read_state(reader: Fields, raw: Mapping[str, Any], name: str, at: str) -> State:
    """Read the state at ``at``, named ``name`` (or a stand-in when it has none)."""
    return _StateReader(reader, raw, name, at).read()


class _StateReader:
    """Reads one state: its exits, the actions it runs and the expressions it holds."""

    def __init__(self, reader: Fields, raw: Mapping[str, Any], name: str, at: str) -> None:
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
            if not target:
                self.reader.invalid(
                    f"{where}: transition has no nextState", pointer(at, "transition", "nextState")
                )
                target = ""
            self.produced_events(transition, where, pointer(at, "transition"))
        elif transition is not None:
            # Malformed, but there: the state is not also reported as having no exit.
            target = ""
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
        if isinstance(raw.get("defaultCondition"), Mapping):
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
            error_ref = reader.text(handler, "errorRef", label, here)
            reader.refer(ERROR, error_ref, label, pointer(here, "errorRef"))
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
