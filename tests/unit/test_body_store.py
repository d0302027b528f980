"""Workflow bodies are kept compressed and come back whole, less what no reconcile reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from orchestrator_operator.reconcile.bodies import BodyStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rhdh-serverless-workflows"


def _workflow_body() -> dict[str, Any]:
    definition = yaml.safe_load(
        (FIXTURES / "modify-vm-resources" / "modify-vm-resources.sw.yaml").read_text()
    )
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": "modify-vm-resources",
            "namespace": "team",
            "resourceVersion": "42",
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:definition": {}}}}],
        },
        "spec": {"definition": definition},
        "status": {"observedGeneration": 1},
    }


def test_a_body_comes_back_as_it_was_without_its_managed_fields() -> None:
    store = BodyStore()
    body = _workflow_body()

    store.put(("team", "modify-vm-resources"), body)

    back = store.get(("team", "modify-vm-resources"))
    assert back is not None
    assert "managedFields" not in back["metadata"]
    expected = {
        **body,
        "metadata": {k: v for k, v in body["metadata"].items() if k != "managedFields"},
    }
    assert back == expected
    assert store.get(("team", "other")) is None


def test_bodies_are_held_in_a_fraction_of_their_size() -> None:
    store = BodyStore()
    body = _workflow_body()
    store.put("one", body)

    assert store.size() < len(json.dumps(body)) / 3


def test_a_deleted_workflow_s_body_is_dropped() -> None:
    store = BodyStore()
    store.put("one", _workflow_body())
    store.pop("one")

    assert "one" not in store
    assert len(store) == 0
