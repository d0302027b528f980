"""Polling: figures recorded only when they change, stale when the Data Index fails, probes of
the runtimes, URLs rewritten for an operator outside the cluster, backoff."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator_operator.adapters.dataindex import DataIndexClient, RunFigures
from orchestrator_operator.adapters.runtime import ProbeOutcome, RuntimeProbe
from orchestrator_operator.adapters.serviceurls import ServiceUrls
from orchestrator_operator.reconcile.live import LinkedWorkflow, LiveStatus
from orchestrator_operator.reconcile.poller import (
    MAX_BACKOFF_SECONDS,
    PollTarget,
    RunsPoller,
    pause_after,
    retry_delay,
)
from standins.data_index import StandIn

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEY = ("sonataflow", "orch")
DATA_INDEX = "http://orch-data-index-service.sonataflow"
GREETING = LinkedWorkflow("team-a", "greeting", "greeting", ready=True)
IDLE = LinkedWorkflow("team-a", "idle", "idle")


class Recorder:
    def __init__(self) -> None:
        self.workflows: list[set[tuple[str, str]]] = []
        self.installations: list[tuple[str, str]] = []
        self.now = T0

    def clock(self) -> datetime:
        return self.now


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn() as server:
        index = server.data_index("sonataflow", "orch-data-index-service")
        index.register("greeting")
        index.add_runs("greeting", "COMPLETED", 2)
        server.runtime("team-a", "greeting").workflow_ids.add("greeting")
        yield server


def recorded_poller(
    recorder: Recorder, store: LiveStatus, urls: ServiceUrls, *, probing: bool
) -> RunsPoller:
    """A poller that tells `recorder` what changed, on its clock; it polls when told to."""
    return RunsPoller(
        client=DataIndexClient(timeout=5),
        probe=RuntimeProbe(timeout=5, reachable=urls.reachable) if probing else None,
        store=store,
        urls=urls,
        interval=30,
        targets=lambda key: None,
        workflows_changed=recorder.workflows.append,
        installation_changed=recorder.installations.append,
        clock=recorder.clock,
    )


def run_rounds(
    standin: StandIn,
    recorder: Recorder,
    rounds: list[float],
    before_round: Callable[[int], None] = lambda index: None,
) -> LiveStatus:
    """Poll once per entry of `rounds` into one store, moving the clock on by that many seconds
    and calling `before_round` with the round's index first."""
    store = LiveStatus()
    urls = ServiceUrls(template=standin.override_template)

    async def go() -> None:
        poller = recorded_poller(recorder, store, urls, probing=True)
        target = PollTarget(DATA_INDEX, in_cluster=True, workflows=[GREETING, IDLE])
        try:
            for index, advance in enumerate(rounds):
                recorder.now += timedelta(seconds=advance)
                before_round(index)
                await poller.poll_once(KEY, target)
        finally:
            await poller.client.close()
            assert poller.probe is not None
            await poller.probe.close()

    asyncio.run(go())
    return store


def test_figures_are_recorded_once_and_a_second_poll_changes_nothing(standin: StandIn) -> None:
    recorder = Recorder()
    store = run_rounds(standin, recorder, [0, 30])
    assert recorder.workflows == [{GREETING.key, IDLE.key}]
    assert recorder.installations == [KEY]
    report = store.runs[GREETING.key]
    assert report.figures.counts["COMPLETED"] == 2
    assert report.changed_at == T0
    assert store.runs[IDLE.key].figures == RunFigures.empty()
    assert store.reachability[KEY].reachable is True


def test_new_runs_change_the_figures_and_the_time_they_changed(standin: StandIn) -> None:
    recorder = Recorder()
    index = standin.data_index("sonataflow", "orch-data-index-service")

    def before_round(round_index: int) -> None:
        if round_index == 1:
            index.add_runs("greeting", "ERROR", start=datetime(2026, 3, 1, tzinfo=UTC))

    store = run_rounds(standin, recorder, [0, 60, 60], before_round)
    report = store.runs[GREETING.key]
    assert report.figures.counts["ERROR"] == 1
    assert report.figures.counts["COMPLETED"] == 2
    assert report.figures.last_run is not None
    assert report.figures.last_run.state == "ERROR"
    # Changed by the second round, confirmed unchanged by the third.
    assert report.changed_at == T0 + timedelta(seconds=60)
    assert store.runs[IDLE.key].changed_at == T0
    assert recorder.workflows == [{GREETING.key, IDLE.key}, {GREETING.key}]


