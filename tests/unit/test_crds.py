"""The CRDs in crds/ are what the models generate, and say what the API promises."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from orchestrator_operator.models.installation import InstallationSpec
from orchestrator_operator.models.manifests import crd_files
from orchestrator_operator.reconcile.apply import spec_errors

CRDS = Path(__file__).resolve().parents[2] / "crds"


def test_crd_files_are_generated_from_the_models() -> None:
    generated = crd_files()
    on_disk = {path.name: path.read_text() for path in CRDS.glob("*.yaml")}
    assert on_disk == generated, "crds/ is stale: run hack/generate.py"


def _workflow_crd() -> dict[str, Any]:
    return yaml.safe_load(crd_files()["workflows.yaml"])


def _walk(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, dict):
        found.append((path, schema))
        for key, value in schema.get("properties", {}).items():
            found.extend(_walk(value, f"{path}.{key}"))
        if "items" in schema:
            found.extend(_walk(schema["items"], f"{path}[]"))
        if isinstance(schema.get("additionalProperties"), dict):
            found.extend(_walk(schema["additionalProperties"], f"{path}{{}}"))
    return found


def test_workflow_crd_names_avoid_the_short_names_of_other_projects() -> None:
    names = _workflow_crd()["spec"]["names"]
    assert names["shortNames"] == ["swf"]
    assert names["categories"] == ["orchestrator"]
    assert not {"workflow", "workflows", "wf"} & set(names["shortNames"])


def test_workflow_schema_is_structural() -> None:
    schema = _workflow_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node, path
        assert "anyOf" not in node, path
        assert "title" not in node, path
        typed = (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        )
        assert typed, f"{path} has no type"


def test_workflow_crd_has_status_subresource_and_printer_columns() -> None:
    version = _workflow_crd()["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    assert columns[:2] == ["Ready", "Reason"]
    assert {"Profile", "URL", "Age"} <= set(columns)


def test_workflow_schema_bounds_the_name_and_requires_an_image_for_gitops() -> None:
    schema = _workflow_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    root_rules = [rule["rule"] for rule in schema["x-kubernetes-validations"]]
    assert "self.metadata.name.size() <= 49" in root_rules
    spec_rules = [rule["rule"] for rule in schema["properties"]["spec"]["x-kubernetes-validations"]]
    assert any("gitops" in rule and "image" in rule for rule in spec_rules)


def test_workflow_schema_defaults() -> None:
    spec = _workflow_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["profile"]["default"] == "dev"
    assert spec["properties"]["profile"]["enum"] == ["dev", "gitops"]
    assert spec["properties"]["replicas"]["default"] == 1
    assert spec["required"] == ["definition"]


def test_crds_stay_far_below_the_client_side_apply_limit() -> None:
    for name, text in crd_files().items():
        assert len(text.encode()) < 128 * 1024, name


def _installation_crd() -> dict[str, Any]:
    return yaml.safe_load(crd_files()["orchestratorinstances.yaml"])


def _installation_schema() -> dict[str, Any]:
    version = _installation_crd()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_installation_crd_names() -> None:
    crd = _installation_crd()
    assert crd["metadata"]["name"] == "orchestratorinstances.orchestrator.dev"
    names = crd["spec"]["names"]
    assert names["kind"] == "OrchestratorInstance"
    assert names["shortNames"] == ["orch"]
    assert names["categories"] == ["orchestrator"]


def test_installation_schema_is_structural() -> None:
    for path, node in _walk(_installation_schema()):
        assert "$ref" not in node, path
        assert "anyOf" not in node, path
        typed = (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        )
        assert typed, f"{path} has no type"


def test_installation_printer_columns_and_status_subresource() -> None:
    version = _installation_crd()["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert list(columns)[:2] == ["Ready", "Reason"]
    assert columns["Data Index"] == ".status.endpoints.dataIndex"
    assert columns["Workflows"] == ".status.workflows.summary"
    assert "Age" in columns


def test_installation_schema_bounds_names_and_validates_what_it_can() -> None:
    schema = _installation_schema()
    root_rules = [rule["rule"] for rule in schema["x-kubernetes-validations"]]
    assert "self.metadata.name.size() <= 38" in root_rules
    spec = schema["properties"]["spec"]
    data_index = spec["properties"]["dataIndex"]
    assert data_index["properties"]["replicas"]["default"] == 1
    assert any("externalUrl" in r["rule"] for r in data_index["x-kubernetes-validations"])
    assert "replicas" not in spec["properties"]["jobsService"]["properties"]
    postgres = data_index["properties"]["persistence"]["properties"]["postgresql"]
    assert postgres["required"] == ["serviceRef", "secretRef"]
    assert postgres["properties"]["serviceRef"]["properties"]["port"]["default"] == 5432
    secret = postgres["properties"]["secretRef"]["properties"]
    assert secret["passwordKey"]["default"] == "POSTGRESQL_PASSWORD"
    namespaces = spec["properties"]["workflowNamespaces"]
    assert namespaces["x-kubernetes-list-type"] == "set"
    assert namespaces["x-kubernetes-validations"]
    assert any("backstageNamespace" in r["rule"] for r in spec["x-kubernetes-validations"])
    assert spec["properties"]["sources"]["x-kubernetes-list-map-keys"] == ["name"]


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://di.example", False),
        ("https://di.example:8443/base", False),
        ("https://di.example/path/with@sign", False),
        ("http://user:secret@di.example", True),
        ("https://token@di.example/base", True),
        ("http://:secret@di.example:80", True),
    ],
)
def test_an_external_url_with_a_user_or_password_is_refused(url: str, refused: bool) -> None:
    spec = _installation_schema()["properties"]["spec"]
    for service in ("dataIndex", "jobsService"):
        rules = spec["properties"][service]["properties"]["externalUrl"]["x-kubernetes-validations"]
        rule = next(r for r in rules if "password" in r["message"])
        # The rule is `!self.matches('<pattern>')`; CEL's RE2 and Python agree on this pattern.
        pattern = rule["rule"].removeprefix("!self.matches('").removesuffix("')")
        assert bool(re.search(pattern, url)) is refused
    if refused:
        with pytest.raises(ValidationError) as error:
            InstallationSpec.model_validate({"dataIndex": {"enabled": False, "externalUrl": url}})
        assert "user name or password" in str(error.value)
        assert "secret" not in spec_errors(error.value)
    else:
        InstallationSpec.model_validate({"jobsService": {"enabled": False, "externalUrl": url}})
