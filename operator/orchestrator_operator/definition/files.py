"""Check the resource files a definition needs: schemas, OpenAPI, AsyncAPI and proto files,
and every file and fragment their ``$ref``s point to.

The files a definition names are resolved next to the definition first and then from the
resources root, as the runtime does; a ``$ref`` inside a document is resolved against that
document's own path (or its ``classpath:`` ``$id``), as JSON Schema and OpenAPI tools do.
"""

from __future__ import annotations

import re
import warnings
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import jsonschema
import jsonschema.exceptions
import jsonschema.protocols
import jsonschema.validators

from orchestrator_operator.definition.fields import pointer
from orchestrator_operator.definition.model import FileReference, Function, Workflow
from orchestrator_operator.definition.parse import describe
from orchestrator_operator.definition.problems import (
    INVALID_RESOURCE_FILE,
    MISSING_RESOURCE_FILE,
    UNRESOLVED_REFERENCE,
    Problem,
    suggestion,
)
from orchestrator_operator.definition.resources import (
    Located,
    Resources,
    directory,
    follow_pointer,
    is_elsewhere,
)

_HTTP_METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Keys whose values are example data rather than schemas, so a "$ref" in them is only text.
_DATA_KEYS: Final = frozenset({"example", "examples", "default", "enum", "const"})
_DOCUMENT_SUFFIXES: Final = (".json", ".yaml", ".yml")


@dataclass
class FileCheck:
    """The outcome of checking one definition's files."""

    problems: list[Problem] = field(default_factory=list)
    # Resource paths looked for and not found, for a loader that can fetch them elsewhere.
    missing: set[str] = field(default_factory=set)


def check_files(workflow: Workflow, resources: Resources, definition_path: str = "") -> FileCheck:
    """Check the files named by a definition that sits at ``definition_path`` in the resources."""
    checker = _Checker(workflow, resources, directory(definition_path))
    checker.run()
    return checker.result


