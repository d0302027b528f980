"""docs/reference.md: every field of every resource, written from the CRDs the models generate.

The reference is made from the same schemas the API server enforces, so a field, a default, a
bound or a validation rule cannot be documented differently from how it behaves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator_operator import API_GROUP, API_VERSION
from orchestrator_operator.models.crd import ResourceDefinition, build_crd
from orchestrator_operator.models.registry import ALL

HEADER = """\
<!-- Generated from the models by hack/generate.py; do not edit by hand. -->
# API reference

Every field of the resources of `{group}/{version}`, as their CRDs declare them. A
field marked *required* must be set; a default is filled in by the API server when the field
is left out, so it need not be written in git. Rules are checked by the API server when an
object is created or changed, with the message shown here.

Use the full resource names (`workflows.{group}`) in scripts: other projects register
a `Workflow` kind too.
"""


def reference_markdown(definitions: list[ResourceDefinition] | None = None) -> str:
    sections = [HEADER.format(group=API_GROUP, version=API_VERSION)]
    sections.append(_contents(definitions or ALL))
    for definition in definitions or ALL:
        sections.append(_resource(definition))
    return "\n".join(sections).rstrip() + "\n"


def _contents(definitions: list[ResourceDefinition]) -> str:
    lines = ["## Contents", ""]
    for definition in definitions:
        lines.append(f"- [{definition.kind}](#{definition.kind.lower()})")
    return "\n".join(lines) + "\n"


def _resource(definition: ResourceDefinition) -> str:
    crd = build_crd(definition)
    version = crd["spec"]["versions"][0]
    root = version["schema"]["openAPIV3Schema"]
    names = crd["spec"]["names"]
    lines = [
        f"## {definition.kind}",
        "",
        _one_line(definition.description),
        "",
        f"- API version: `{API_GROUP}/{API_VERSION}`, namespaced",
        f"- Resource: `{names['plural']}.{API_GROUP}`; short names:"
        f" {', '.join(f'`{name}`' for name in names.get('shortNames', []))};"
        f" categories: {', '.join(f'`{name}`' for name in names.get('categories', []))}",
        "- Status subresource: yes (the operator writes only `status`, never `spec`)",
        "",
    ]
    rules = root.get("x-kubernetes-validations", [])
    if rules:
        lines += ["Rules on the whole resource:", ""]
        lines += [f"- {_cell(rule['message'])}" for rule in rules]
        lines.append("")
    lines += ["`kubectl get` columns:", "", "| Column | From | Shown |", "| --- | --- | --- |"]
    for column in version.get("additionalPrinterColumns", []):
        shown = "with `-o wide`" if column.get("priority") else "always"
        lines.append(f"| {column['name']} | `{column['jsonPath']}` | {shown} |")
    lines.append("")
    for part in ("spec", "status"):
        schema = root["properties"][part]
        lines += [f"### {definition.kind} {part}", ""]
        if part == "status":
            lines += [
                "Written by the operator. Conditions follow `metav1.Condition`; `Ready` sums"
                " them up (docs/operations.md lists their reasons).",
                "",
            ]
        lines += _field_table(part, schema)
        lines.append("")
    return "\n".join(lines)


def _field_table(prefix: str, schema: Mapping[str, Any]) -> list[str]:
    rows = ["| Field | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for path, node, required in _fields(prefix, schema):
        rows.append(
            f"| `{path}` | {_type(node, required)} | {_default(node)} | {_description(node)} |"
        )
    if len(rows) == 2:
        rows.append("| (no fields) | | | |")
    return rows


def _fields(path: str, schema: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    required = set(schema.get("required", []))
    for name, node in schema.get("properties", {}).items():
        field_path = f"{path}.{name}"
        yield field_path, node, name in required
        yield from _children(field_path, node)


def _children(path: str, node: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    if node.get("type") == "object":
        yield from _fields(path, node)
        values = node.get("additionalProperties")
        if isinstance(values, Mapping) and values.get("properties"):
            yield from _fields(f"{path}.<key>", values)
    elif node.get("type") == "array":
        items = node.get("items") or {}
        if items.get("properties"):
            yield from _fields(f"{path}[]", items)


def _type(node: Mapping[str, Any], required: bool) -> str:
    if node.get("x-kubernetes-int-or-string"):
        kind = "integer or string"
    elif node.get("type") == "array":
        items = node.get("items") or {}
        kind = f"list of {_plain_type(items)}"
        if node.get("x-kubernetes-list-type") == "map":
            keys = ", ".join(node.get("x-kubernetes-list-map-keys", []))
            kind += f", one per {keys}"
    elif node.get("type") == "object" and isinstance(node.get("additionalProperties"), Mapping):
        kind = f"map of {_plain_type(node['additionalProperties'])}"
    else:
        kind = _plain_type(node)
    details = [kind, *_bounds(node)]
    if required:
        details.append("*required*")
    return ", ".join(details)


def _plain_type(node: Mapping[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "integer or string"
    kind = str(node.get("type", "any"))
    if kind == "object" and node.get("x-kubernetes-preserve-unknown-fields"):
        return "object (free-form)"
    if node.get("format"):
        return f"{kind} ({node['format']})"
    return kind


def _bounds(node: Mapping[str, Any]) -> list[str]:
    bounds: list[str] = []
    if "enum" in node:
        bounds.append("one of " + ", ".join(f"`{value}`" for value in node["enum"]))
    for low, high, unit in (
        ("minLength", "maxLength", "characters"),
        ("minItems", "maxItems", "items"),
        ("minimum", "maximum", ""),
    ):
        if low in node and high in node:
            bounds.append(f"{node[low]} to {node[high]} {unit}".rstrip())
        elif high in node:
            bounds.append(f"at most {node[high]} {unit}".rstrip())
        elif low in node and node[low] == 1 and unit:
            bounds.append("not empty")
        elif low in node:
            bounds.append(f"at least {node[low]} {unit}".rstrip())
    if "pattern" in node:
        bounds.append(f"matches `{_cell(node['pattern'])}`")
    return bounds


def _default(node: Mapping[str, Any]) -> str:
    if "default" not in node:
        return ""
    return f"`{_cell(json.dumps(node['default']))}`"


def _description(node: Mapping[str, Any]) -> str:
    text = _one_line(node.get("description", ""))
    rules = [rule["message"] for rule in node.get("x-kubernetes-validations", [])]
    if rules:
        text = (text + " " if text else "") + "Rules: " + "; ".join(rules) + "."
    return _cell(text)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return _one_line(text).replace("|", "\\|")
