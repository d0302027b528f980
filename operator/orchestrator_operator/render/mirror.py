"""What a workflow found in a git source becomes: a Workflow, and ConfigMaps for its large files.

Small resource files are written inline in the Workflow. Files that are large, or that would
make the Workflow large, go to ConfigMaps named after the Workflow and referenced through
`configMapFiles`, because a Workflow is stored whole in etcd (1.5 MiB per object) and read
whole by every watch: the rules below keep a mirrored Workflow under about 800 KiB.

The manifests carry no commit: a new commit that leaves a folder unchanged renders the same
manifests, so that only the Workflows whose files changed are written. The commit is added as
an annotation when a Workflow is applied.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from orchestrator_operator import API_GROUP, API_VERSION
from orchestrator_operator.models.installation import KIND as INSTALLATION_KIND
from orchestrator_operator.models.workflow import KIND, MAX_FILE_BYTES
from orchestrator_operator.render.files import CONFIG_MAP_BUDGET
from orchestrator_operator.render.names import (
    INSTALLATION_LABEL,
    LABEL_PREFIX,
    child_name,
    folder_suffix,
    split_suffix,
)
from orchestrator_operator.render.repository import (
    INVALID_WORKFLOW,
    DiscoveredWorkflow,
    Discovery,
    RepositoryProblem,
)

SOURCE_LABEL: Final = f"{LABEL_PREFIX}/source"
INSTALLATION_NAMESPACE_LABEL: Final = f"{LABEL_PREFIX}/installation-namespace"
# On ConfigMaps: the mirrored Workflow that mounts them.
SOURCE_WORKFLOW_LABEL: Final = f"{LABEL_PREFIX}/source-workflow"
SOURCE_PATH_ANNOTATION: Final = f"{LABEL_PREFIX}/source-path"
SOURCE_COMMIT_ANNOTATION: Final = f"{LABEL_PREFIX}/source-commit"

# A file larger than this goes to a ConfigMap; so do the largest files when the inline ones
# would pass INLINE_BUDGET, or when the definition, properties and inline files together
# would pass WORKFLOW_BUDGET.
INLINE_FILE_LIMIT: Final = 64 * 1024
INLINE_BUDGET: Final = 256 * 1024
WORKFLOW_BUDGET: Final = 768 * 1024

_CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_MAX_SECRET_KEYS = 256
# What WorkflowSpec.files accepts.
_MAX_INLINE_FILES = 512
_SECRET_SUFFIX = "secrets"


@dataclass(frozen=True)
class MirrorTarget:
    """Where the Workflows of one source go, and whom they belong to."""

    installation: str
    installation_namespace: str
    installation_uid: str
    source: str
    namespace: str

    @property
    def owned(self) -> bool:
        """Owner references cannot cross namespaces; elsewhere, labels alone mark ownership."""
        return self.namespace == self.installation_namespace


@dataclass(frozen=True)
class MirroredWorkflow:
    name: str
    folder: str
    # ConfigMaps first: the Workflow names them, so they must exist before it is applied.
    config_maps: tuple[dict[str, Any], ...]
    workflow: dict[str, Any]


def secret_name(workflow_name: str) -> str:
    """The Secret a mirrored workflow reads the keys of its secret.properties from.

    `<workflow>-secrets`, the name `kn workflow gen-manifest` gives it, so that a Secret made
    for that tool serves the mirror too.
    """
    return child_name(workflow_name, _SECRET_SUFFIX)


def source_labels(target: MirrorTarget) -> dict[str, str]:
    return {
        INSTALLATION_LABEL: target.installation,
        INSTALLATION_NAMESPACE_LABEL: target.installation_namespace,
        SOURCE_LABEL: target.source,
        "app.kubernetes.io/part-of": "orchestrator",
    }


def source_selector(target: MirrorTarget) -> str:
    labels = source_labels(target)
    keys = (INSTALLATION_LABEL, INSTALLATION_NAMESPACE_LABEL, SOURCE_LABEL)
    return ",".join(f"{key}={labels[key]}" for key in keys)


def render_mirror(
    discovered: DiscoveredWorkflow, target: MirrorTarget
) -> MirroredWorkflow | RepositoryProblem:
    """The Workflow and ConfigMaps of one discovered workflow, or why it cannot be mirrored."""
    texts = _texts(discovered)
    if isinstance(texts, RepositoryProblem):
        return texts
    secrets = _secrets(discovered)
    if isinstance(secrets, RepositoryProblem):
        return secrets
    split = _split_files(discovered, texts)
    if isinstance(split, RepositoryProblem):
        return split
    inline, moved = split

    config_maps = _config_maps(discovered.name, moved, target)
    spec: dict[str, Any] = {
        "definition": discovered.definition,
        "files": [{"path": path, "content": inline[path]} for path in sorted(inline)],
        "configMapFiles": [
            {"configMap": cm["metadata"]["name"], "path": folder} for folder, cm in config_maps
        ],
        "secrets": secrets,
        "installationRef": _installation_ref(target),
    }
    if discovered.properties is not None:
        spec["properties"] = discovered.properties
    workflow = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "metadata": {
            **_metadata(discovered.name, target),
            "annotations": {SOURCE_PATH_ANNOTATION: discovered.folder},
        },
        "spec": {key: value for key, value in spec.items() if value != []},
    }
    return MirroredWorkflow(
        name=discovered.name,
        folder=discovered.folder,
        config_maps=tuple(cm for _, cm in config_maps),
        workflow=workflow,
    )


def render_discovery(
    discovery: Discovery, target: MirrorTarget
) -> tuple[list[MirroredWorkflow], list[RepositoryProblem]]:
    """Everything a discovered repository becomes, and every problem found on the way."""
    mirrored: list[MirroredWorkflow] = []
    problems = list(discovery.problems)
    for workflow in discovery.workflows:
        rendered = render_mirror(workflow, target)
        if isinstance(rendered, RepositoryProblem):
            problems.append(rendered)
        else:
            mirrored.append(rendered)
    return mirrored, problems


def _texts(discovered: DiscoveredWorkflow) -> dict[str, str] | RepositoryProblem:
    texts: dict[str, str] = {}
    for path, content in discovered.files.items():
        try:
            texts[path] = content.decode("utf-8")
        except UnicodeDecodeError:
            return _problem(discovered, f"the resource file {path!r} is not UTF-8 text")
        if len(content) > min(MAX_FILE_BYTES, CONFIG_MAP_BUDGET):
            return _problem(
                discovered,
                f"the resource file {path!r} holds {len(content):,} bytes; a ConfigMap holds at"
                f" most {CONFIG_MAP_BUDGET:,}: build an image with it (profile gitops) instead",
            )
    return texts


def _secrets(discovered: DiscoveredWorkflow) -> list[dict[str, Any]] | RepositoryProblem:
    if not discovered.secret_keys:
        return []
    invalid = [key for key in discovered.secret_keys if not _SECRET_KEY.match(key)]
    if invalid:
        return _problem(
            discovered,
            f"secret.properties lists {', '.join(map(repr, invalid[:5]))}, which cannot name an"
            " environment variable",
        )
    if len(discovered.secret_keys) > _MAX_SECRET_KEYS:
        return _problem(discovered, f"secret.properties lists more than {_MAX_SECRET_KEYS} keys")
    return [{"secretName": secret_name(discovered.name), "keys": list(discovered.secret_keys)}]


def _split_files(
    discovered: DiscoveredWorkflow, texts: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]] | RepositoryProblem:
    """Resource files into those written inline and those moved to ConfigMaps.

    Smallest first, so that the many small schemas stay inline and the few large OpenAPI
    files move; sorted by size then path, so the split is the same on every sync.
    """
    fixed = len(json.dumps(discovered.definition)) + len(discovered.properties or "")
    if fixed > WORKFLOW_BUDGET:
        return _problem(
            discovered,
            f"the definition and application.properties hold {fixed:,} bytes; a mirrored"
            f" Workflow keeps them within {WORKFLOW_BUDGET:,}",
        )
    budget = min(INLINE_BUDGET, WORKFLOW_BUDGET - fixed)
    inline: dict[str, str] = {}
    moved: dict[str, str] = {}
    used = 0
    for path in sorted(texts, key=lambda p: (len(discovered.files[p]), p)):
        size = len(discovered.files[path]) + len(path)
        fits = size <= INLINE_FILE_LIMIT and used + size <= budget
        if fits and len(inline) < _MAX_INLINE_FILES:
            inline[path] = texts[path]
            used += size
        elif _CONFIG_MAP_KEY.match(posixpath.basename(path)):
            moved[path] = texts[path]
        else:
            return _problem(
                discovered,
                f"the resource file {path!r} is too large to write inline, and its name"
                " cannot be a ConfigMap key (letters, digits, '-', '_' and '.')",
            )
    return inline, moved


def _config_maps(
    workflow_name: str, files: Mapping[str, str], target: MirrorTarget
) -> list[tuple[str, dict[str, Any]]]:
    """(folder, ConfigMap) pairs: the moved files of each folder, split to fit a ConfigMap."""
    by_folder: dict[str, dict[str, str]] = {}
    for path in sorted(files):
        by_folder.setdefault(posixpath.dirname(path), {})[posixpath.basename(path)] = files[path]
    made: list[tuple[str, dict[str, Any]]] = []
    for folder, folder_files in by_folder.items():
        bins: list[dict[str, str]] = [{}]
        used = 0
        for key, content in folder_files.items():
            size = len(content.encode()) + len(key)
            if bins[-1] and used + size > CONFIG_MAP_BUDGET:
                bins.append({})
                used = 0
            bins[-1][key] = content
            used += size
        for index, data in enumerate(bins, start=1):
            suffixes = ["source", *folder_suffix(folder)]
            if index > 1:
                suffixes.extend(split_suffix(folder, index))
            name = child_name(workflow_name, *suffixes)
            metadata = _metadata(name, target)
            metadata["labels"][SOURCE_WORKFLOW_LABEL] = workflow_name
            made.append(
                (
                    folder,
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data},
                )
            )
    return made


def _installation_ref(target: MirrorTarget) -> dict[str, str]:
    if target.owned:
        return {"name": target.installation}
    return {"name": target.installation, "namespace": target.installation_namespace}


def _metadata(name: str, target: MirrorTarget) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": target.namespace,
        "labels": source_labels(target),
    }
    if target.owned:
        metadata["ownerReferences"] = [
            {
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": INSTALLATION_KIND,
                "name": target.installation,
                "uid": target.installation_uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return metadata


def _problem(discovered: DiscoveredWorkflow, message: str) -> RepositoryProblem:
    return RepositoryProblem(
        INVALID_WORKFLOW,
        discovered.folder,
        f"{discovered.folder or '.'}: {message}",
        name=discovered.name,
    )
