"""The parts of a definition that the checks look at, read once into typed values.

The reader (``reader.py``) builds these from the raw mapping and reports wrongly typed fields
as it goes, so the checks that follow can trust every string to be a string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

STATE_TYPES: Final = (
    "callback",
    "event",
    "foreach",
    "inject",
    "operation",
    "parallel",
    "sleep",
    "switch",
)
FUNCTION_TYPES: Final = ("asyncapi", "custom", "expression", "graphql", "odata", "rest", "rpc")

# Kinds of named things a definition refers to, each defined in its own top-level list.
FUNCTION: Final = "function"
EVENT: Final = "event"
ERROR: Final = "error"
RETRY: Final = "retry"
AUTH: Final = "auth"
SUBFLOW: Final = "sub-flow"


@dataclass(frozen=True)
class Edge:
    """A transition out of a state."""

    target: str
    where: str
    pointer: str


@dataclass(frozen=True)
class State:
    name: str
    type: str
    pointer: str
    edges: tuple[Edge, ...]
    # Whether the state, one of its conditions or one of its error handlers ends the run.
    ends: bool
    # A non-switch state needs a transition or an end; a switch needs conditions instead.
    has_exit: bool
    compensation: bool
    compensated_by: Edge | None
    # Conditions or handlers that lead nowhere, said as sentences (for InvalidStateGraph).
    defects: tuple[str, ...] = ()


@dataclass(frozen=True)
class Function:
    name: str
    type: str
    operation: str
    pointer: str


@dataclass(frozen=True)
class Reference:
    """A use of a named thing (function, event, error, retry, auth, sub-flow)."""

    kind: str
    name: str
    where: str
    pointer: str


@dataclass(frozen=True)
class Expression:
    """A string the runtime evaluates as an expression.

    ``optional`` marks places (function arguments) where the runtime takes a string that does
    not compile as plain text; those are checked only when written as ``${ ... }``.
    """

    text: str
    where: str
    pointer: str
    optional: bool = False


@dataclass(frozen=True)
class FileReference:
    """A resource file the definition names (a schema, or a file of definitions)."""

    uri: str
    what: str
    pointer: str
    # "schema" for data schemas, "list:<key>" for a file holding a top-level list such as
    # functions, "any" for a file that only has to exist.
    usage: str


@dataclass
class Definitions:
    """Names defined by one top-level list; ``known`` is False when they live in a file."""

    names: list[str] = field(default_factory=list)
    known: bool = True


@dataclass
class Workflow:
    id: str | None
    expression_lang: str
    start: str | None
    start_pointer: str
    states: list[State] = field(default_factory=list)
    functions: list[Function] = field(default_factory=list)
    functions_known: bool = True
    defined: dict[str, Definitions] = field(default_factory=dict)
    references: list[Reference] = field(default_factory=list)
    expressions: list[Expression] = field(default_factory=list)
    files: list[FileReference] = field(default_factory=list)
    # workflow-uri-definitions: alias -> URI usable as `alias#operationId` in functions.
    uri_aliases: dict[str, str] = field(default_factory=dict)
    # False when the states could not be read well enough to check the graph.
    states_readable: bool = True

    @property
    def uses_jq(self) -> bool:
        return self.expression_lang.strip().lower() == "jq"
