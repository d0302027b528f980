"""A stand-in for the Data Index and for workflow runtimes, for tests and the quick start.

GraphQL over HTTP, executed by graphql-core on the Data Index's own schema files
(tests/fixtures/data-index): a query the real schema would reject is rejected here too, with the
errors in the body as a GraphQL server answers them. Runs are what the test seeds. Every
request is counted, so a test can assert how many the operator made.

One server holds any number of Data Indexes and runtimes, each under a path prefix named after
the in-cluster Service it stands for, `/<namespace>/<service>`, which is what the operator's
`SERVICE_URL_OVERRIDE=http://127.0.0.1:<port>/{namespace}/{name}` calls. Without a prefix
(`/graphql`, `/management/processes/<id>`) the default ones answer.

    python tests/standins/data_index.py --port 8180 --runs greeting=COMPLETED:3,ERROR:1
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from graphql import GraphQLError, GraphQLSchema, build_schema, graphql_sync, parse, validate

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "data-index"
SCHEMA_FILES = ("basic.schema.graphqls", "count.schema.graphqls")
STATES = ("PENDING", "ACTIVE", "COMPLETED", "ABORTED", "SUSPENDED", "ERROR")
DEFAULT = ("", "")


def load_schema() -> GraphQLSchema:
    """The Data Index schema: the basic types and queries, extended with the counts."""
    text = "\n".join((SCHEMA_DIR / name).read_text() for name in SCHEMA_FILES)
    return build_schema(text)


SCHEMA = load_schema()


def validation_errors(document: str) -> list[str]:
    """What the Data Index schema says is wrong with a query; empty when it is valid."""
    try:
        parsed = parse(document)
    except GraphQLError as error:
        return [error.message]
    return [error.message for error in validate(SCHEMA, parsed)]


# -- one Data Index ----------------------------------------------------------------------------


@dataclass
class DataIndex:
    """What one Data Index knows: definitions and runs, and the requests it answered."""

    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    # HTTP status to answer every request with instead of serving it, as a failing one does.
    failing: int | None = None
    requests: int = 0
    rejected: int = 0
    documents: list[str] = field(default_factory=list)
    # time.monotonic() at the arrival of each request.
    arrivals: list[float] = field(default_factory=list)

    def register(self, workflow_id: str, service_url: str = "") -> None:
        self.definitions[workflow_id] = {
            "id": workflow_id,
            "name": workflow_id,
            "version": "1.0",
            "type": "SW",
            "serviceUrl": service_url or None,
            "endpoint": f"{service_url}/{workflow_id}" if service_url else None,
        }

    def add_runs(
        self,
        workflow_id: str,
        state: str,
        count: int = 1,
        *,
        start: datetime | None = None,
        step: timedelta = timedelta(seconds=1),
    ) -> list[str]:
        """Seed `count` runs of a workflow in one state, started `step` apart; their ids."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        first = start or datetime(2026, 1, 1, tzinfo=UTC)
        ids = []
        for index in range(count):
            started = first + step * index
            run_id = f"{workflow_id}-{state.lower()}-{len(self.runs)}"
            ended = started + timedelta(seconds=30) if state in ("COMPLETED", "ABORTED") else None
            self.runs.append(
                {
                    "id": run_id,
                    "processId": workflow_id,
                    "processName": workflow_id,
                    "state": state,
                    "start": _iso(started),
                    "end": _iso(ended) if ended else None,
                    "lastUpdate": _iso(ended or started),
                    "endpoint": f"http://stand-in/{workflow_id}",
                    "businessKey": None,
                }
            )
            ids.append(run_id)
        return ids


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Query:
    """The root value: graphql-core calls these with the field's arguments."""

    def __init__(self, index: DataIndex) -> None:
        self.index = index

    def ProcessDefinitions(self, _info: Any, **arguments: Any) -> list[dict[str, Any]]:
        return _select(list(self.index.definitions.values()), arguments)

    def ProcessInstances(self, _info: Any, **arguments: Any) -> list[dict[str, Any]]:
        return _select(self.index.runs, arguments)

    def CountProcessInstances(self, _info: Any, where: Any = None) -> int:
        return sum(1 for run in self.index.runs if _matches(run, where or {}))

    def CountProcessDefinitions(self, _info: Any, where: Any = None) -> int:
        return sum(1 for d in self.index.definitions.values() if _matches(d, where or {}))

    def Jobs(self, _info: Any, **_arguments: Any) -> list[dict[str, Any]]:
        return []

    def UserTaskInstances(self, _info: Any, **_arguments: Any) -> list[dict[str, Any]]:
        return []


