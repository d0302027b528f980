"""A work queue of object keys, as controllers keep them: each key waits at most once, is worked
on by one worker at a time, and comes back after a growing delay when its reconcile fails.

Events only say "look at this object again"; many events about one object while it waits are
one piece of work, which is what keeps a burst of watch events from turning into a burst of
writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class Backoff:
    """Delays between tries of one failing key: doubling from `first` up to `limit` seconds."""

    first: float = 1.0
    limit: float = 300.0
    failures: dict[Hashable, int] = field(default_factory=dict)

    def next_delay(self, key: Hashable) -> float:
        failures = self.failures.get(key, 0)
        self.failures[key] = failures + 1
        return float(min(self.first * 2**failures, self.limit))

    def forget(self, key: Hashable) -> None:
        self.failures.pop(key, None)


# Told of every finished reconcile: the key, how long it took, and whether it failed.
ReconcileObserver = Callable[[Hashable, float, bool], None]


class WorkQueue:
    def __init__(
        self, backoff: Backoff | None = None, observe: ReconcileObserver | None = None
    ) -> None:
        self._observe = observe
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._waiting: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._again: set[Hashable] = set()
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self.backoff = backoff or Backoff()

    def add(self, key: Hashable) -> None:
        if key in self._processing:
            # Seen again while a worker has it: do it once more when that worker is done.
            self._again.add(key)
            return
        if key in self._waiting:
            return
        self._waiting.add(key)
        self._queue.put_nowait(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        if key in self._timers:
            self._timers[key].cancel()
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def __len__(self) -> int:
        return len(self._waiting)

    @property
    def idle(self) -> bool:
        return not self._waiting and not self._processing

    async def work(self, process: Callable[[Hashable], Awaitable[None]]) -> None:
        """One worker: take keys forever, reconcile each, requeue it with a delay on failure."""
        while True:
            key = await self._queue.get()
            self._waiting.discard(key)
            self._processing.add(key)
            started = time.monotonic()
            failed = False
            try:
                await process(key)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failed = True
                delay = self.backoff.next_delay(key)
                if getattr(error, "reported", False):
                    # Already in the object's status and Events; a traceback would add nothing.
                    logger.warning(
                        "Reconciling %s failed: %s; trying again in %.0f s", key, error, delay
                    )
                else:
                    logger.exception("Reconciling %s failed; trying again in %.0f s", key, delay)
                self.add_after(key, delay)
            else:
                self.backoff.forget(key)
            finally:
                if self._observe:
                    self._observe(key, time.monotonic() - started, failed)
                self._processing.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    # A key that failed comes back when its delay is over, not at once: events
                    # its own partial writes caused must not turn the backoff into a hot loop.
                    if not failed:
                        self.add(key)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
