"""The work queue: a key seen again while it is worked on comes back once more, unless its
reconcile failed, in which case it waits for its backoff."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from orchestrator_operator.reconcile.queue import Backoff, WorkQueue


async def _run(fails: bool) -> list[float]:
    queue = WorkQueue(backoff=Backoff(first=0.3))
    loop = asyncio.get_running_loop()
    started: list[float] = []

    async def process(key: Hashable) -> None:
        started.append(loop.time())
        # An event about the key arrives while it is worked on, as its own writes cause.
        queue.add(key)
        await asyncio.sleep(0)
        if fails and len(started) == 1:
            raise RuntimeError("the API server refused")

    worker = asyncio.create_task(queue.work(process))
    queue.add("hello")
    await asyncio.sleep(0.6)
    worker.cancel()
    queue.close()
    return [moment - started[0] for moment in started]


def test_a_key_seen_while_it_is_worked_on_is_worked_on_once_more_at_once() -> None:
    moments = asyncio.run(_run(fails=False))

    # Every run sees the key again, so it keeps coming back, each time without a wait.
    assert len(moments) >= 3
    assert moments[1] < 0.1


def test_a_failed_key_seen_again_waits_for_its_backoff() -> None:
    moments = asyncio.run(_run(fails=True))

    assert len(moments) >= 2
    assert moments[1] >= 0.29
