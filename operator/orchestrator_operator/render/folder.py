"""A Workflow resource made from a workflow folder as it lies in a repository.

Used wherever a folder on disk becomes a Workflow: the git mirror, the quick start, the
benchmark and the tests. The resource carries the definition and its resource files inline;
the properties verbatim; the keys of secret.properties as the keys expected from a Secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orchestrator_operator import API_GROUP, API_VERSION
from orchestrator_operator.definition.folder import WorkflowFolder
from orchestrator_operator.models.workflow import KIND, MAX_NAME_LENGTH

_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


class UnusableWorkflowName(ValueError):
    """A definition id that cannot name a Workflow."""


def workflow_name(workflow_id: str) -> str:
    """The Workflow's name for a definition id: the id in lower case, when that is a valid name.

    The id is not rewritten beyond its case: two ids that differ only in punctuation must not
    end up as one resource.
    """
    name = workflow_id.lower()
    if len(name) > MAX_NAME_LENGTH or not _NAME.match(name):
        raise UnusableWorkflowName(
            f"definition id {workflow_id!r} gives the name {name!r}, which is not a DNS label of"
            f" at most {MAX_NAME_LENGTH} characters starting with a letter"
        )
    return name


def secret_name_for(name: str) -> str:
    """The Secret a mirrored workflow reads the keys of its secret.properties from."""
    return f"{name}-secrets"


def workflow_manifest(
    folder: WorkflowFolder,
    *,
    namespace: str | None = None,
    name: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    installation: Mapping[str, str] | None = None,
    secret_name: str | None = None,
) -> dict[str, Any]:
    """The Workflow for a folder; raises UnusableWorkflowName when its id cannot name one."""
    resource_name = name or workflow_name(str(folder.definition.get("id", "")))
    metadata: dict[str, Any] = {"name": resource_name}
    if namespace:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)

    spec: dict[str, Any] = {"definition": folder.definition}
    if folder.files:
        spec["files"] = [
            {"path": path, "content": content.decode("utf-8")}
            for path, content in sorted(folder.files.items())
        ]
    if folder.properties is not None:
        spec["properties"] = folder.properties
    if folder.secret_keys:
        spec["secrets"] = [
            {
                "secretName": secret_name or secret_name_for(resource_name),
                "keys": list(folder.secret_keys),
            }
        ]
    if installation:
        spec["installationRef"] = dict(installation)
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "metadata": metadata,
        "spec": spec,
    }