def test_a_failing_data_index_keeps_the_figures_and_marks_them_stale(standin: StandIn) -> None:
    recorder = Recorder()
    index = standin.data_index("sonataflow", "orch-data-index-service")
    store = LiveStatus()
    urls = ServiceUrls(template=standin.override_template)

    async def go() -> None:
        poller = recorded_poller(recorder, store, urls, probing=False)
        target = PollTarget(DATA_INDEX, in_cluster=True, workflows=[GREETING])
        assert await poller.poll_once(KEY, target) is True
        index.failing = 503
        recorder.now += timedelta(seconds=30)
        assert await poller.poll_once(KEY, target) is False
        stale = store.runs[GREETING.key]
        assert stale.stale is True
        assert stale.figures.counts["COMPLETED"] == 2
        assert stale.changed_at == T0
        reachability = store.reachability[KEY]
        assert (reachability.reachable, reachability.reason) == (False, "DataIndexError")
        assert "HTTP 503" in reachability.message
        # Failing again changes nothing more.
        recorder.now += timedelta(seconds=30)
        changes = len(recorder.workflows)
        assert await poller.poll_once(KEY, target) is False
        assert len(recorder.workflows) == changes
        index.failing = None
        recorder.now += timedelta(seconds=30)
        assert await poller.poll_once(KEY, target) is True
        assert store.runs[GREETING.key].stale is False
        assert store.runs[GREETING.key].changed_at == T0
        await poller.client.close()

    asyncio.run(go())
    assert recorder.workflows == [{GREETING.key}, {GREETING.key}, {GREETING.key}]


def test_probes_report_the_in_cluster_url_and_the_answer(standin: StandIn) -> None:
    recorder = Recorder()
    store = run_rounds(standin, recorder, [0, 30])
    served = store.probes[GREETING.key]
    assert served.outcome == ProbeOutcome(
        url="http://greeting.team-a/management/processes/greeting", code=200
    )
    assert served.since == T0
    assert served.describe() == (
        "GET http://greeting.team-a/management/processes/greeting answered HTTP 200"
        " (since 2026-12-01T12:00:00Z)"
    )
    missing = store.probes[IDLE.key]
    assert missing.outcome.code == 404
    assert not missing.ok


def test_runtimes_are_probed_while_the_data_index_fails(standin: StandIn) -> None:
    recorder = Recorder()
    standin.data_index("sonataflow", "orch-data-index-service").failing = 503
    store = LiveStatus()
    urls = ServiceUrls(template=standin.override_template)

    async def go() -> bool:
        poller = recorded_poller(recorder, store, urls, probing=True)
        try:
            target = PollTarget(DATA_INDEX, in_cluster=True, workflows=[GREETING, IDLE])
            return await poller.poll_once(KEY, target)
        finally:
            await poller.client.close()
            assert poller.probe is not None
            await poller.probe.close()

    assert asyncio.run(go()) is False
    assert store.reachability[KEY].reachable is False
    assert store.probes[GREETING.key].outcome.code == 200
    assert store.probes[IDLE.key].outcome.code == 404
    assert recorder.workflows == [{GREETING.key, IDLE.key}]
    assert standin.runtime("team-a", "greeting").probes == 1


def test_while_backing_off_rounds_go_on_probing_without_asking_the_data_index(
    standin: StandIn,
) -> None:
    index = standin.data_index("sonataflow", "orch-data-index-service")
    index.failing = 503
    runtime = standin.runtime("team-a", "greeting")
    store = LiveStatus()
    urls = ServiceUrls(template=standin.override_template)
    target = PollTarget(DATA_INDEX, in_cluster=True, workflows=[GREETING])

    async def go() -> None:
        poller = RunsPoller(
            client=DataIndexClient(timeout=5),
            probe=RuntimeProbe(timeout=5, reachable=urls.reachable),
            store=store,
            urls=urls,
            # Failures at 0, 0.3 and 0.9 s: the next request is due at 2.1 s, while the
            # runtimes are probed every 0.3 s.
            interval=0.3,
            targets=lambda key: target,
            workflows_changed=lambda keys: None,
            installation_changed=lambda key: None,
        )
        poller.ensure(KEY)
        try:
            for _ in range(500):
                if index.requests >= 3:
                    break
                await asyncio.sleep(0.01)
            assert index.requests == 3
            probes = runtime.probes
            for _ in range(500):
                if runtime.probes >= probes + 2:
                    break
                await asyncio.sleep(0.01)
            assert runtime.probes >= probes + 2, "the runtimes were not probed during the backoff"
            assert index.requests == 3, "a probe round asked the Data Index"
        finally:
            await poller.close()
            await poller.client.close()
            assert poller.probe is not None
            await poller.probe.close()

    asyncio.run(go())


