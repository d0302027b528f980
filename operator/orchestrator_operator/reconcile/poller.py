"""Polling each installation's Data Index for run figures, and each linked runtime's
management endpoint for availability.

One task per installation with a Data Index. Each round asks the Data Index about every linked
workflow in as few requests as `DataIndexClient.runs` allows, probes the runtimes, records what
changed in `LiveStatus`, and tells the controllers which objects to look at again; the
controllers are the only writers of status. A failing Data Index is asked again after a
doubling delay, so that an outage costs a request every few minutes, not a loop; the runtimes
are still probed every interval meanwhile, since their availability does not depend on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator_operator.adapters.dataindex import DataIndexClient, DataIndexError, RunFigures
from orchestrator_operator.adapters.runtime import RuntimeProbe
from orchestrator_operator.adapters.serviceurls import ServiceUrls
from orchestrator_operator.reconcile.live import (
    InstallationKey,
    LinkedWorkflow,
    LiveStatus,
    WorkflowKey,
)

logger = logging.getLogger(__name__)

REACHABLE = "Reachable"
# However often a linked workflow appears, a round of one installation ends at least this long
# before the next one starts.
MIN_SPACING_SECONDS = 1.0
# A round that took longer than the interval is still followed by this share of the interval at
# rest, so that a slow Data Index is never asked back to back.
MIN_REST_SHARE = 0.5
MAX_BACKOFF_SECONDS = 300.0
PROBES_AT_ONCE = 8


def retry_delay(interval: float, failures: int) -> float:
    """Seconds before asking a failing Data Index again: the interval, doubling with each
    failure in a row, up to five minutes (or the interval, when that is longer)."""
    return float(min(interval * 2 ** (failures - 1), max(interval, MAX_BACKOFF_SECONDS)))


def pause_after(interval: float, spent: float) -> tuple[float, float]:
    """How long to wait after a round that took `spent` seconds, as (firm, total).

    The first `firm` seconds are not cut short by a poke, so that a burst of pokes costs one
    round. The total brings the next round one interval after the start of this one when the
    round was quick, and never less than half an interval after its end when it was slow.
    """
    firm = min(interval, MIN_SPACING_SECONDS)
    return firm, max(interval - spent, interval * MIN_REST_SHARE, firm)


@dataclass(frozen=True)
class PollTarget:
    """What to poll for one installation, as its controller knows it now."""

    data_index_url: str
    # Whether the URL names a Service of the cluster (ours), rather than an external URL.
    in_cluster: bool
    workflows: Sequence[LinkedWorkflow]


TargetLookup = Callable[[InstallationKey], PollTarget | None]
PollObserver = Callable[[str, str, float], None]  # installation, result, seconds


class RunsPoller:
    def __init__(
        self,
        *,
        client: DataIndexClient,
        probe: RuntimeProbe | None,
        store: LiveStatus,
        urls: ServiceUrls,
        interval: float,
        targets: TargetLookup,
        workflows_changed: Callable[[set[WorkflowKey]], None],
        installation_changed: Callable[[InstallationKey], None],
        observe: PollObserver | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.probe = probe
        self.store = store
        self.urls = urls
        self.interval = interval
        self.targets = targets
        self.workflows_changed = workflows_changed
        self.installation_changed = installation_changed
        self.observe = observe
        self.clock = clock
        self._tasks: dict[InstallationKey, asyncio.Task[None]] = {}
        self._wake: dict[InstallationKey, asyncio.Event] = {}
        # Installations whose backoff ends at the next wake: their Data Index just came up.
        self._retry_now: set[InstallationKey] = set()

    def ensure(self, key: InstallationKey) -> None:
        """Poll this installation from now on, starting at once if it was not polled yet."""
        task = self._tasks.get(key)
        if task is not None and not task.done():
            return
        self._wake[key] = asyncio.Event()
        self._tasks[key] = asyncio.create_task(self._run(key), name=f"poll {key[0]}/{key[1]}")

    def poke(self, key: InstallationKey) -> None:
        """Poll soon: the set of linked workflows changed. Pokes while a poll runs coalesce."""
        if key in self._wake:
            self._wake[key].set()

    def retry(self, key: InstallationKey) -> None:
        """Poll soon even while backing off: the Data Index has just become ready, and the
        failures so far only said that it was still starting."""
        if key in self._wake:
            self._retry_now.add(key)
            self._wake[key].set()

    def stop(self, key: InstallationKey) -> None:
        task = self._tasks.pop(key, None)
        self._wake.pop(key, None)
        self._retry_now.discard(key)
        if task is not None:
            task.cancel()
        self.store.forget_installation(key)

    def polled(self) -> list[InstallationKey]:
        return [key for key, task in self._tasks.items() if not task.done()]

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self, key: InstallationKey) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        # When the Data Index may be asked again; until then a round only probes the runtimes.
        data_index_due = loop.time()
        while True:
            target = self.targets(key)
            if target is None:
                # The installation is gone or has no Data Index any more.
                self._tasks.pop(key, None)
                self._wake.pop(key, None)
                return
            wake = self._wake[key]
            wake.clear()
            started = loop.time()
            if key in self._retry_now:
                self._retry_now.discard(key)
                failures = 0
            asks = failures == 0 or started >= data_index_due
            try:
                if asks:
                    answered = await self.poll_once(key, target)
                else:
                    await self.probe_once(key, target)
            except Exception:
                # A bug in one round must not end the polling of this installation for good.
                logger.exception("Polling OrchestratorInstance %s/%s failed", *key)
                answered = False
            if asks:
                failures = 0 if answered else failures + 1
                if failures:
                    data_index_due = started + retry_delay(self.interval, failures)
            await self._pause(key, wake, loop.time() - started, failures > 0, data_index_due)

    async def _pause(
        self,
        key: InstallationKey,
        wake: asyncio.Event,
        spent: float,
        backing_off: bool,
        data_index_due: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        firm, total = pause_after(self.interval, spent)
        if backing_off:
            # A poke must not bring the next round forward, only a retry. With runtimes to
            # probe, rounds go on every interval; the Data Index is asked once it is due.
            until_due = data_index_due - loop.time()
            wait = max(firm, min(total, until_due) if self.probe else until_due)
            deadline = loop.time() + wait
            while key not in self._retry_now and (remaining := deadline - loop.time()) > 0:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=remaining)
            return
        await asyncio.sleep(firm)
        if total > firm:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=total - firm)

    async def poll_once(self, key: InstallationKey, target: PollTarget) -> bool:
        """One round for one installation; True when the Data Index answered."""
        namespace, name = key
        url = self.urls.reachable(target.data_index_url, in_cluster=target.in_cluster)
        ids = sorted(
            {workflow.workflow_id for workflow in target.workflows if workflow.workflow_id}
        )
        started = time.monotonic()
        try:
            by_id = await self.client.runs(url, ids)
        except DataIndexError as error:
            self._observe(key, "error", started)
            changed, reachability_changed = self._failed(key, target, error)
            answered = False
        else:
            self._observe(key, "success", started)
            changed, reachability_changed = self._answered(key, target, by_id)
            answered = True
        if reachability_changed and answered:
            logger.info("Data Index of OrchestratorInstance %s/%s answers", namespace, name)
        # The runtimes answer for themselves: an outage of the Data Index says nothing of them.
        changed |= await self._probe(target)
        self._tell(key, changed, reachability_changed)
        return answered

    async def probe_once(self, key: InstallationKey, target: PollTarget) -> None:
        """A round that only probes the runtimes, while the Data Index is not due."""
        self._tell(key, await self._probe(target), installation=False)

    def _answered(
        self, key: InstallationKey, target: PollTarget, by_id: Mapping[str, RunFigures]
    ) -> tuple[set[WorkflowKey], bool]:
        now = self.clock()
        changed = self.store.record_runs(
            {w.key: by_id.get(w.workflow_id, RunFigures.empty()) for w in target.workflows}, now
        )
        reachability_changed = self.store.record_reachability(
            key, True, REACHABLE, f"{target.data_index_url}/graphql answers", now
        )
        return changed, reachability_changed

    def _failed(
        self, key: InstallationKey, target: PollTarget, error: DataIndexError
    ) -> tuple[set[WorkflowKey], bool]:
        now = self.clock()
        changed = self.store.mark_stale(workflow.key for workflow in target.workflows)
        reachability_changed = self.store.record_reachability(
            key, False, error.reason, str(error), now
        )
        if reachability_changed:
            logger.warning(
                "Data Index of OrchestratorInstance %s/%s cannot be asked: %s", *key, error
            )
        return changed, reachability_changed

    async def _probe(self, target: PollTarget) -> set[WorkflowKey]:
        if self.probe is None or not target.workflows:
            return set()
        probe = self.probe
        limit = asyncio.Semaphore(PROBES_AT_ONCE)

        async def one(workflow: LinkedWorkflow) -> WorkflowKey | None:
            async with limit:
                outcome = await probe.probe(workflow.service_url, workflow.workflow_id)
            return (
                workflow.key
                if self.store.record_probe(workflow.key, outcome, self.clock())
                else None
            )

        results = await asyncio.gather(*(one(w) for w in target.workflows if w.workflow_id))
        return {key for key in results if key is not None}

    def _tell(self, key: InstallationKey, workflows: set[WorkflowKey], installation: bool) -> None:
        if workflows:
            self.workflows_changed(workflows)
        if workflows or installation:
            self.installation_changed(key)

    def _observe(self, key: InstallationKey, result: str, started: float) -> None:
        if self.observe:
            self.observe(f"{key[0]}/{key[1]}", result, time.monotonic() - started)
