"""Which workflows a repository holds: discovery over a checked-out tree, without a cluster.

A folder is a workflow folder when its resources root (the folder itself, or its
``src/main/resources`` in the Maven layout) holds exactly one definition at its top; its
sub-flows, schemas and specs come with it, as `definition.load_workflow_folder` reads them. A
folder whose resources root holds several definitions is a flat folder: each definition is a
workflow of its own, with the files that it refers to. Other folders are searched for workflow
folders, down to a few levels; hidden folders, build output and symbolic links are not entered.

The Kubernetes name of a workflow is its definition's id in lower case, as SonataFlow names
it; an id that is not a DNS-1035 label of at most 49 characters after lower-casing is
reported, and so are two folders whose ids give one name: neither of those is mirrored.

The only reads are those of `definition.folder` and the listing of folders, all inside the
repository: no symbolic link is followed and no file outside the repository is read.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from orchestrator_operator.definition import (
    MISSING_RESOURCE_FILE,
    DefinitionError,
    load_workflow_folder,
    read_info,
)
from orchestrator_operator.definition.folder import (
    MAVEN_RESOURCES,
    PROPERTIES_FILE,
    RESOURCE_SUFFIXES,
    SECRETS_FILE,
    SKIPPED_FOLDERS,
    property_keys,
)
from orchestrator_operator.definition.parse import (
    MAX_DEFINITION_BYTES,
    MAX_RESOURCE_BYTES,
    is_definition_name,
    parse_definition,
)
from orchestrator_operator.definition.problems import INVALID_WORKFLOW_FOLDER, Problem
from orchestrator_operator.definition.resources import Resources
from orchestrator_operator.definition.validate import missing_resource_paths
from orchestrator_operator.models.workflow import MAX_NAME_LENGTH

# Reasons of the problems discovery reports; the first two keep a folder from being mirrored.
INVALID_WORKFLOW: Final = "InvalidWorkflow"
DUPLICATE_WORKFLOW_ID: Final = "DuplicateWorkflowId"
SYMLINK_IGNORED: Final = "SymlinkIgnored"

NAME_PATTERN: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Real repositories put workflows one or two folders down; the bounds only stop a hostile tree.
MAX_DEPTH: Final = 6
MAX_FOLDERS: Final = 2000
_MAX_SECRETS_BYTES: Final = 1024 * 1024
_MAX_LOOKUP_ROUNDS: Final = 16


class DiscoveryError(Exception):
    """The source's path does not lead to a folder of the repository."""


@dataclass(frozen=True)
class DiscoveredWorkflow:
    """One workflow found in the repository, as it will be mirrored.

    ``folder`` is the workflow folder's path from the repository root ("" for the root
    itself); in a flat folder, the definition file's path. ``files`` maps resource paths,
    relative to the resources root, to content.
    """

    name: str
    workflow_id: str
    folder: str
    definition: dict[str, Any]
    files: dict[str, bytes]
    properties: str | None
    secret_keys: tuple[str, ...]


@dataclass(frozen=True)
class RepositoryProblem:
    """Something in the repository that its owner should fix.

    ``blocking`` problems keep the folder's workflow from being mirrored, and a Workflow
    mirrored from it before is left as it is; the others are warnings.
    """

    reason: str
    folder: str
    message: str
    blocking: bool = True
    name: str | None = None


@dataclass(frozen=True)
class Discovery:
    workflows: tuple[DiscoveredWorkflow, ...] = ()
    problems: tuple[RepositoryProblem, ...] = ()

    @property
    def kept_names(self) -> frozenset[str]:
        """Workflow names whose existing Workflows must be left untouched."""
        return frozenset(p.name for p in self.problems if p.blocking and p.name)

    @property
    def kept_folders(self) -> frozenset[str]:
        """Folders whose existing Workflows must be left untouched."""
        return frozenset(p.folder for p in self.problems if p.blocking)


@dataclass
class _Walk:
    repository: Path
    folders: list[tuple[Path, Path, bool]] = field(default_factory=list)
    symlinks: list[str] = field(default_factory=list)
    visited: int = 0


def discover(repository: Path, path: str = "") -> Discovery:
    """Every workflow under `path` of a checked-out repository, and what is wrong with it."""
    repository = repository.resolve()
    start = _start_folder(repository, path)
    walk = _Walk(repository)
    _walk(start, 0, walk)

    found: list[DiscoveredWorkflow] = []
    problems: list[RepositoryProblem] = [
        RepositoryProblem(
            SYMLINK_IGNORED,
            link,
            f"{link} is a symbolic link; links are not followed, so what it points to is not"
            " part of any workflow",
            blocking=False,
        )
        for link in walk.symlinks
    ]
    for folder, root, flat in walk.folders:
        if flat:
            loaded = [_load_flat(repository, folder, root, d) for d in _definitions(root)]
        else:
            loaded = [_load_folder(repository, folder)]
        for item in loaded:
            if isinstance(item, RepositoryProblem):
                problems.append(item)
            else:
                found.append(item)
                problems.extend(_missing_files(item, root, repository))

    unique, duplicates = _without_duplicates(found)
    return Discovery(tuple(unique), tuple(problems + duplicates))


