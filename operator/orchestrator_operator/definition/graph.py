"""Check that the states form a workflow the runtime can build.

The runtime turns states into process nodes and refuses a process with a node the start node
cannot reach, a node without an outgoing connection, or no end node. States marked
usedForCompensation are the exception: they run only through compensatedBy, and the last
one of a compensation chain needs no end.
"""

from __future__ import annotations

from collections import deque

from orchestrator_operator.definition.model import State, Workflow
from orchestrator_operator.definition.problems import INVALID_STATE_GRAPH, Problem, suggestion


def check_graph(workflow: Workflow) -> list[Problem]:
    """Problems with the start, the transitions and the reachability of the states."""
    problems: list[Problem] = []
    by_name: dict[str, State] = {}
    for state in workflow.states:
        by_name.setdefault(state.name, state)
    names = list(by_name)

    problems += _duplicates(workflow.states)
    if workflow.states_readable:
        # With unreadable states, an unknown start may only be a state left unread.
        problems += _start(workflow, by_name)
    problems += _dangling(workflow.states, by_name, names)
    problems += _dead_ends(workflow.states)
    if workflow.states_readable and workflow.start in by_name:
        problems += _reachability(workflow.start, workflow.states, by_name)
    return problems


def _duplicates(states: list[State]) -> list[Problem]:
    pointers: dict[str, list[str]] = {}
    for state in states:
        pointers.setdefault(state.name, []).append(state.pointer)
    return [
        Problem(
            INVALID_STATE_GRAPH,
            f'state name "{name}" is used by {len(used)} states '
            f"({', '.join(at.removeprefix('/') for at in used)}); state names must be unique",
            path=used[1],
        )
        for name, used in pointers.items()
        if len(used) > 1
    ]


def _start(workflow: Workflow, by_name: dict[str, State]) -> list[Problem]:
    if workflow.start is None:
        # The 0.8 specification would default to the first state; the runtime refuses.
        return [Problem(INVALID_STATE_GRAPH, "the definition names no start state", path="/start")]
    if workflow.start not in by_name:
        hint = suggestion(workflow.start, list(by_name))
        return [
            Problem(
                INVALID_STATE_GRAPH,
                f'start state "{workflow.start}" names no state{hint}',
                path=workflow.start_pointer,
            )
        ]
    return []


def _dangling(states: list[State], by_name: dict[str, State], names: list[str]) -> list[Problem]:
    problems = []
    for state in states:
        for edge in state.edges:
            if edge.target not in by_name:
                problems.append(
                    Problem(
                        INVALID_STATE_GRAPH,
                        f'{edge.where}: transition to "{edge.target}" names no state'
                        f"{suggestion(edge.target, names)}",
                        path=edge.pointer,
                    )
                )
        compensation = state.compensated_by
        if compensation is not None and compensation.target not in by_name:
            target = compensation.target
            problems.append(
                Problem(
                    INVALID_STATE_GRAPH,
                    f'{compensation.where} "{target}" names no state{suggestion(target, names)}',
                    path=compensation.pointer,
                )
            )
    return problems


def _dead_ends(states: list[State]) -> list[Problem]:
    problems = []
    for state in states:
        problems += [
            Problem(INVALID_STATE_GRAPH, defect, path=state.pointer) for defect in state.defects
        ]
        if not state.has_exit and not state.compensation:
            problems.append(
                Problem(
                    INVALID_STATE_GRAPH,
                    f'state "{state.name}" has neither transition nor end',
                    path=state.pointer,
                )
            )
    return problems


def _reachability(start: str, states: list[State], by_name: dict[str, State]) -> list[Problem]:
    reached = {start}
    queue = deque([start])
    while queue:
        for edge in by_name[queue.popleft()].edges:
            if edge.target in by_name and edge.target not in reached:
                reached.add(edge.target)
                queue.append(edge.target)

    problems = [
        Problem(
            INVALID_STATE_GRAPH,
            f'state "{state.name}" cannot be reached from start state "{start}"',
            path=state.pointer,
        )
        for state in states
        if state.name not in reached and not state.compensation
    ]
    if not any(by_name[name].ends for name in reached):
        problems.append(
            Problem(
                INVALID_STATE_GRAPH,
                f'no state reachable from start state "{start}" ends the workflow '
                "(none has end, nor a condition or error handler with end)",
                path="/states",
            )
        )
    return problems
