"""The CRD files as they are written to crds/, so that a test can tell when they are stale."""

from __future__ import annotations

import yaml

from orchestrator_operator.models.crd import build_crd
from orchestrator_operator.models.registry import ALL

HEADER = "# Generated from the models by hack/generate.py; do not edit by hand.\n"


def crd_files() -> dict[str, str]:
    """File name -> YAML text of every CRD."""
    return {
        f"{definition.plural}.yaml": HEADER
        + yaml.safe_dump(build_crd(definition), sort_keys=False, width=100)
        for definition in ALL
    }