def relative(repository: Path, path: Path) -> str:
    return path.relative_to(repository).as_posix() if path != repository else ""


def _start_folder(repository: Path, path: str) -> Path:
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise DiscoveryError(f"the path {path!r} climbs out of the repository")
    folder = repository
    for part in parts:
        folder = folder / part
        try:
            mode = os.lstat(folder).st_mode
        except OSError:
            raise DiscoveryError(f"the repository has no folder {path!r}") from None
        if stat.S_ISLNK(mode):
            raise DiscoveryError(f"{relative(repository, folder)} is a symbolic link, not a folder")
        if not stat.S_ISDIR(mode):
            raise DiscoveryError(f"{relative(repository, folder)} is not a folder")
    return folder


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as scan:
            return sorted(scan, key=lambda entry: entry.name)
    except OSError:
        return []


def _definitions(root: Path) -> list[Path]:
    """Definitions at the top of a folder: regular files only, never links."""
    return [
        Path(entry.path)
        for entry in _entries(root)
        if not entry.name.startswith(".")
        and is_definition_name(entry.name)
        and entry.is_file(follow_symlinks=False)
    ]


def _resources_root(folder: Path) -> Path:
    root = folder
    for part in MAVEN_RESOURCES.parts:
        root = root / part
        if root.is_symlink() or not root.is_dir():
            return folder
    return root if _definitions(root) else folder


def _walk(folder: Path, depth: int, walk: _Walk) -> None:
    walk.visited += 1
    if walk.visited > MAX_FOLDERS:
        return
    root = _resources_root(folder)
    definitions = _definitions(root)
    if definitions:
        walk.folders.append((folder, root, len(definitions) > 1))
        walk.symlinks.extend(_links_under(folder, walk.repository))
        return
    for entry in _entries(folder):
        if entry.is_symlink():
            walk.symlinks.append(relative(walk.repository, Path(entry.path)))
        elif (
            entry.is_dir(follow_symlinks=False)
            and not entry.name.startswith(".")
            and entry.name not in SKIPPED_FOLDERS
            and depth < MAX_DEPTH
        ):
            _walk(Path(entry.path), depth + 1, walk)


def _links_under(folder: Path, repository: Path) -> Iterator[str]:
    for directory, folders, files in os.walk(folder, followlinks=False):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in sorted(folders + files):
            if os.path.islink(os.path.join(directory, name)):
                yield relative(repository, Path(directory, name))


def _name_problem(workflow_id: str, where: str) -> RepositoryProblem | None:
    name = workflow_id.lower()
    if not workflow_id:
        return RepositoryProblem(INVALID_WORKFLOW, where, f"{where}: the definition has no id")
    if len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.match(name):
        return RepositoryProblem(
            INVALID_WORKFLOW,
            where,
            f"{where}: the id {workflow_id!r} does not make a Workflow name: in lower case it"
            f" must be at most {MAX_NAME_LENGTH} characters, start with a letter and hold only"
            " letters, digits and '-'",
        )
    return None


def _load_folder(repository: Path, folder: Path) -> DiscoveredWorkflow | RepositoryProblem:
    where = relative(repository, folder)
    try:
        loaded = load_workflow_folder(folder)
    except DefinitionError as error:
        return RepositoryProblem(
            INVALID_WORKFLOW, where, f"{where or '.'}: {error.problem.message}"
        )
    files = loaded.files
    if folder == repository:
        # The loader looks up missing files in the folder's parent, which is outside the
        # repository when the folder is its root: only files inside the folder are kept.
        files = {p: c for p, c in files.items() if _regular_file(loaded.resources_root / p)}
    return _discovered(
        where,
        loaded.definition,
        files,
        loaded.properties,
        loaded.secret_keys,
    )


def _load_flat(
    repository: Path, folder: Path, root: Path, definition_file: Path
) -> DiscoveredWorkflow | RepositoryProblem:
    where = relative(repository, definition_file)
    lookup = [root] + ([folder.parent] if folder != repository else [])
    try:
        definition = parse_definition(
            _read(definition_file, MAX_DEFINITION_BYTES), definition_file.name
        )
        files = _referenced_files(definition, lookup, repository)
        properties = _properties(root / PROPERTIES_FILE)
        secret_keys = _secret_keys(root / SECRETS_FILE)
    except DefinitionError as error:
        return RepositoryProblem(INVALID_WORKFLOW, where, f"{where}: {error.problem.message}")
    return _discovered(where, definition, files, properties, secret_keys)


