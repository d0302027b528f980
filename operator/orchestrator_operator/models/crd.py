"""CustomResourceDefinitions generated from the models, which are their single source.

pydantic writes JSON Schema; Kubernetes wants a structural OpenAPI v3 schema: no references,
no `anyOf` standing for optional fields, `x-kubernetes-int-or-string` for quantities, and
`x-kubernetes-preserve-unknown-fields` for the few free-form objects. This module translates
one into the other and adds what only a CRD has: names, printer columns, CEL rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from orchestrator_operator import API_GROUP, API_VERSION

# Keywords of JSON Schema that have no meaning, or no place, in a structural schema.
_DROPPED_KEYWORDS = {"title", "$defs", "discriminator"}


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0

    def to_dict(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True)
class ResourceDefinition:
    kind: str
    plural: str
    singular: str
    short_names: list[str]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    description: str
    categories: list[str] = field(default_factory=lambda: ["orchestrator"])
    root_rules: list[dict[str, str]] = field(default_factory=list)
    spec_rules: list[dict[str, str]] = field(default_factory=list)
    printer_columns: list[PrinterColumn] = field(default_factory=list)


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's schema, by alias, as Kubernetes accepts it in a CRD."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.get("$defs", {})
    converted: dict[str, Any] = _convert(schema, definitions)
    return converted


def _convert(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node

    if "$ref" in node:
        target = definitions[node["$ref"].rsplit("/", 1)[-1]]
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return _convert({**target, **siblings}, definitions)

    if "anyOf" in node:
        node = _collapse_any_of(node)
        if "anyOf" in node:
            raise ValueError(f"no structural form for anyOf: {node['anyOf']}")
        return _convert(node, definitions)

    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS:
            continue
        if key == "default" and value in (None, [], {}):
            # An empty default would be written into every stored object; absent means the same.
            continue
        if key == "properties":
            converted[key] = {name: _convert(prop, definitions) for name, prop in value.items()}
        elif key == "additionalProperties" and value is True:
            converted["x-kubernetes-preserve-unknown-fields"] = True
        else:
            converted[key] = _convert(value, definitions)

    if converted.get("type") == "object" and converted.get("additionalProperties") == {}:
        del converted["additionalProperties"]
        converted["x-kubernetes-preserve-unknown-fields"] = True
    return converted


def _collapse_any_of(node: dict[str, Any]) -> dict[str, Any]:
    branches = [branch for branch in node["anyOf"] if branch.get("type") != "null"]
    rest = {key: value for key, value in node.items() if key != "anyOf"}
    types = sorted(branch.get("type", "") for branch in branches)
    if types == ["integer", "string"]:
        return {**rest, "x-kubernetes-int-or-string": True}
    if len(branches) == 1:
        return {**branches[0], **rest}
    return node


def build_crd(definition: ResourceDefinition) -> dict[str, Any]:
    spec_schema = structural_schema(definition.spec_model)
    if definition.spec_rules:
        spec_schema["x-kubernetes-validations"] = definition.spec_rules
    spec_schema.pop("description", None)
    status_schema = structural_schema(definition.status_model)
    status_schema.pop("description", None)

    root: dict[str, Any] = {
        "type": "object",
        "description": definition.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if definition.root_rules:
        root["x-kubernetes-validations"] = definition.root_rules

    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{definition.plural}.{API_GROUP}",
            "labels": {"app.kubernetes.io/part-of": "orchestrator-operator"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": definition.kind,
                "listKind": f"{definition.kind}List",
                "plural": definition.plural,
                "singular": definition.singular,
                "shortNames": definition.short_names,
                "categories": definition.categories,
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        column.to_dict() for column in definition.printer_columns
                    ],
                }
            ],
        },
    }


def ready_columns() -> list[PrinterColumn]:
    """The columns every one of our resources shows first."""
    return [
        PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
        PrinterColumn("Reason", '.status.conditions[?(@.type=="Ready")].reason'),
    ]
