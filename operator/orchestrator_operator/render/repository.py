"""Which workflows a repository holds: discovery over a checked-out tree, without a cluster.

A folder is a workflow folder when its resources root (the folder itself, or its
``src/main/resources`` in the Maven layout) holds exactly one definition at its top; its
sub-flows, schemas and specs come with it, as `definition.load_workflow_folder` reads them. A
folder whose resources root holds several definitions is a flat folder: each definition is a
workflow of its own, with the files that it refers to. Every folder is searched for workflow
folders, workflow folders too, down to a few levels: a folder below a workflow folder that
holds a workflow of its own is that workflow's and gives the outer one no files. Only the
outer workflow's `schemas/`, `specs/` and `subflows/` (or, in the Maven layout, its `src/`)
are its own whatever they hold. Hidden folders, build output and symbolic links are not
entered. A search that meets its limits says so, and then nothing is deleted.

The Kubernetes name of a workflow is its definition's id in lower case, as SonataFlow names
it; an id that is not a DNS-1035 label of at most 49 characters after lower-casing is
reported, and so are two folders whose ids give one name: neither of those is mirrored.

Limitation: in a flat folder, a definition that calls another definition of the folder as a
sub-flow does not get it among its files; each definition is a workflow of its own.

Discovery runs in three steps so that a caller can keep and spread the costly middle one:
`find_candidates` lists the places that hold workflows, `load_candidate` reads one of them
(the only step that parses definitions and resource files), and `assemble` puts the results
together. `candidate_digests` says, for each place, a digest of every file its loading may
read, so that an unchanged place need not be read again. The only reads are listings and
files inside the repository: no symbolic link is followed and no file outside it is read.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from orchestrator_operator.definition.folder import MAVEN_RESOURCES, SKIPPED_FOLDERS
from orchestrator_operator.definition.parse import is_definition_name
from orchestrator_operator.render.discovered import (
    DISCOVERY_INCOMPLETE,
    DUPLICATE_WORKFLOW_ID,
    INVALID_WORKFLOW,
    SYMLINK_IGNORED,
    Candidate,
    DiscoveredWorkflow,
    Discovery,
    DiscoveryError,
    Layout,
    Loaded,
    RepositoryProblem,
)
from orchestrator_operator.render.folder_loader import is_resource_path, load_candidate

__all__ = [
    "DISCOVERY_INCOMPLETE",
    "DUPLICATE_WORKFLOW_ID",
    "INVALID_WORKFLOW",
    "SYMLINK_IGNORED",
    "Candidate",
    "DiscoveredWorkflow",
    "Discovery",
    "DiscoveryError",
    "Layout",
    "RepositoryProblem",
    "assemble",
    "candidate_digests",
    "discover",
    "find_candidates",
    "load_candidate",
]

# Real repositories put workflows one or two folders down, and a helper application beside a
# workflow goes some ten deeper (src/main/java/...); the bounds only stop a hostile tree.
MAX_DEPTH: Final = 16
MAX_FOLDERS: Final = 2000
# The folders of a workflow folder that are its own, whatever they hold.
RESOURCE_FOLDERS: Final = frozenset({"schemas", "specs", "subflows"})
# Folders named in one problem about the depth limit; the others are counted.
_SHOWN_TOO_DEEP: Final = 5


def discover(repository: Path, path: str = "", report_missing: bool = True) -> Discovery:
    """Every workflow under `path` of a checked-out repository, and what is wrong with it."""
    repository = repository.resolve()
    layout = find_candidates(repository, path)
    loaded = [load_candidate(repository, c, report_missing) for c in layout.candidates]
    return assemble(layout, loaded)


def find_candidates(repository: Path, path: str = "") -> Layout:
    """The places under `path` that hold workflows, and the symbolic links met on the way."""
    start = _start_folder(repository, path)
    walk = _Walk(repository)
    _walk(start, 0, walk)
    return Layout(tuple(walk.candidates), tuple(walk.symlinks), tuple(_limits_met(walk)))


def assemble(layout: Layout, loaded: Iterable[Loaded]) -> Discovery:
    """The discovery made of every candidate's loading, in the layout's order."""
    found: list[DiscoveredWorkflow] = []
    problems: list[RepositoryProblem] = [*layout.incomplete]
    problems += [
        RepositoryProblem(
            SYMLINK_IGNORED,
            link,
            f"{link} is a symbolic link; links are not followed, so what it points to is not"
            " part of any workflow",
            blocking=False,
        )
        for link in layout.symlinks
    ]
    for item, warnings in loaded:
        if isinstance(item, RepositoryProblem):
            problems.append(item)
        else:
            found.append(item)
        problems.extend(warnings)
    unique, duplicates = _without_duplicates(found)
    return Discovery(tuple(unique), tuple(problems + duplicates))


def candidate_digests(repository: Path, layout: Layout) -> dict[Candidate, str]:
    """For each candidate, a digest of every file that loading it may read.

    That is every file under its folder, and the resource files beside the folder (under its
    parent) that are not in another workflow's folder, where `../shared/...` references lead.

    Limitation: a file that a workflow refers to inside another workflow's folder is not part
    of the digest, so a change to that file alone is seen at the next forced sync.
    """
    taken = {c.folder for c in layout.candidates}
    beside: dict[str, str] = {}
    folders: dict[str, str] = {}
    digests: dict[Candidate, str] = {}
    for candidate in layout.candidates:
        if candidate.folder not in folders:
            nested = set(candidate.nested)
            folders[candidate.folder] = _tree_digest(repository, candidate.folder, nested)
        parent = _parent(candidate.folder)
        if parent is None:
            shared = ""
        else:
            if parent not in beside:
                beside[parent] = _tree_digest(repository, parent, taken, resources_only=True)
            shared = beside[parent]
        key = "\0".join(
            [candidate.folder, candidate.root, candidate.definition or "", *candidate.nested]
        )
        digests[candidate] = _digest([key, folders[candidate.folder], shared])
    return digests


# -- the walk ---------------------------------------------------------------------------------


@dataclass
class _Walk:
    repository: Path
    candidates: list[Candidate] = field(default_factory=list)
    symlinks: list[str] = field(default_factory=list)
    visited: int = 0
    # The first folder left unsearched for MAX_FOLDERS, and those whose subfolders were left
    # for MAX_DEPTH.
    too_many: str | None = None
    too_deep: list[str] = field(default_factory=list)


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
    if walk.visited >= MAX_FOLDERS:
        if walk.too_many is None:
            walk.too_many = relative(walk.repository, folder)
        return
    walk.visited += 1
    root = _resources_root(folder)
    definitions = _definitions(root)
    own: frozenset[str] = frozenset()
    if definitions:
        own = RESOURCE_FOLDERS if root == folder else frozenset(MAVEN_RESOURCES.parts[:1])
    first = len(walk.candidates)
    for entry in _entries(folder):
        path = Path(entry.path)
        if entry.is_symlink():
            walk.symlinks.append(relative(walk.repository, path))
        elif not _searched(entry):
            continue
        elif entry.name in own:
            walk.symlinks.extend(_links_under(path, walk.repository))
        elif depth < MAX_DEPTH:
            _walk(path, depth + 1, walk)
        elif relative(walk.repository, folder) not in walk.too_deep[-1:]:
            walk.too_deep.append(relative(walk.repository, folder))
    if not definitions:
        return

    where = relative(walk.repository, folder)
    root_path = relative(walk.repository, root)
    nested = _outermost(c.folder for c in walk.candidates[first:])
    if len(definitions) == 1:
        found = [Candidate(where, root_path, nested=nested)]
    else:
        found = [
            Candidate(where, root_path, relative(walk.repository, d), nested) for d in definitions
        ]
    # A folder's workflows come before those below it.
    walk.candidates[first:first] = found


def _searched(entry: os.DirEntry[str]) -> bool:
    return (
        entry.is_dir(follow_symlinks=False)
        and not entry.name.startswith(".")
        and entry.name not in SKIPPED_FOLDERS
    )


def _outermost(folders: Iterable[str]) -> tuple[str, ...]:
    """The folders not inside another of them."""
    kept: list[str] = []
    for folder in sorted(set(folders)):
        if not kept or not folder.startswith(kept[-1] + "/"):
            kept.append(folder)
    return tuple(kept)


def _limits_met(walk: _Walk) -> Iterator[RepositoryProblem]:
    kept = "no Workflow of this source is deleted until the search is complete; set the"
    kept += " source's path to the folder that holds the workflows"
    if walk.too_many is not None:
        where = walk.too_many or "."
        yield RepositoryProblem(
            DISCOVERY_INCOMPLETE,
            walk.too_many,
            f"{where}: the search for workflow folders stops after {MAX_FOLDERS} folders"
            f" (MAX_FOLDERS), so this folder and those after it were not searched: {kept}",
        )
    if walk.too_deep:
        shown = ", ".join(folder or "." for folder in walk.too_deep[:_SHOWN_TOO_DEEP])
        more = len(walk.too_deep) - _SHOWN_TOO_DEEP
        shown += f" and {more} more" if more > 0 else ""
        yield RepositoryProblem(
            DISCOVERY_INCOMPLETE,
            walk.too_deep[0],
            f"{shown}: the search for workflow folders goes {MAX_DEPTH} folders deep"
            f" (MAX_DEPTH), so the folders below were not searched: {kept}",
        )


def _links_under(folder: Path, repository: Path) -> list[str]:
    links: list[str] = []
    for directory, folders, files in os.walk(folder, followlinks=False):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in sorted(folders + files):
            if os.path.islink(os.path.join(directory, name)):
                links.append(relative(repository, Path(directory, name)))
    return links


# -- digests ----------------------------------------------------------------------------------


def _parent(folder: str) -> str | None:
    if not folder:
        return None
    return folder.rpartition("/")[0]


def _tree_digest(
    repository: Path, folder: str, skipped: set[str], resources_only: bool = False
) -> str:
    """A digest of the paths, kinds and contents of the files under a folder.

    Hidden folders and build output are left out, as the loaders leave them out, and so are
    the `skipped` folders.
    """
    base = repository / folder if folder else repository
    entries: list[str] = []
    for directory, folders, files in os.walk(base, followlinks=False):
        here = relative(repository, Path(directory))
        links = [name for name in folders if os.path.islink(os.path.join(directory, name))]
        folders[:] = sorted(
            name
            for name in folders
            if not name.startswith(".")
            and name not in SKIPPED_FOLDERS
            and _join(here, name) not in skipped
        )
        for name in sorted(files + links):
            path = _join(here, name)
            if resources_only and not is_resource_path(path):
                continue
            entries.append(f"{path}\0{_file_digest(Path(directory, name))}")
    return _digest(entries)


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _file_digest(path: Path) -> str:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "gone"
    if stat.S_ISLNK(mode):
        return "link"
    if not stat.S_ISREG(mode):
        return "other"
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return "unreadable"
    return digest.hexdigest()


def _digest(parts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape"))
        digest.update(b"\n")
    return digest.hexdigest()


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
