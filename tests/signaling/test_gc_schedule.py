"""The full-collection schedule `convene serve` runs: CPython's automatic full collections are off while it runs
and back after; it collects when the heap doubled (not closer than its gap) and at least every interval, so
cyclic garbage (what a departed participant leaves) is freed within that bound."""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import weakref

from common.gc_schedule import NEVER, FullCollectionSchedule, ScheduleSettings


class Cyclic:
    """Garbage only a full collection frees once it has aged into the oldest generation."""

    def __init__(self) -> None:
        self.me = self


def aged_cycle() -> weakref.ref[Cyclic]:
    item = Cyclic()
    ref = weakref.ref(item)
    gc.collect(1)
    gc.collect(1)  # two young collections move it into the oldest generation
    del item
    return ref


async def test_interval_frees_aged_cycles_and_close_restores_cpython() -> None:
    before = gc.get_threshold()
    schedule = FullCollectionSchedule(ScheduleSettings(growth=100.0, min_gap=0.0, max_interval=0.3,
                                                       check_every=0.05))
    schedule.start()
    try:
        assert gc.get_threshold() == (before[0], before[1], NEVER)
        ref = aged_cycle()
        gc.collect(1)
        assert ref() is not None  # young collections do not reach it
        deadline = time.monotonic() + 5
        while ref() is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert ref() is None
        assert schedule.history and schedule.history[-1].reason == "interval"
        assert schedule.history[-1].collected >= 1
    finally:
        await schedule.close()
        await schedule.close()  # safe twice
    assert gc.get_threshold() == before
    assert not schedule.running


async def test_growth_collects_early_but_never_within_the_gap() -> None:
    settings = ScheduleSettings(growth=0.5, min_gap=0.2, max_interval=3600.0, check_every=0.05)
    schedule = FullCollectionSchedule(settings)
    schedule.start()
    try:
        now = time.monotonic()
        blocks = sys.getallocatedblocks()
        assert schedule.due(now, blocks) is None
        grown = int(blocks * 1.6)
        assert schedule.due(now, grown) is None  # within the gap
        assert schedule.due(now + 0.25, grown) == "growth"
        assert schedule.due(now + 0.25, int(blocks * 1.2)) is None  # not grown enough
        # Real growth: the heap more than doubles with objects that stay; the schedule collects, then measures
        # its next baseline from what is left.
        kept = [[i] for i in range(int(blocks * 0.8))]
        deadline = time.monotonic() + 5
        while not schedule.history and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert [record.reason for record in schedule.history] == ["growth"]
        assert schedule.due(time.monotonic() + 0.25, sys.getallocatedblocks()) is None
        del kept
    finally:
        await schedule.close()