def _discovered(
    where: str,
    definition: dict[str, Any],
    files: dict[str, bytes],
    properties: str | None,
    secret_keys: Sequence[str],
) -> DiscoveredWorkflow | RepositoryProblem:
    workflow_id = read_info(definition).id
    problem = _name_problem(workflow_id, where or ".")
    if problem is not None:
        return problem
    return DiscoveredWorkflow(
        name=workflow_id.lower(),
        workflow_id=workflow_id,
        folder=where,
        definition=definition,
        files=files,
        properties=properties,
        secret_keys=tuple(secret_keys),
    )


def _referenced_files(
    definition: dict[str, Any], lookup: Sequence[Path], repository: Path
) -> dict[str, bytes]:
    """The files a definition of a flat folder refers to, and the files those refer to."""
    files: dict[str, bytes] = {}
    resources = Resources(files)
    looked_for: set[str] = set()
    for _ in range(_MAX_LOOKUP_ROUNDS):
        wanted = missing_resource_paths(definition, resources) - looked_for
        looked_for |= wanted
        added = False
        for path in sorted(wanted):
            if not _is_resource_path(path):
                continue
            for base in lookup:
                file = base / path
                if _regular_file(file) and file.resolve().is_relative_to(repository):
                    files[path] = _read(file, MAX_RESOURCE_BYTES)
                    resources.add(path, files[path])
                    added = True
                    break
        if not added:
            break
    return files


def _is_resource_path(path: str) -> bool:
    # The rule of the folder loader: no reference brings in a properties file, a secret or a
    # hidden file.
    parts = path.split("/")
    return path.lower().endswith(RESOURCE_SUFFIXES) and not any(
        part.startswith(".") or part in SKIPPED_FOLDERS for part in parts
    )


def _missing_files(
    workflow: DiscoveredWorkflow, root: Path, repository: Path
) -> Iterator[RepositoryProblem]:
    """Files the workflow refers to that the repository lacks: reported, never invented."""
    missing = missing_resource_paths(workflow.definition, Resources(workflow.files))
    for path in sorted(missing):
        shown = (
            relative(repository, root / path) if (root / path).is_relative_to(repository) else path
        )
        yield RepositoryProblem(
            MISSING_RESOURCE_FILE,
            workflow.folder,
            f"{workflow.folder or '.'}: the workflow refers to {path!r}, which the repository"
            f" does not hold (looked for {shown!r} and beside the folder)",
            blocking=False,
            name=workflow.name,
        )


def _without_duplicates(
    found: list[DiscoveredWorkflow],
) -> tuple[list[DiscoveredWorkflow], list[RepositoryProblem]]:
    by_name: dict[str, list[DiscoveredWorkflow]] = {}
    for workflow in found:
        by_name.setdefault(workflow.name, []).append(workflow)
    unique: list[DiscoveredWorkflow] = []
    problems: list[RepositoryProblem] = []
    for name, workflows in by_name.items():
        if len(workflows) == 1:
            unique.append(workflows[0])
            continue
        folders = ", ".join(workflow.folder or "." for workflow in workflows)
        ids = sorted({workflow.workflow_id for workflow in workflows})
        for workflow in workflows:
            problems.append(
                RepositoryProblem(
                    DUPLICATE_WORKFLOW_ID,
                    workflow.folder,
                    f"the folders {folders} all hold a definition with the id"
                    f" {' or '.join(map(repr, ids))}, which names the Workflow {name!r}: none of"
                    " them is mirrored until one id changes",
                    name=name,
                )
            )
    return unique, problems


def _regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _read(file: Path, limit: int) -> bytes:
    try:
        descriptor = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise DefinitionError(
            Problem(INVALID_WORKFLOW_FOLDER, f"{file.name} cannot be read: {error.strerror}")
        ) from None
    with os.fdopen(descriptor, "rb") as stream:
        content = stream.read(limit + 1)
    if len(content) > limit:
        raise DefinitionError(
            Problem(
                INVALID_WORKFLOW_FOLDER, f"{file.name} is more than the {limit:,} bytes allowed"
            )
        )
    return content


def _properties(file: Path) -> str | None:
    if not _regular_file(file):
        return None
    content = _read(file, MAX_RESOURCE_BYTES)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("latin-1")


def _secret_keys(file: Path) -> list[str]:
    if not _regular_file(file):
        return []
    try:
        descriptor = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise DefinitionError(
            Problem(INVALID_WORKFLOW_FOLDER, f"{file.name} cannot be read: {error.strerror}")
        ) from None
    # Unbuffered and one byte at a time, as the folder loader reads it: no value is kept.
    with os.fdopen(descriptor, "rb", buffering=0) as stream:
        return property_keys(lambda: stream.read(1) or b"", _MAX_SECRETS_BYTES)
