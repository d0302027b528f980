"""Names and labels of the objects made for a Workflow.

Names are derived deterministically so that a resync finds the same objects; a name that would
pass 63 characters is cut and ends with a short hash of the full name, so two long names never
meet.
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 63
_HASH_LENGTH = 8

MANAGED_BY = "orchestrator-operator"
LABEL_PREFIX = "orchestrator.dev"
WORKFLOW_LABEL = f"{LABEL_PREFIX}/workflow"
INSTALLATION_LABEL = f"{LABEL_PREFIX}/installation"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
CHECKSUM_ANNOTATION = f"{LABEL_PREFIX}/checksum"


def short_hash(text: str, length: int = _HASH_LENGTH) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def child_name(base: str, *suffixes: str, limit: int = MAX_NAME) -> str:
    """`base-suffix...`, cut to `limit` characters with a hash of the whole when too long."""
    full = "-".join([base, *suffixes])
    if len(full) <= limit:
        return full
    digest = short_hash(full)
    return f"{full[: limit - len(digest) - 1].rstrip('-.')}-{digest}"


def slug(text: str) -> str:
    """A fragment of a DNS label made from any text: lower case, `-` for everything else."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "root"


def folder_suffix(folder: str) -> list[str]:
    """Name suffixes for the ConfigMap(s) of a folder's files, one-to-one with the folder.

    A slug alone is not: `a_b`, `a-b` and `A.B` would share one ConfigMap, and two Workflows'
    files would overwrite each other in a loop. A folder whose slug is not its own name gets a
    hash of the name too. The resources folder itself has no suffix.
    """
    if not folder:
        return []
    folder_slug = slug(folder)
    if folder_slug == folder:
        return [folder_slug]
    return [folder_slug, short_hash(folder, 6)]


def split_suffix(folder: str, index: int) -> list[str]:
    """The suffix of the `index`th ConfigMap of a folder too large for one; hashed, so that it
    cannot meet the name of a folder that happens to end in a number."""
    return [str(index), short_hash(f"{folder}#{index}", 6)]


def workflow_labels(workflow_name: str) -> dict[str, str]:
    """Labels of every object made for a Workflow; the first one is also the pod selector."""
    return {
        WORKFLOW_LABEL: workflow_name,
        "app.kubernetes.io/name": workflow_name,
        COMPONENT_LABEL: "workflow-runtime",
        "app.kubernetes.io/part-of": "orchestrator",
        MANAGED_BY_LABEL: MANAGED_BY,
    }


def workflow_selector(workflow_name: str) -> dict[str, str]:
    return {WORKFLOW_LABEL: workflow_name}