class _Checker:
    def __init__(self, workflow: Workflow, resources: Resources, base_dir: str) -> None:
        self.workflow = workflow
        self.resources = resources
        self.base_dir = base_dir
        self.result = FileCheck()
        self.queued: set[str] = set()
        self.queue: deque[str] = deque()
        self.operation_ids: dict[str, set[str]] = {}

    def problem(self, reason: str, message: str, at: str, file: str | None = None) -> None:
        self.result.problems.append(Problem(reason, message, file=file, path=at))

    def run(self) -> None:
        for reference in self.workflow.files:
            self.named_file(reference)
        for function in self.workflow.functions:
            self.function_file(function)
        self.follow_refs()

    def locate(self, uri: str, what: str, at: str) -> str | None:
        """Find a file the definition names, reporting it when it is not there."""
        located = self.resources.locate(uri, self.base_dir, fallback_to_root=True)
        if located.path is None and not located.elsewhere:
            self.report_missing(located, f'{what} names "{uri}"', at)
        return located.path

    def report_missing(
        self, located: Located, subject: str, at: str, file: str | None = None
    ) -> None:
        if located.outside:
            message = f"{subject}, which resolves outside the resources root"
        else:
            self.result.missing.update(located.candidates)
            looked = " or ".join(f'"{path}"' for path in located.candidates)
            message = f"{subject}, but the resource files hold no {looked}"
        self.problem(MISSING_RESOURCE_FILE, message, at, file)

    def parsed(self, path: str, what: str, at: str, file: str | None = None) -> Any:
        document, error = self.resources.document(path)
        if error is not None:
            self.problem(INVALID_RESOURCE_FILE, f'{what} "{path}" {error}', at, file)
        return document

    def enqueue(self, path: str) -> None:
        if path not in self.queued:
            self.queued.add(path)
            self.queue.append(path)

    # Files named by the definition itself.

    def named_file(self, reference: FileReference) -> None:
        path = self.locate(reference.uri.split("#", 1)[0], reference.what, reference.pointer)
        if path is None:
            return
        if reference.usage == "any" and not path.lower().endswith(_DOCUMENT_SUFFIXES):
            return
        document = self.parsed(path, reference.what, reference.pointer)
        if document is None:
            return
        if reference.usage == "schema":
            self.check_schema(document, path, reference)
        self.enqueue(path)

    def check_schema(self, document: Any, path: str, reference: FileReference) -> None:
        if isinstance(document, bool):
            return
        if not isinstance(document, dict):
            self.problem(
                INVALID_RESOURCE_FILE,
                f'{reference.what} "{path}" is not a JSON Schema: it holds {describe(document)}',
                reference.pointer,
            )
            return
        validator: type[jsonschema.protocols.Validator] = jsonschema.Draft7Validator
        if isinstance(document.get("$schema"), str):
            with warnings.catch_warnings():
                # An unknown $schema makes jsonschema warn and fall back to the default draft.
                warnings.simplefilter("ignore")
                validator = jsonschema.validators.validator_for(document, validator)
        # Against the draft's meta-schema, for structure only: without a format checker, as
        # formats such as "regex" follow ECMA rules that Python's do not.
        meta_schema = validator.META_SCHEMA
        meta_validator = jsonschema.validators.validator_for(meta_schema)(meta_schema)
        error = jsonschema.exceptions.best_match(meta_validator.iter_errors(document))
        if error is not None:
            where = "/" + "/".join(str(part) for part in error.absolute_path)
            self.problem(
                INVALID_RESOURCE_FILE,
                f'{reference.what} "{path}" is not a valid JSON Schema: {error.message} '
                f"(at {where})",
                reference.pointer,
            )

    # Files named by function operations.

    def function_file(self, function: Function) -> None:
        at = pointer(function.pointer, "operation")
        where = f'function "{function.name}"'
        if function.type in ("rest", "asyncapi") and "#" in function.operation:
            uri, operation_id = function.operation.rsplit("#", 1)
            uri = self.workflow.uri_aliases.get(uri, uri)
            kind = "OpenAPI" if function.type == "rest" else "AsyncAPI"
            path = self.locate(uri, f"{where}: operation", at)
            if path is None:
                return
            ids = self.operation_ids_of(path, f"{where}: {kind} file", at)
            if ids is not None and operation_id not in ids:
                self.problem(
                    UNRESOLVED_REFERENCE,
                    f'{where}: operationId "{operation_id}" is not in {kind} file "{path}"'
                    f"{suggestion(operation_id, sorted(ids))}",
                    at,
                )
            self.enqueue(path)
        elif function.type == "rpc" and function.operation.count("#") == 2:
            uri, service, method = function.operation.split("#")
            path = self.locate(uri, f"{where}: operation", at)
            if path is not None:
                self.check_proto(path, service, method, where, at)

    def operation_ids_of(self, path: str, what: str, at: str) -> set[str] | None:
        if path not in self.operation_ids:
            document = self.parsed(path, what, at)
            if document is None:
                return None
            self.operation_ids[path] = set(self.collect_operation_ids(document, path))
        return self.operation_ids[path]

    def collect_operation_ids(self, document: Any, path: str) -> Iterator[str]:
        if not isinstance(document, Mapping):
            return
        # OpenAPI and Swagger: paths -> path item -> method -> operationId.
        paths = document.get("paths")
        for item in paths.values() if isinstance(paths, Mapping) else ():
            if isinstance(item, Mapping) and isinstance(item.get("$ref"), str):
                item = self.dereference(item["$ref"], path)
            for method in _HTTP_METHODS:
                operation = item.get(method) if isinstance(item, Mapping) else None
                if isinstance(operation, Mapping) and isinstance(operation.get("operationId"), str):
                    yield operation["operationId"]
        # AsyncAPI 2: channels -> publish/subscribe -> operationId; AsyncAPI 3: operations.
        channels = document.get("channels")
        for channel in channels.values() if isinstance(channels, Mapping) else ():
            for verb in ("publish", "subscribe"):
                operation = channel.get(verb) if isinstance(channel, Mapping) else None
                if isinstance(operation, Mapping) and isinstance(operation.get("operationId"), str):
                    yield operation["operationId"]
        if document.get("asyncapi") is not None and isinstance(document.get("operations"), Mapping):
            yield from document["operations"]

    def dereference(self, ref: str, path: str) -> Any:
        file_part, _, fragment = ref.partition("#")
        target: str | None = path
        if file_part:
            target = self.resources.locate(file_part, directory(path)).path
        if target is None:
            return None
        document, _ = self.resources.document(target)
        found, node = follow_pointer(document, fragment)
        return node if found else None

    def check_proto(self, path: str, service: str, method: str, where: str, at: str) -> None:
        text = self.resources.text(path)
        if text is None:
            self.problem(INVALID_RESOURCE_FILE, f'{where}: proto file "{path}" is not UTF-8', at)
            return
        for kind, pattern in (
            ("service", rf"\bservice\s+{re.escape(service)}\s*\{{"),
            ("method", rf"\brpc\s+{re.escape(method)}\s*\("),
        ):
            if not re.search(pattern, text):
                name = service if kind == "service" else method
                self.problem(
                    UNRESOLVED_REFERENCE,
                    f'{where}: {kind} "{name}" is not in proto file "{path}"',
                    at,
                )

    # $refs inside the documents found so far, and inside the documents they lead to.

    def follow_refs(self) -> None:
        while self.queue:
            path = self.queue.popleft()
            document, error = self.resources.document(path)
            if error is None:
                self.refs_of(path, document)

    def refs_of(self, path: str, document: Any) -> None:
        # Limitation: only a document's top-level $id moves the base of its $refs; an $id
        # inside a subschema is not followed.
        base = path
        document_id = document.get("$id") if isinstance(document, Mapping) else None
        if isinstance(document_id, str) and document_id.lower().startswith("classpath:"):
            located = self.resources.locate(document_id.split("#", 1)[0], "")
            base = located.candidates[0] if located.candidates else path
        elif isinstance(document_id, str) and ":" in document_id:
            # Relative $refs resolve against a URL or URN here, not against resource files.
            base = ""
        seen: set[str] = set()
        for ref, at in _refs(document):
            if ref in seen:
                continue
            seen.add(ref)
            self.ref(ref, at, path, document, base)

    def ref(self, ref: str, at: str, path: str, document: Any, base: str) -> None:
        file_part, _, fragment = ref.partition("#")
        target = path
        if file_part:
            if is_elsewhere(file_part) or not base:
                return
            located = self.resources.locate(file_part, directory(base))
            if located.path is None:
                if not located.elsewhere:
                    self.report_missing(located, f'{path}: $ref "{ref}" names a file', at, path)
                return
            target = located.path
            document, error = self.resources.document(target)
            if error is not None:
                self.problem(
                    INVALID_RESOURCE_FILE,
                    f'{path}: $ref "{ref}" names "{target}", which {error}',
                    at,
                    path,
                )
                return
            self.enqueue(target)
        if fragment.startswith("/"):
            found, _ = follow_pointer(document, fragment)
            if not found:
                self.problem(
                    UNRESOLVED_REFERENCE,
                    f'{path}: $ref "{ref}" points to nothing in "{target}"',
                    at,
                    path,
                )


def _refs(document: Any) -> Iterator[tuple[str, str]]:
    """Every ``$ref`` string in a document with its JSON Pointer, in document order."""
    # Each node carries its trail as (key, parent trail), so that a pointer is spelled out
    # only for the few nodes that hold a $ref, not for every node of a large OpenAPI file.
    Trail = tuple[str | int, Any] | None
    stack: list[tuple[Any, Trail]] = [(document, None)]
    while stack:
        node, trail = stack.pop()
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str):
                yield ref, _spell(("$ref", trail))
            for key in reversed(list(node)):
                if key not in _DATA_KEYS:
                    stack.append((node[key], (key, trail)))
        elif isinstance(node, list):
            for index in reversed(range(len(node))):
                stack.append((node[index], (index, trail)))


def _spell(trail: tuple[str | int, Any] | None) -> str:
    parts: list[str | int] = []
    while trail is not None:
        parts.append(trail[0])
        trail = trail[1]
    return pointer("", *reversed(parts))
