"""What discovery finds in a repository: workflows, the folders they come from, and problems."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

# Reasons of the problems discovery reports. The first two keep a folder from being mirrored.
INVALID_WORKFLOW: Final = "InvalidWorkflow"
DUPLICATE_WORKFLOW_ID: Final = "DuplicateWorkflowId"
SYMLINK_IGNORED: Final = "SymlinkIgnored"
# The search for workflow folders met one of its limits: what it did not reach is not deleted.
DISCOVERY_INCOMPLETE: Final = "DiscoveryIncomplete"


class DiscoveryError(Exception):
    """The source's path does not lead to a folder of the repository."""


@dataclass(frozen=True)
class Candidate:
    """A place that holds a workflow: a workflow folder, or one definition of a flat folder.

    Paths are POSIX paths from the repository root, "" for the root itself. `root` is the
    resources root (the folder, or its src/main/resources); `definition` is set only for a
    definition of a flat folder. `nested` are the folders below `folder` that hold workflows
    of their own, and so give it no files.
    """

    folder: str
    root: str
    definition: str | None = None
    nested: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        """What status and messages call this workflow's place in the repository."""
        return self.definition if self.definition is not None else self.folder


@dataclass(frozen=True)
class Layout:
    candidates: tuple[Candidate, ...] = ()
    symlinks: tuple[str, ...] = ()
    # Why the search did not reach every folder, as problems that block every deletion.
    incomplete: tuple[RepositoryProblem, ...] = ()


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


# What loading one candidate gives: the workflow or why there is none, and warnings.
Loaded = tuple[DiscoveredWorkflow | RepositoryProblem, tuple[RepositoryProblem, ...]]


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
