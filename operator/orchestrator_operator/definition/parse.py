"""Turn the bytes of a definition or resource file into plain JSON-like data, within bounds.

Every document comes out as dicts with string keys, lists, strings, numbers, booleans and
None, so that the checks, the renderer and ``json.dumps`` can take it as it is. Parsing is
bounded in size, depth and number of values so that hostile input (a huge file, a YAML alias
bomb) fails fast with a message instead of holding the operator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

from orchestrator_operator.definition.problems import INVALID_DEFINITION, DefinitionError, Problem

# A definition reaches the runtime through a ConfigMap, whose data cannot pass 1 MiB.
MAX_DEFINITION_BYTES: Final = 1024 * 1024
# Resource files are only read to be checked; OpenAPI files of a few MiB are real.
MAX_RESOURCE_BYTES: Final = 8 * 1024 * 1024
# Real definitions nest about 15 levels. Written out, a value takes two bytes at least, so a
# document that holds many more values than its size in bytes repeats YAML aliases: a few are
# fine, an alias bomb is not.
MAX_DEPTH: Final = 128
MAX_VALUES: Final = 2_000_000
MIN_VALUES: Final = 100_000

DEFINITION_SUFFIXES: Final = (".sw.json", ".sw.yaml", ".sw.yml")


class DocumentError(ValueError):
    """A document that does not parse, with a message that says where and why."""


def is_definition_name(name: str) -> bool:
    """Whether a file name is that of a workflow definition (``*.sw.json|yaml|yml``)."""
    return name.lower().endswith(DEFINITION_SUFFIXES)


def parse_definition(content: bytes | str, filename: str) -> dict[str, Any]:
    """Parse a definition, JSON or YAML by its extension (or its first character).

    Raises DefinitionError with an InvalidDefinition problem when the content does not parse
    or is not a mapping. Whether the mapping is a valid workflow is for validate_definition.
    """
    try:
        document = load_document(content, filename, max_bytes=MAX_DEFINITION_BYTES)
    except DocumentError as error:
        raise DefinitionError(Problem(INVALID_DEFINITION, f"{filename}: {error}")) from None
    if not isinstance(document, dict):
        raise DefinitionError(
            Problem(
                INVALID_DEFINITION,
                f"{filename}: the definition is {describe(document)}, not a mapping "
                "with id, start and states",
            )
        )
    return document


def load_document(content: bytes | str, filename: str, *, max_bytes: int) -> Any:
    """Parse a JSON or YAML document into plain data, or raise DocumentError."""
    size = len(content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content)
    if size > max_bytes:
        raise DocumentError(f"is {size:,} bytes, more than the {max_bytes:,} allowed")
    text = _decode(content)
    if not text.strip():
        raise DocumentError("is empty")

    lowered = filename.lower()
    if lowered.endswith(".json"):
        raw = _load_json(text)
    elif lowered.endswith((".yaml", ".yml")):
        raw = _load_yaml(text)
    elif text.lstrip().startswith(("{", "[")):
        try:
            raw = _load_json(text)
        except DocumentError:
            raw = _load_yaml(text)
    else:
        raw = _load_yaml(text)

    return _plain(raw, min(MAX_VALUES, max(MIN_VALUES, 4 * size)))


def describe(value: Any) -> str:
    """A few words for the JSON type of a value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _decode(content: bytes | str) -> str:
    if isinstance(content, str):
        return content
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentError(f"is not UTF-8 text (byte {error.start})") from None


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; the runtime's JSON parser does not.
    raise DocumentError(f"is not valid JSON: {name} is not a JSON value")


def _load_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise DocumentError(
            f"is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:
        raise DocumentError(f"nests deeper than {MAX_DEPTH} levels") from None


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """A safe loader that reads YAML the way the runtime's Jackson YAML parser does.

    Dates stay text (Jackson has no timestamp type) and mapping keys keep their text
    (``200:`` is the key "200", not the number 200).
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key: Any = key_node.value
            else:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, str):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        "found a key that is not text",
                        key_node.start_mark,
                    )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


def _load_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except yaml.MarkedYAMLError as error:
        where = ""
        if error.problem_mark is not None:
            mark = error.problem_mark
            where = f" (line {mark.line + 1}, column {mark.column + 1})"
        problem = error.problem or error.context or "malformed"
        raise DocumentError(f"is not valid YAML: {problem}{where}") from None
    except yaml.YAMLError as error:
        raise DocumentError(f"is not valid YAML: {error}") from None
    except RecursionError:
        raise DocumentError(f"nests deeper than {MAX_DEPTH} levels") from None


def _plain(root: Any, budget: int) -> Any:
    """Copy parsed data into fresh plain containers, within depth and value bounds.

    Copying also unshares YAML aliases, so that no later walk can be fooled into exponential
    work by a small document; the value budget stops an alias bomb here.
    """
    result: list[Any] = [None]
    # Each entry: source value, target container, key or index in it, depth.
    stack: list[tuple[Any, Any, Any, int]] = [(root, result, 0, 0)]
    count = 0
    while stack:
        value, parent, slot, depth = stack.pop()
        count += 1
        if count > budget:
            raise DocumentError(
                f"holds more than {budget:,} values, too many for its size "
                "(YAML aliases that expand too far?)"
            )
        if depth > MAX_DEPTH:
            raise DocumentError(f"nests deeper than {MAX_DEPTH} levels")
        if isinstance(value, Mapping):
            copy: dict[str, Any] = {}
            parent[slot] = copy
            for key, item in value.items():
                copy[key] = None
                stack.append((item, copy, key, depth + 1))
        elif isinstance(value, list):
            items: list[Any] = [None] * len(value)
            parent[slot] = items
            for index, item in enumerate(value):
                stack.append((item, items, index, depth + 1))
        elif value is None or isinstance(value, str | bool | int | float):
            parent[slot] = value
        else:
            raise DocumentError(f"holds {describe(value)}, which is not a JSON value")
    return result[0]


@dataclass(frozen=True)
class DefinitionInfo:
    """The fields that identify a definition, as the runtime reads them.

    ``name`` falls back to the id as the runtime's does; ``version`` and ``spec_version`` are
    None when absent; ``expression_lang`` defaults to jq.
    """

    id: str
    name: str
    version: str | None
    description: str | None
    expression_lang: str
    spec_version: str | None


def read_info(definition: Mapping[str, Any]) -> DefinitionInfo:
    """Read the identifying fields of a parsed definition. Never raises."""
    if not isinstance(definition, Mapping):
        return DefinitionInfo("", "", None, None, "jq", None)
    workflow_id = _text(definition.get("id")) or ""
    return DefinitionInfo(
        id=workflow_id,
        name=_text(definition.get("name")) or workflow_id,
        version=_text(definition.get("version")),
        description=_text(definition.get("description")),
        expression_lang=_text(definition.get("expressionLang")) or "jq",
        spec_version=_text(definition.get("specVersion")),
    )


def _text(value: Any) -> str | None:
    # YAML turns `version: 1.0` into a number; the runtime reads it back as text.
    # Limitation: an unquoted `version: 1.10` comes back as "1.1"; quoting keeps it whole.
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None
