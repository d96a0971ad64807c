"""When the server runs CPython's full garbage collections.

CPython collects its oldest generation whenever objects that survived there grew by a quarter since the last
full collection. Each full collection scans every tracked object and stops the event loop while it does. A
growing meeting is the worst case: a hundred people joining at 10/s made six full collections in ten seconds
(44 ms growing to 280 ms each, 1.0 s in all, almost none of it reclaiming anything), about a tenth of the core
on top of the joins themselves, and each pause stalls all forwarding at once.

`FullCollectionSchedule` turns CPython's automatic full collections off and decides itself. It looks at the
heap every second, and:
- when the heap has doubled since the last decision and has settled (a join storm is over), freezes it
  (`gc.freeze`) without a scan: what a join makes lives as long as the participant, and after a hundred
  joins a full scan found nothing to free in every run we measured;
- freezes it at once, settled or not, when it has quadrupled;
- never decides twice within `min_gap`;
- at least every `max_interval`, collects what is not frozen, then freezes what survives (at a hundred
  participants a full scan pauses the loop ~350 ms; a scan of the unfrozen rest, ~30 ms);
- every `thaw_every`, thaws everything and collects it once, so the cycles that people who left leave behind
  (peer connections, transports) are freed within that bound.
The young generations are collected as before. The schedule is process-wide state: the process that owns it
(`convene serve`) starts and closes it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

# A gen-2 threshold CPython never reaches (it counts young collections since the last full one).
NEVER = 1 << 30


@dataclass(frozen=True)
class ScheduleSettings:
    growth: float = 1.0  # a freeze once allocated blocks grew by this fraction (1.0: doubled)...
    settle: float = 3.0  # ...and then grew by less than `settled_growth` over this many seconds
    settled_growth: float = 0.05
    ceiling: float = 3.0  # grown by this fraction (3.0: quadrupled): at once, settled or not
    min_gap: float = 10.0  # seconds: never two decisions closer than this
    max_interval: float = 60.0  # seconds: a full collection (of what is not frozen) at least this often
    thaw_every: float = 600.0  # seconds: a collection of everything, frozen or not, this often
    check_every: float = 1.0  # seconds between looks at the heap (sys.getallocatedblocks: ~0.1 ms at 5M blocks)


@dataclass
class CollectionRecord:
    at: float  # monotonic
    pause: float  # seconds the collection took
    collected: int
    reason: str  # "growth", "ceiling", "interval" or "thaw"


class FullCollectionSchedule:
    def __init__(self, settings: ScheduleSettings | None = None) -> None:
        self.settings = settings or ScheduleSettings()
        self.history: deque[CollectionRecord] = deque(maxlen=16)  # the latest few, for logs and tests
        self._log = logging.getLogger("convene.gc")
        self._saved_threshold: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self._last = self._thawed = time.monotonic()
        self._baseline = sys.getallocatedblocks()
        self._samples: deque[tuple[float, int]] = deque()

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        """Turns automatic full collections off and starts checking; on the running event loop."""
        if self._task is not None:
            return
        threshold = gc.get_threshold()
        self._saved_threshold = (threshold[0], threshold[1], threshold[2])
        gc.set_threshold(threshold[0], threshold[1], NEVER)
        self._last = self._thawed = time.monotonic()
        self._baseline = sys.getallocatedblocks()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="full-collection-schedule")

    def observe(self, now: float, blocks: int) -> str | None:
        """Takes one look at the heap (`blocks` allocated at `now`); why `collect` is due ("thaw", "interval",
        "ceiling", "growth"), or None."""
        settings, samples = self.settings, self._samples
        samples.append((now, blocks))
        while len(samples) > 1 and samples[1][0] <= now - settings.settle:
            samples.popleft()  # samples[0] stays the last look at least `settle` ago
        if now - self._thawed >= settings.thaw_every:
            return "thaw"
        since = now - self._last
        if since >= settings.max_interval:
            return "interval"
        if since < settings.min_gap or blocks < self._baseline * (1 + settings.growth):
            return None
        if blocks >= self._baseline * (1 + settings.ceiling):
            return "ceiling"
        then, before = samples[0]
        if then <= now - settings.settle and blocks <= before * (1 + settings.settled_growth):
            return "growth"
        return None

    def collect(self, reason: str) -> CollectionRecord:
        """A full collection for `reason` ("growth" and "ceiling" only freeze), then a freeze."""
        started = time.perf_counter()
        if reason == "thaw":
            gc.unfreeze()
        collected = 0 if reason in ("growth", "ceiling") else gc.collect(2)
        gc.freeze()
        record = CollectionRecord(time.monotonic(), time.perf_counter() - started, collected, reason)
        self._last = record.at
        if reason == "thaw":
            self._thawed = record.at
        self._baseline = sys.getallocatedblocks()
        self.history.append(record)
        self._log.debug("full collection (%s): %.0f ms, %d collected, %d blocks after", reason,
                        record.pause * 1000, collected, self._baseline)
        return record

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.check_every)
            reason = self.observe(time.monotonic(), sys.getallocatedblocks())
            if reason is not None:
                self.collect(reason)

    async def close(self) -> None:
        """Gives full collections back to CPython, with nothing frozen; safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        saved, self._saved_threshold = self._saved_threshold, None
        if saved is not None:
            current = gc.get_threshold()
            gc.set_threshold(current[0], current[1], saved[2])
            gc.unfreeze()

    async def ctx(self, app: web.Application) -> AsyncIterator[None]:
        """For `app.cleanup_ctx`."""
        self.start()
        yield
        await self.close()
