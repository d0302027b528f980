"""The resource files of a workflow, and where a reference to one of them leads.

Paths are POSIX paths relative to the resources root, the folder that holds the definition
(``src/main/resources`` in a Maven layout), which is also the runtime's class path root.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

from orchestrator_operator.definition.parse import (
    MAX_RESOURCE_BYTES,
    DocumentError,
    is_definition_name,
    load_document,
)

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Schemes whose files live elsewhere than the resources root, so nothing here can check them.
_ELSEWHERE: Final = ("http", "https", "file")


@dataclass(frozen=True)
class Located:
    """Where a reference leads.

    ``path`` is the resource path found, or None. ``candidates`` are the resource paths that
    were looked for, in order; empty when the reference leads outside the resources root or
    to a place (a URL, an absolute file) that is not a resource file at all.
    """

    path: str | None
    candidates: tuple[str, ...]
    outside: bool = False

    @property
    def elsewhere(self) -> bool:
        return self.path is None and not self.candidates and not self.outside


class Resources:
    """Resource files by path, each parsed at most once."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files: dict[str, bytes | str] = {}
        if isinstance(files, Mapping):
            for key, content in files.items():
                path = normalize(key) if isinstance(key, str) else None
                if path is not None and isinstance(content, bytes | str):
                    self.files[path] = content
        self._documents: dict[str, tuple[Any, str | None]] = {}

    def add(self, path: str, content: bytes) -> None:
        """Add a file found later; ``path`` must be canonical, as ``normalize`` gives it."""
        self.files[path] = content

    def __contains__(self, path: object) -> bool:
        return path in self.files

    def definitions(self) -> list[str]:
        """Paths of the definitions among the files, sorted."""
        return sorted(path for path in self.files if is_definition_name(path))

    def document(self, path: str) -> tuple[Any, str | None]:
        """The parsed content of a file, and an error sentence when it does not parse."""
        if path not in self._documents:
            try:
                parsed: tuple[Any, str | None] = (
                    load_document(self.files[path], path, max_bytes=MAX_RESOURCE_BYTES),
                    None,
                )
            except DocumentError as error:
                parsed = (None, str(error))
            self._documents[path] = parsed
        return self._documents[path]

    def text(self, path: str) -> str | None:
        content = self.files[path]
        if isinstance(content, str):
            return content
        try:
            return content.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None

    def locate(self, uri: str, base_dir: str, *, fallback_to_root: bool = False) -> Located:
        """Find the file a URI names, relative to ``base_dir``.

        With ``fallback_to_root`` a relative URI is also looked up from the root, as the
        runtime does for the files a definition names (it tries next to the definition, then
        on the class path); ``$ref``s inside documents resolve strictly as RFC 3986 says.
        """
        scheme_match = _SCHEME.match(uri)
        scheme = scheme_match.group(1).lower() if scheme_match else None
        if scheme == "classpath":
            found = join("", uri[len("classpath:") :].lstrip("/"))
            candidates: list[str | None] = [found]
        elif scheme is not None:
            # http(s) and file URLs, or a scheme the runtime does not read from the class path.
            return Located(None, ())
        else:
            candidates = [join(base_dir, uri)]
            if fallback_to_root:
                candidates.append(join("", uri))
        inside = tuple(dict.fromkeys(path for path in candidates if path is not None))
        if not inside:
            return Located(None, (), outside=True)
        for path in inside:
            if path in self.files:
                return Located(path, inside)
        return Located(None, inside)


def is_elsewhere(uri: str) -> bool:
    """Whether a URI names a file outside the resources (a URL or an absolute file)."""
    match = _SCHEME.match(uri)
    return match is not None and match.group(1).lower() in _ELSEWHERE


def normalize(path: str) -> str | None:
    """A resource path in canonical form, or None when it is not a relative path inside."""
    return join("", path)


def join(base_dir: str, reference: str) -> str | None:
    """Resolve a relative reference against a directory, as RFC 3986 merges paths.

    A leading slash means the root. Returns None when ``..`` climbs above the root or the
    result is empty.
    """
    reference = unquote(reference.split("?", 1)[0])
    if reference.startswith("/"):
        segments = reference.split("/")
    else:
        segments = [*base_dir.split("/"), *reference.split("/")]
    resolved: list[str] = []
    for segment in segments:
        if segment in ("", "."):
            continue
        if segment == "..":
            if not resolved:
                return None
            resolved.pop()
        else:
            resolved.append(segment)
    return "/".join(resolved) or None


def directory(path: str) -> str:
    return posixpath.dirname(path)


def follow_pointer(document: Any, fragment: str) -> tuple[bool, Any]:
    """Follow a JSON Pointer fragment (``/a/b``); whether it leads somewhere, and to what."""
    node = document
    for raw in fragment.split("/")[1:]:
        token = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False, None
    return True, node