def _select(items: list[dict[str, Any]], arguments: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = [item for item in items if _matches(item, arguments.get("where") or {})]
    for key, direction in reversed(list((arguments.get("orderBy") or {}).items())):
        present = [item for item in found if item.get(key) is not None]
        absent = [item for item in found if item.get(key) is None]
        present.sort(key=lambda item: item[key], reverse=direction == "DESC")
        found = present + absent
    pagination = arguments.get("pagination") or {}
    offset = pagination.get("offset") or 0
    limit = pagination.get("limit")
    return found[offset : offset + limit if limit is not None else None]


def _matches(item: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    for key, condition in where.items():
        if key == "and":
            if not all(_matches(item, part) for part in condition):
                return False
        elif key == "or":
            if not any(_matches(item, part) for part in condition):
                return False
        elif key == "not":
            if _matches(item, condition):
                return False
        elif not _test(item.get(key), condition):
            return False
    return True


def _test(value: Any, condition: Mapping[str, Any]) -> bool:
    for operator, operand in condition.items():
        if operator == "equal":
            ok = value == operand
        elif operator == "in":
            ok = value in (operand or [])
        elif operator == "isNull":
            ok = (value is None) == bool(operand)
        elif operator == "like":
            ok = value is not None and fnmatch.fnmatchcase(str(value), str(operand))
        elif operator in ("greaterThan", "greaterThanEqual", "lessThan", "lessThanEqual"):
            ok = value is not None and _compare(operator, str(value), str(operand))
        else:
            # Better a loud refusal than an answer that quietly ignores a filter.
            raise GraphQLError(f"the stand-in Data Index does not implement {operator!r}")
        if not ok:
            return False
    return True


def _compare(operator: str, value: str, operand: str) -> bool:
    return {
        "greaterThan": value > operand,
        "greaterThanEqual": value >= operand,
        "lessThan": value < operand,
        "lessThanEqual": value <= operand,
    }[operator]


# -- the server --------------------------------------------------------------------------------


@dataclass
class Runtime:
    """A workflow runtime: the ids it serves at /management/processes/<id>."""

    workflow_ids: set[str] = field(default_factory=set)
    failing: int | None = None
    probes: int = 0


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up mid-request (an operator stopping) are not worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            return
        super().handle_error(request, client_address)


class StandIn:
    """The HTTP server and what it serves; start() and stop() it, or use it as a context."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.lock = threading.RLock()
        self.data_indexes: dict[tuple[str, str], DataIndex] = {DEFAULT: DataIndex()}
        self.runtimes: dict[tuple[str, str], Runtime] = {DEFAULT: Runtime()}
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- what tests set up --

    def data_index(self, namespace: str = "", service: str = "") -> DataIndex:
        """The Data Index under /<namespace>/<service>, made on first use."""
        with self.lock:
            return self.data_indexes.setdefault((namespace, service), DataIndex())

    def runtime(self, namespace: str = "", service: str = "") -> Runtime:
        with self.lock:
            return self.runtimes.setdefault((namespace, service), Runtime())

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(self._server.server_address[1])

    @property
    def override_template(self) -> str:
        """The operator's SERVICE_URL_OVERRIDE that sends every in-cluster call here."""
        return f"{self.url}/{{namespace}}/{{name}}"

    # -- lifetime --

    def start(self) -> StandIn:
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = _QuietServer((self._host, self._port), handler)
        self._server.daemon_threads = True
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="standin-data-index", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- what the handler calls --

    def answer_graphql(self, key: tuple[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            index = self.data_indexes.get(key)
            if index is None:
                return HTTPStatus.NOT_FOUND, {"error": "no Data Index here"}
            index.requests += 1
            index.arrivals.append(time.monotonic())
            if index.failing is not None:
                return index.failing, {"error": "failing on purpose"}
            try:
                request = json.loads(body or b"{}")
                document = str(request["query"])
            except (ValueError, KeyError, TypeError):
                index.rejected += 1
                return HTTPStatus.BAD_REQUEST, {"errors": [{"message": "not a GraphQL request"}]}
            index.documents.append(document)
            errors = validation_errors(document)
            if errors:
                index.rejected += 1
                return HTTPStatus.OK, {"errors": [{"message": message} for message in errors]}
            result = graphql_sync(
                SCHEMA,
                document,
                root_value=_Query(index),
                variable_values=request.get("variables") or {},
                operation_name=request.get("operationName"),
            )
            answer: dict[str, Any] = {"data": result.data}
            if result.errors:
                index.rejected += 1
                answer["errors"] = [{"message": error.message} for error in result.errors]
            return HTTPStatus.OK, answer

    def answer_probe(self, key: tuple[str, str], workflow_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            runtime = self.runtimes.get(key)
            if runtime is None:
                return HTTPStatus.NOT_FOUND, {"error": "no runtime here"}
            runtime.probes += 1
            if runtime.failing is not None:
                return runtime.failing, {"error": "failing on purpose"}
            if workflow_id not in runtime.workflow_ids:
                return HTTPStatus.NOT_FOUND, {"error": f"no process {workflow_id}"}
            return HTTPStatus.OK, {"id": workflow_id, "type": "SW"}


class _Handler(BaseHTTPRequestHandler):
    standin: StandIn
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        key, rest = _split(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if rest != "/graphql":
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no {rest}"})
            return
        self._send(*self.standin.answer_graphql(key, body))

    def do_GET(self) -> None:
        key, rest = _split(self.path)
        prefix = "/management/processes/"
        if rest.startswith(prefix):
            self._send(*self.standin.answer_probe(key, unquote(rest[len(prefix) :])))
        elif rest.startswith("/q/health"):
            self._send(HTTPStatus.OK, {"status": "UP"})
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no {rest}"})

    def _send(self, status: int, body: Mapping[str, Any]) -> None:
        encoded = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the counters say what was asked."""


def _split(path: str) -> tuple[tuple[str, str], str]:
    """(namespace, service) of the prefix, and the rest of the path."""
    parts = urlsplit(path).path.split("/")
    # ['', 'graphql'] or ['', ns, svc, 'graphql'] or ['', ns, svc, 'management', 'processes', id]
    if len(parts) >= 4 and parts[1] and parts[1] not in ("graphql", "management", "q"):
        return (parts[1], parts[2]), "/" + "/".join(parts[3:])
    return DEFAULT, "/" + "/".join(parts[1:])


# -- the quick start's stand-in ------------------------------------------------------------------


def _seeds(text: str) -> Iterator[tuple[str, str, int]]:
    """`id=STATE:N,STATE:N` -> (id, state, count) triples."""
    workflow_id, _, states = text.partition("=")
    for part in states.split(","):
        state, _, count = part.partition(":")
        yield workflow_id, state.upper(), int(count or 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8180)
    parser.add_argument(
        "--runs",
        action="append",
        default=[],
        metavar="ID=STATE:N,...",
        help="seed runs of a workflow in the default Data Index (repeatable)",
    )
    arguments = parser.parse_args()
    standin = StandIn(port=arguments.port)
    index = standin.data_index()
    for seed in arguments.runs:
        for workflow_id, state, count in _seeds(seed):
            index.register(workflow_id)
            index.add_runs(workflow_id, state, count)
            standin.runtime().workflow_ids.add(workflow_id)
    standin.start()
    print(f"Stand-in Data Index at {standin.url}/graphql", flush=True)
    print(f"Operator setting: ORCHESTRATOR_OPERATOR_SERVICE_URL_OVERRIDE={standin.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main()
