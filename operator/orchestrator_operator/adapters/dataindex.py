"""The Data Index, asked over GraphQL what it knows of a set of workflows.

One request answers for up to `BATCH_SIZE` workflows at once: for each, whether its definition
is registered, how many of its runs are in each state, and its latest run. Counts come from
`CountProcessInstances` and the latest run from `orderBy: {start: DESC}` with a page of one, so
the cost of a request depends on the number of workflows asked about, never on how many runs
they have. Workflow ids travel as GraphQL variables, never spliced into the document.

Limitation: the Data Index knows a workflow by its id alone, so two Workflows with the same id
linked to one installation (in two namespaces) are shown the same, combined figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

RUN_STATES = ("PENDING", "ACTIVE", "COMPLETED", "ABORTED", "SUSPENDED", "ERROR")
BATCH_SIZE = 40
GRAPHQL_PATH = "/graphql"

# Asked when no workflow is linked: the cheapest question that still proves the Data Index
# answers GraphQL.
REACHABILITY_QUERY = "query Reachable { ProcessDefinitions(pagination: {limit: 1}) { id } }"

_MAX_ERROR = 300


class DataIndexError(Exception):
    """The Data Index could not be asked, or refused the question. The message is safe to show:
    it names the URL and the failure, never a response body beyond GraphQL's error messages."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class LastRun:
    id: str
    state: str
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class RunFigures:
    """What the Data Index says of one workflow."""

    registered: bool
    counts: Mapping[str, int]
    last_run: LastRun | None = None

    @classmethod
    def empty(cls) -> RunFigures:
        return cls(registered=False, counts=dict.fromkeys(RUN_STATES, 0))


def runs_query(workflow_ids: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The document and variables that ask about `workflow_ids` in one request."""
    variables: dict[str, Any] = {"ids": list(workflow_ids)}
    declarations = ["$ids: [String!]"]
    fields = ["  definitions: ProcessDefinitions(where: {id: {in: $ids}}) { id }"]
    for index, workflow_id in enumerate(workflow_ids):
        variable = f"id{index}"
        variables[variable] = workflow_id
        declarations.append(f"${variable}: String")
        for state in RUN_STATES:
            fields.append(
                f"  w{index}_{state.lower()}: CountProcessInstances("
                f"where: {{processId: {{equal: ${variable}}}, state: {{equal: {state}}}}})"
            )
        fields.append(
            f"  w{index}_last: ProcessInstances(where: {{processId: {{equal: ${variable}}}}},"
            " orderBy: {start: DESC}, pagination: {limit: 1}) { id state start end }"
        )
    document = f"query WorkflowRuns({', '.join(declarations)}) {{\n" + "\n".join(fields) + "\n}"
    return document, variables


def parse_runs(data: Mapping[str, Any], workflow_ids: Sequence[str]) -> dict[str, RunFigures]:
    """The figures of each workflow from the `data` of a `runs_query` answer."""
    registered = {
        str(definition.get("id"))
        for definition in data.get("definitions") or []
        if isinstance(definition, Mapping)
    }
    figures: dict[str, RunFigures] = {}
    for index, workflow_id in enumerate(workflow_ids):
        counts = {state: int(data.get(f"w{index}_{state.lower()}") or 0) for state in RUN_STATES}
        last = [run for run in data.get(f"w{index}_last") or [] if isinstance(run, Mapping)]
        figures[workflow_id] = RunFigures(
            registered=workflow_id in registered,
            counts=counts,
            last_run=_last_run(last[0]) if last else None,
        )
    return figures


def _last_run(run: Mapping[str, Any]) -> LastRun:
    return LastRun(
        id=str(run.get("id")),
        state=str(run.get("state") or "UNKNOWN"),
        start=parse_moment(run.get("start")),
        end=parse_moment(run.get("end")),
    )


def parse_moment(value: Any) -> datetime | None:
    """An ISO 8601 time in UTC, to the whole second; None when it is not one.

    Statuses show whole seconds: figures read back from a status after a restart must equal
    the same figures asked of the Data Index again, which gives milliseconds.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return moment.replace(microsecond=0)


class DataIndexClient:
    def __init__(
        self, *, timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._client = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def runs(self, url: str, workflow_ids: Sequence[str]) -> dict[str, RunFigures]:
        """Figures of every workflow in `workflow_ids`, from the Data Index at `url`: one
        request per `BATCH_SIZE` workflows, and one when there are none, to tell that it
        answers."""
        unique = sorted(set(workflow_ids))
        if not unique:
            await self.query(url, REACHABILITY_QUERY, {})
            return {}
        figures: dict[str, RunFigures] = {}
        for start in range(0, len(unique), BATCH_SIZE):
            batch = unique[start : start + BATCH_SIZE]
            document, variables = runs_query(batch)
            data = await self.query(url, document, variables)
            figures.update(parse_runs(data, batch))
        return figures

    async def query(self, url: str, document: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The `data` of one GraphQL request; any error, transport or GraphQL, raises."""
        endpoint = url.rstrip("/") + GRAPHQL_PATH
        try:
            response = await self._client.post(
                endpoint, json={"query": document, "variables": dict(variables)}
            )
        except httpx.TimeoutException as error:
            raise DataIndexError("DataIndexTimeout", f"{endpoint}: no answer in time") from error
        except httpx.HTTPError as error:
            raise DataIndexError(
                "DataIndexUnreachable", f"{endpoint}: {type(error).__name__}: {error}"[:_MAX_ERROR]
            ) from error
        if response.status_code != 200:
            raise DataIndexError(
                "DataIndexError", f"{endpoint} answered HTTP {response.status_code}"
            )
        try:
            body = response.json()
        except ValueError as error:
            raise DataIndexError("DataIndexError", f"{endpoint} answered with no JSON") from error
        errors = body.get("errors") if isinstance(body, Mapping) else None
        if errors:
            first = errors[0].get("message") if isinstance(errors[0], Mapping) else errors[0]
            raise DataIndexError(
                "QueryRejected",
                f"{endpoint} refused the query ({len(errors)} errors): {first}"[:_MAX_ERROR],
            )
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, dict):
            raise DataIndexError("DataIndexError", f"{endpoint} answered without data")
        return data
