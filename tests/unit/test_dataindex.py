"""The Data Index client: queries the real schema accepts, bounded requests, clear failures."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

from orchestrator_operator.adapters.dataindex import (
    BATCH_SIZE,
    REACHABILITY_QUERY,
    RUN_STATES,
    DataIndexClient,
    DataIndexError,
    RunFigures,
    runs_query,
)
from standins.data_index import DataIndex, StandIn

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "data-index"
# Built here from the fixture files, not borrowed from the stand-in, so that the check does not
# depend on the stand-in being right.
SCHEMA = build_schema(
    (SCHEMA_DIR / "basic.schema.graphqls").read_text()
    + "\n"
    + (SCHEMA_DIR / "count.schema.graphqls").read_text()
)

IDS = ["greeting", 'say "hi"', "élan", "a\\b", "x" * 200]


def schema_errors(document: str) -> list[str]:
    return [error.message for error in validate(SCHEMA, parse(document))]


@pytest.mark.parametrize("count", [1, 2, len(IDS), BATCH_SIZE])
def test_the_runs_query_validates_against_the_data_index_schema(count: int) -> None:
    ids = [IDS[i % len(IDS)] + str(i) for i in range(count)]
    document, variables = runs_query(ids)
    assert schema_errors(document) == []
    # Ids travel as variables, never inside the document.
    assert not any(workflow_id in document for workflow_id in ids)
    assert variables["ids"] == ids


def test_the_reachability_query_validates_against_the_data_index_schema() -> None:
    assert schema_errors(REACHABILITY_QUERY) == []


def test_the_schema_check_can_fail() -> None:
    errors = schema_errors('{ ProcessInstances(where: {processId: {equals: "x"}}) { id } }')
    assert errors
    assert "equals" in errors[0]


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn() as server:
        yield server


def seeded(standin: StandIn) -> DataIndex:
    index = standin.data_index("sonataflow", "orch-data-index-service")
    index.register("greeting", "http://greeting.team-a")
    index.add_runs("greeting", "COMPLETED", 3, start=datetime(2026, 5, 1, tzinfo=UTC))
    index.add_runs("greeting", "ERROR", 1, start=datetime(2026, 5, 2, tzinfo=UTC))
    index.add_runs("greeting", "ACTIVE", 2, start=datetime(2026, 4, 1, tzinfo=UTC))
    index.add_runs("other", "COMPLETED", 7)
    return index


def ask(url: str, ids: list[str]) -> dict[str, RunFigures]:
    async def go() -> dict[str, RunFigures]:
        client = DataIndexClient(timeout=5)
        try:
            return await client.runs(url, ids)
        finally:
            await client.close()

    return asyncio.run(go())


def test_figures_of_a_workflow_come_back_by_state_with_its_latest_run(standin: StandIn) -> None:
    seeded(standin)
    url = f"{standin.url}/sonataflow/orch-data-index-service"
    found = ask(url, ["greeting", "unknown"])
    greeting = found["greeting"]
    assert greeting.registered is True
    assert greeting.counts == {
        "PENDING": 0,
        "ACTIVE": 2,
        "COMPLETED": 3,
        "ABORTED": 0,
        "SUSPENDED": 0,
        "ERROR": 1,
    }
    assert greeting.last_run is not None
    assert greeting.last_run.state == "ERROR"
    assert greeting.last_run.start == datetime(2026, 5, 2, tzinfo=UTC)
    assert found["unknown"] == RunFigures.empty()


def test_one_request_answers_for_many_workflows_whatever_their_number_of_runs(
    standin: StandIn,
) -> None:
    index = seeded(standin)
    index.add_runs("greeting", "COMPLETED", 5000)
    url = f"{standin.url}/sonataflow/orch-data-index-service"
    before = index.requests
    found = ask(url, ["greeting", "other"])
    assert index.requests - before == 1
    assert found["greeting"].counts["COMPLETED"] == 5003
    many = [f"w{i}" for i in range(BATCH_SIZE + 1)]
    before = index.requests
    ask(url, many)
    assert index.requests - before == 2
    assert index.rejected == 0


def test_a_failing_data_index_raises_with_the_http_status(standin: StandIn) -> None:
    seeded(standin).failing = 503
    with pytest.raises(DataIndexError) as raised:
        ask(f"{standin.url}/sonataflow/orch-data-index-service", ["greeting"])
    assert raised.value.reason == "DataIndexError"
    assert "HTTP 503" in str(raised.value)


def test_an_unreachable_data_index_raises_without_waiting() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now.
    with pytest.raises(DataIndexError) as raised:
        ask(f"http://127.0.0.1:{port}", ["greeting"])
    assert raised.value.reason == "DataIndexUnreachable"
    assert f"127.0.0.1:{port}/graphql" in str(raised.value)


def test_graphql_errors_are_failures_that_name_the_first_error(standin: StandIn) -> None:
    standin.data_index()

    async def go() -> None:
        client = DataIndexClient(timeout=5)
        try:
            await client.query(standin.url, "{ ProcessInstances { nonsense } }", {})
        finally:
            await client.close()

    with pytest.raises(DataIndexError) as raised:
        asyncio.run(go())
    assert raised.value.reason == "QueryRejected"
    assert "nonsense" in str(raised.value)


def test_every_state_of_the_schema_is_counted() -> None:
    enum = SCHEMA.get_type("ProcessInstanceState")
    assert enum is not None
    assert set(RUN_STATES) == set(enum.values)  # type: ignore[attr-defined]
