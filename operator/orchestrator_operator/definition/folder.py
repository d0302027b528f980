"""Load a workflow from disk: a workflow folder, or a lone definition file.

A workflow folder holds exactly one definition (``*.sw.yaml``, ``*.sw.yml`` or
``*.sw.json``) at the top of its resources root. The resources root is the folder itself, or
its ``src/main/resources`` when that exists (the Maven layout). The root also holds
``application.properties`` and ``secret.properties``.

Which files are resource files: every file under the resources root whose name ends in
``.json``, ``.yaml``, ``.yml`` or ``.proto`` (schemas, OpenAPI and AsyncAPI files, sub-flow
definitions, proto files), except the definition itself, hidden files and files in hidden
folders or in ``target/``, ``node_modules/`` and ``manifests/`` (build output, packages and
generated Kubernetes manifests). Everything else (README, images, pom.xml, Dockerfile, the
properties files) is not one. A file that a definition or one of its documents refers to but
the folder lacks, such as ``shared/schemas/x.json`` reached by ``../shared/...`` from
``schemas/``, is looked up at the same path under the folder's parent (the repository), and
added under the path the runtime resolves.

Nothing is read outside the folder and its parent (for a folder of a repository, outside the
repository), and no symbolic link is followed: a link is neither a file nor a folder here.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from orchestrator_operator.definition.parse import (
    MAX_DEFINITION_BYTES,
    MAX_RESOURCE_BYTES,
    is_definition_name,
    parse_definition,
)
from orchestrator_operator.definition.problems import (
    INVALID_DEFINITION,
    INVALID_WORKFLOW_FOLDER,
    DefinitionError,
    Problem,
)
from orchestrator_operator.definition.resources import Resources
from orchestrator_operator.definition.validate import missing_resource_paths

MAVEN_RESOURCES: Final = Path("src", "main", "resources")
RESOURCE_SUFFIXES: Final = (".json", ".yaml", ".yml", ".proto")
SKIPPED_FOLDERS: Final = frozenset({"target", "node_modules", "manifests"})
PROPERTIES_FILE: Final = "application.properties"
SECRETS_FILE: Final = "secret.properties"
MAX_FILES: Final = 1000
MAX_SECRETS_BYTES: Final = 1024 * 1024
# Each round adds the files the previous round's files refer to; real chains are 1 or 2 long.
_MAX_LOOKUP_ROUNDS: Final = 16


@dataclass(frozen=True)
class WorkflowFolder:
    """A workflow as read from disk, ready to validate and render.

    ``files`` maps resource paths (POSIX, relative to ``resources_root``) to content.
    ``properties`` is application.properties verbatim, None when absent. ``secret_keys``
    lists the keys of secret.properties; its values are never kept.
    """

    definition_path: Path
    definition: dict[str, Any]
    definition_text: str
    files: dict[str, bytes]
    properties: str | None
    secret_keys: list[str]
    resources_root: Path


def load_workflow_folder(
    path: str | os.PathLike[str],
    *,
    repository: Path | None = None,
    skipped: Collection[Path] = (),
) -> WorkflowFolder:
    """Load a workflow folder; raise DefinitionError when it is not one or its definition
    does not parse.

    With `repository`, the folder is one of that repository: missing files are looked up in
    its parent only when the parent is inside the repository. `skipped` folders (other
    workflows' folders below this one) give no resource files.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise _folder_error(f"{folder} is not a folder")
    root = _maven_root(folder) or folder

    definition_file = _the_definition(folder, root)
    text, definition = _read_definition(definition_file, definition_file.name)
    files = _resource_files(root, definition_file, frozenset(skipped))
    if repository is None or folder.absolute() != repository.absolute():
        _add_files_from_repository(definition, files, folder.absolute().parent)
    return WorkflowFolder(
        definition_path=definition_file,
        definition=definition,
        definition_text=text,
        files=files,
        properties=_read_properties(root / PROPERTIES_FILE),
        secret_keys=_read_secret_keys(root / SECRETS_FILE),
        resources_root=root,
    )


def load_definition_file(path: str | os.PathLike[str]) -> WorkflowFolder:
    """Load a lone definition file: a workflow with no resource files and no properties."""
    file = Path(path)
    if not file.is_file():
        raise _folder_error(f"{file} is not a file")
    text, definition = _read_definition(file, file.name)
    return WorkflowFolder(
        definition_path=file,
        definition=definition,
        definition_text=text,
        files={},
        properties=None,
        secret_keys=[],
        resources_root=file.parent,
    )


def _folder_error(message: str) -> DefinitionError:
    return DefinitionError(Problem(INVALID_WORKFLOW_FOLDER, message))


def is_folder(path: Path) -> bool:
    """A folder itself, not a symbolic link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def is_regular_file(path: Path) -> bool:
    """A regular file itself, not a symbolic link to one."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def file_under(base: Path, relative: str) -> Path | None:
    """The regular file at the POSIX path `relative` under `base`, reached through folders
    that are no symbolic links, or None."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    folder = base
    for part in parts[:-1]:
        folder = folder / part
        if not is_folder(folder):
            return None
    file = folder / parts[-1]
    return file if is_regular_file(file) else None


def _maven_root(folder: Path) -> Path | None:
    root = folder
    for part in MAVEN_RESOURCES.parts:
        root = root / part
        if not is_folder(root):
            return None
    return root


def _definitions_in(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return sorted(
                Path(entry.path)
                for entry in entries
                if entry.is_file(follow_symlinks=False)
                and is_definition_name(entry.name)
                and not entry.name.startswith(".")
            )
    except OSError:
        return []


def _the_definition(folder: Path, root: Path) -> Path:
    where = "at its top level" if root == folder else f"in {MAVEN_RESOURCES.as_posix()}"
    definitions = _definitions_in(root)
    if len(definitions) == 1:
        return definitions[0]
    if definitions:
        names = ", ".join(entry.name for entry in definitions)
        raise _folder_error(
            f"the folder holds {len(definitions)} definitions {where} ({names}); "
            "a workflow folder holds exactly one"
        )
    kinds = "*.sw.yaml, *.sw.yml or *.sw.json"
    holders = sorted(
        f"{entry.name}/"
        for entry in folder.iterdir()
        if is_folder(entry)
        and not entry.name.startswith(".")
        and (_definitions_in(entry) or _definitions_in(_maven_root(entry) or entry))
    )
    if holders and root == folder:
        shown = ", ".join(holders[:10]) + (", ..." if len(holders) > 10 else "")
        raise _folder_error(
            f"the folder holds no definition ({kinds}) {where}, but its subfolders "
            f"{shown} do: each of those is a workflow folder to give on its own"
        )
    raise _folder_error(f"the folder holds no definition ({kinds}) {where}")


def _read_bytes(file: Path, limit: int, what: str) -> bytes:
    try:
        descriptor = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise _folder_error(f"{what} cannot be read: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as stream:
        size = os.fstat(descriptor).st_size
        if size > limit:
            raise _folder_error(f"{what} is {size:,} bytes, more than the {limit:,} allowed")
        return stream.read(limit + 1)


def _read_definition(file: Path, name: str) -> tuple[str, dict[str, Any]]:
    content = _read_bytes(file, MAX_DEFINITION_BYTES, name)
    definition = parse_definition(content, name)
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise DefinitionError(Problem(INVALID_DEFINITION, f"{name}: is not UTF-8 text")) from None
    return text, definition


def _resource_files(
    root: Path, definition_file: Path, skipped: frozenset[Path]
) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for directory, folders, names in os.walk(root, followlinks=False):
        folders[:] = sorted(
            name
            for name in folders
            if not name.startswith(".")
            and name not in SKIPPED_FOLDERS
            and Path(directory, name) not in skipped
        )
        for name in sorted(names):
            file = Path(directory, name)
            if not _is_resource_path(name) or file == definition_file or not is_regular_file(file):
                continue
            relative = file.relative_to(root).as_posix()
            files[relative] = _read_bytes(file, MAX_RESOURCE_BYTES, relative)
            if len(files) > MAX_FILES:
                raise _folder_error(f"the folder holds more than {MAX_FILES} resource files")
    return files


def _is_resource_path(relative: str) -> bool:
    # The same rule for files found in the folder and files fetched from the repository, so
    # that no reference can bring in a properties file, a secret or a hidden file.
    parts = relative.split("/")
    return relative.lower().endswith(RESOURCE_SUFFIXES) and not any(
        part.startswith(".") or part in SKIPPED_FOLDERS for part in parts
    )


def _add_files_from_repository(
    definition: dict[str, Any], files: dict[str, bytes], repository: Path
) -> None:
    resources = Resources(files)
    looked_for: set[str] = set()
    for _ in range(_MAX_LOOKUP_ROUNDS):
        wanted = missing_resource_paths(definition, resources) - looked_for
        looked_for |= wanted
        found = False
        for relative in sorted(wanted):
            file = file_under(repository, relative) if _is_resource_path(relative) else None
            if file is not None:
                files[relative] = _read_bytes(file, MAX_RESOURCE_BYTES, relative)
                resources.add(relative, files[relative])
                found = True
        if not found:
            return


def _read_properties(file: Path) -> str | None:
    if not is_regular_file(file):
        return None
    content = _read_bytes(file, MAX_RESOURCE_BYTES, file.name)
    # The runtime reads properties as UTF-8; a Latin-1 file still comes through intact.
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("latin-1")


def _read_secret_keys(file: Path) -> list[str]:
    if not is_regular_file(file):
        return []
    try:
        descriptor = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise _folder_error(f"{file.name} cannot be read: {error.strerror}") from None
    # Unbuffered, one byte at a time, so that no value sits in a buffer of ours.
    with os.fdopen(descriptor, "rb", buffering=0) as stream:
        return property_keys(lambda: stream.read(1) or b"", MAX_SECRETS_BYTES)


_WHITESPACE: Final = b" \t\f"
_LINE_ENDS: Final = b"\r\n"
_ESCAPES: Final = {b"t": "\t", b"n": "\n", b"r": "\r", b"f": "\f"}


def property_keys(read_byte: Callable[[], bytes], limit: int) -> list[str]:
    """The keys of a Java properties stream, read through ``read_byte`` one byte at a time.

    Value bytes are read and dropped one by one, never gathered. Reading stops after
    ``limit`` bytes. Follows the properties format: comments start with # or !, a key ends
    at an unescaped =, : or whitespace, and a line ending in a backslash continues.
    """
    budget = [limit]

    def next_byte() -> bytes:
        if budget[0] <= 0:
            return b""
        budget[0] -= 1
        byte: bytes = read_byte()
        return byte

    keys: list[str] = []
    byte = next_byte()
    while byte:
        while byte and byte in _WHITESPACE:
            byte = next_byte()
        if byte in (b"#", b"!"):
            while byte and byte not in _LINE_ENDS:
                byte = next_byte()
        elif byte and byte not in _LINE_ENDS:
            key, byte = _read_key(byte, next_byte)
            byte = _skip_value(byte, next_byte)
            if key and key not in keys:
                keys.append(key)
        while byte and byte in _LINE_ENDS:
            byte = next_byte()
    return keys


def _read_key(byte: bytes, next_byte: Callable[[], bytes]) -> tuple[str, bytes]:
    key = bytearray()
    text: list[str] = []
    while byte and byte not in b"=:" + _WHITESPACE + _LINE_ENDS:
        if byte == b"\\":
            byte = next_byte()
            if byte in _ESCAPES:
                text.append(key.decode("utf-8", "replace"))
                key.clear()
                text.append(_ESCAPES[byte])
            elif byte == b"u":
                digits = b"".join(next_byte() for _ in range(4))
                text.append(key.decode("utf-8", "replace"))
                key.clear()
                try:
                    text.append(chr(int(digits, 16)))
                except ValueError:
                    text.append("\ufffd")
            elif byte and byte not in _LINE_ENDS:
                key += byte
            else:
                # A continued line inside a key: the key goes on after the next indentation.
                while byte and byte in _LINE_ENDS + _WHITESPACE:
                    byte = next_byte()
                continue
        else:
            key += byte
        byte = next_byte()
    text.append(key.decode("utf-8", "replace"))
    return "".join(text), byte


def _skip_value(byte: bytes, next_byte: Callable[[], bytes]) -> bytes:
    escaped = False
    while byte:
        if byte in _LINE_ENDS and not escaped:
            return byte
        if byte in _LINE_ENDS:
            # An escaped line end continues the value on the next line.
            if byte == b"\r":
                byte = next_byte()
                if byte == b"\n":
                    byte = next_byte()
            else:
                byte = next_byte()
            escaped = False
            continue
        escaped = byte == b"\\" and not escaped
        byte = next_byte()
    return byte
