"""Load one candidate of a repository: a workflow folder through `definition.folder`, or one
definition of a flat folder with the files it refers to.

A module function of plain arguments, so that discovery can run it in another process. Every
read stays inside the repository and opens no symbolic link.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from orchestrator_operator.definition import (
    MISSING_RESOURCE_FILE,
    DefinitionError,
    load_workflow_folder,
    read_info,
)
from orchestrator_operator.definition.folder import (
    PROPERTIES_FILE,
    RESOURCE_SUFFIXES,
    SECRETS_FILE,
    SKIPPED_FOLDERS,
    file_under,
    is_regular_file,
    property_keys,
)
from orchestrator_operator.definition.parse import (
    MAX_DEFINITION_BYTES,
    MAX_RESOURCE_BYTES,
    parse_definition,
)
from orchestrator_operator.definition.problems import INVALID_WORKFLOW_FOLDER, Problem
from orchestrator_operator.definition.resources import Resources
from orchestrator_operator.definition.validate import missing_resource_paths
from orchestrator_operator.models.workflow import MAX_NAME_LENGTH
from orchestrator_operator.render.discovered import (
    INVALID_WORKFLOW,
    Candidate,
    DiscoveredWorkflow,
    Loaded,
    RepositoryProblem,
)

NAME_PATTERN: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_MAX_SECRETS_BYTES: Final = 1024 * 1024
_MAX_LOOKUP_ROUNDS: Final = 16


def load_candidate(repository: Path, candidate: Candidate, report_missing: bool = True) -> Loaded:
    """The workflow of one candidate, or the problem that keeps it from being one.

    With `report_missing`, files the workflow refers to and the repository lacks are reported
    as warnings; finding them validates the definition a second time, which a caller that
    leaves that report to the Workflow's own status can skip.
    """
    folder = repository / candidate.folder if candidate.folder else repository
    root = repository / candidate.root if candidate.root else repository
    if candidate.definition is None:
        nested = [repository / path for path in candidate.nested]
        item = _load_folder(repository, folder, candidate.where, nested)
    else:
        item = _load_flat(repository, folder, root, repository / candidate.definition)
    warnings: tuple[RepositoryProblem, ...] = ()
    if report_missing and isinstance(item, DiscoveredWorkflow):
        warnings = tuple(_missing_files(item))
    return item, warnings


def warm_up() -> None:
    """Nothing: a process that runs it has imported what loading needs, ahead of the first
    repository."""


def name_problem(workflow_id: str, where: str) -> RepositoryProblem | None:
    """Why a definition's id cannot name a Workflow, or None."""
    name = workflow_id.lower()
    if not workflow_id:
        return RepositoryProblem(
            INVALID_WORKFLOW, where, f"{where or '.'}: the definition has no id"
        )
    if len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.match(name):
        return RepositoryProblem(
            INVALID_WORKFLOW,
            where,
            f"{where or '.'}: the id {workflow_id!r} does not make a Workflow name: in lower case"
            f" it must be at most {MAX_NAME_LENGTH} characters, start with a letter and hold"
            " only letters, digits and '-'",
        )
    return None


def _load_folder(
    repository: Path, folder: Path, where: str, nested: Sequence[Path]
) -> DiscoveredWorkflow | RepositoryProblem:
    try:
        loaded = load_workflow_folder(folder, repository=repository, skipped=nested)
    except DefinitionError as error:
        return RepositoryProblem(
            INVALID_WORKFLOW, where, f"{where or '.'}: {error.problem.message}"
        )
    return _discovered(
        where, loaded.definition, loaded.files, loaded.properties, loaded.secret_keys
    )


def _load_flat(
    repository: Path, folder: Path, root: Path, definition_file: Path
) -> DiscoveredWorkflow | RepositoryProblem:
    where = definition_file.relative_to(repository).as_posix()
    lookup = [root] + ([folder.parent] if folder != repository else [])
    try:
        definition = parse_definition(
            read_file(definition_file, MAX_DEFINITION_BYTES), definition_file.name
        )
        files = _referenced_files(definition, lookup)
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
    problem = name_problem(workflow_id, where)
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


def _referenced_files(definition: dict[str, Any], lookup: Sequence[Path]) -> dict[str, bytes]:
    """The files a definition of a flat folder refers to, and the files those refer to."""
    files: dict[str, bytes] = {}
    resources = Resources(files)
    looked_for: set[str] = set()
    for _ in range(_MAX_LOOKUP_ROUNDS):
        wanted = missing_resource_paths(definition, resources) - looked_for
        looked_for |= wanted
        added = False
        for path in sorted(wanted):
            if not is_resource_path(path):
                continue
            for base in lookup:
                file = file_under(base, path)
                if file is not None:
                    files[path] = read_file(file, MAX_RESOURCE_BYTES)
                    resources.add(path, files[path])
                    added = True
                    break
        if not added:
            break
    return files


def is_resource_path(path: str) -> bool:
    """The folder loader's rule: no reference brings in a properties file, a secret or a hidden
    file."""
    parts = path.split("/")
    return path.lower().endswith(RESOURCE_SUFFIXES) and not any(
        part.startswith(".") or part in SKIPPED_FOLDERS for part in parts
    )


def _missing_files(workflow: DiscoveredWorkflow) -> Iterator[RepositoryProblem]:
    """Files the workflow refers to that the repository lacks: reported, never invented."""
    missing = missing_resource_paths(workflow.definition, Resources(workflow.files))
    for path in sorted(missing):
        yield RepositoryProblem(
            MISSING_RESOURCE_FILE,
            workflow.folder,
            f"{workflow.folder or '.'}: the workflow refers to {path!r}, which is neither in"
            " its folder nor beside it in the repository",
            blocking=False,
            name=workflow.name,
        )


def read_file(file: Path, limit: int) -> bytes:
    """A file's bytes, refusing a symbolic link and anything above `limit` bytes."""
    try:
        descriptor = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise _error(f"{file.name} cannot be read: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as stream:
        content = stream.read(limit + 1)
    if len(content) > limit:
        raise _error(f"{file.name} is more than the {limit:,} bytes allowed")
    return content


def _properties(file: Path) -> str | None:
    if not is_regular_file(file):
        return None
    content = read_file(file, MAX_RESOURCE_BYTES)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("latin-1")


def _secret_keys(file: Path) -> list[str]:
    if not is_regular_file(file):
        return []
    try:
        descriptor = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise _error(f"{file.name} cannot be read: {error.strerror}") from None
    # Unbuffered and one byte at a time, as the folder loader reads it: no value is kept.
    with os.fdopen(descriptor, "rb", buffering=0) as stream:
        return property_keys(lambda: stream.read(1) or b"", _MAX_SECRETS_BYTES)


def _error(message: str) -> DefinitionError:
    return DefinitionError(Problem(INVALID_WORKFLOW_FOLDER, message))