@pytest.mark.parametrize(
    ("interval", "spent", "firm", "total"),
    [
        (30, 0.2, 1, 29.8),  # a quick round: the next one an interval after this one began
        (30, 29.5, 1, 15),  # nearly the whole interval: still half of it at rest
        (30, 45, 1, 15),  # slower than the interval: not back to back
        (0.5, 2, 0.5, 0.5),  # an interval under the spacing: the interval itself
    ],
    ids=["quick", "nearly-the-interval", "slower-than-the-interval", "short-interval"],
)
def test_rounds_are_never_back_to_back(
    interval: float, spent: float, firm: float, total: float
) -> None:
    assert pause_after(interval, spent) == (firm, total)


@pytest.mark.parametrize(
    ("urls", "url", "in_cluster", "expected"),
    [
        (
            ServiceUrls(template="http://127.0.0.1:9/{namespace}/{name}"),
            "http://orch-data-index-service.sonataflow/graphql",
            True,
            "http://127.0.0.1:9/sonataflow/orch-data-index-service/graphql",
        ),
        (
            ServiceUrls(template="http://127.0.0.1:9"),
            "http://greeting.team-a/management/processes/greeting",
            True,
            "http://127.0.0.1:9/management/processes/greeting",
        ),
        (
            ServiceUrls(template="http://127.0.0.1:9"),
            "https://di.example.com/graphql",
            False,
            "https://di.example.com/graphql",
        ),
        (
            ServiceUrls(mapping={"https://di.example.com": "http://localhost:8080/"}),
            "https://di.example.com/graphql",
            False,
            "http://localhost:8080/graphql",
        ),
        (ServiceUrls(), "http://a.b/graphql", True, "http://a.b/graphql"),
    ],
    ids=["template", "base-only", "external-kept", "mapping", "nothing-set"],
)
def test_service_urls_are_rewritten_for_an_operator_outside_the_cluster(
    urls: ServiceUrls, url: str, in_cluster: bool, expected: str
) -> None:
    assert urls.reachable(url, in_cluster=in_cluster) == expected


def test_retries_back_off_to_a_ceiling() -> None:
    delays = [retry_delay(30, failures) for failures in range(1, 10)]
    assert delays[:4] == [30, 60, 120, 240]
    assert max(delays) == MAX_BACKOFF_SECONDS
    assert retry_delay(600, 5) == 600


def test_the_poller_loop_stops_when_the_installation_goes() -> None:
    calls: list[tuple[str, str]] = []

    def gone(key: tuple[str, str]) -> PollTarget | None:
        calls.append(key)
        return None

    async def go() -> None:
        poller = RunsPoller(
            client=DataIndexClient(timeout=1),
            probe=None,
            store=LiveStatus(),
            urls=ServiceUrls(),
            interval=0.01,
            targets=gone,
            workflows_changed=lambda keys: None,
            installation_changed=lambda key: None,
        )
        poller.ensure(KEY)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not poller.polled():
                break
        assert poller.polled() == []
        await poller.client.close()

    asyncio.run(go())
    assert calls == [KEY]


def test_a_poke_waits_out_the_backoff_but_a_retry_ends_it(standin: StandIn) -> None:
    index = standin.data_index("sonataflow", "orch-data-index-service")
    index.failing = 503
    store = LiveStatus()
    target = PollTarget(DATA_INDEX, in_cluster=True, workflows=[GREETING])

    async def go() -> None:
        poller = RunsPoller(
            client=DataIndexClient(timeout=5),
            probe=None,
            store=store,
            urls=ServiceUrls(template=standin.override_template),
            interval=1,
            targets=lambda key: target,
            workflows_changed=lambda keys: None,
            installation_changed=lambda key: None,
        )
        poller.ensure(KEY)
        try:
            for _ in range(250):  # two failures: the next try is then two seconds away
                if index.requests >= 2:
                    break
                await asyncio.sleep(0.02)
            requests = index.requests
            assert requests == 2
            poller.poke(KEY)
            await asyncio.sleep(0.5)
            assert index.requests == requests, "a poke cut the backoff short"

            index.failing = None
            poller.retry(KEY)
            for _ in range(25):
                await asyncio.sleep(0.02)
                if store.reachability[KEY].reachable:
                    break
            assert store.reachability[KEY].reachable, "a retry did not end the backoff"
        finally:
            await poller.close()
            await poller.client.close()

    asyncio.run(go())
