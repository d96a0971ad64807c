"""The full-collection schedule `convene serve` runs: CPython's automatic full collections are off while it runs
and back after; it collects when the heap doubled and settled (not closer than its gap) and at least every
interval, freezing what survives; a thaw collects everything, so cyclic garbage (what a departed participant
leaves) is freed within that bound."""

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


def test_growth_waits_until_the_heap_settles_but_not_past_the_ceiling() -> None:
    settings = ScheduleSettings(growth=1.0, settle=3.0, settled_growth=0.05, ceiling=3.0, min_gap=10.0,
                                max_interval=60.0)
    schedule = FullCollectionSchedule(settings)  # not started: only its judgement
    base = sys.getallocatedblocks()
    t0 = time.monotonic()
    looks = [(t0 + t, int(base * grown)) for t, grown in ((1, 1.2), (5, 1.6), (11, 2.2), (12, 2.6), (13, 2.9))]
    assert [schedule.observe(t, blocks) for t, blocks in looks] == [None] * 5  # doubled, still growing (a join storm)
    assert schedule.observe(t0 + 14, int(base * 3.0)) is None
    assert schedule.observe(t0 + 15, int(base * 3.0)) is None  # steady for 2 s of the 3 it waits
    assert schedule.observe(t0 + 16, int(base * 3.02)) == "growth"  # <5 % since the look 3 s ago
    storm = FullCollectionSchedule(settings)
    assert storm.observe(t0 + 9, int(base * 4.5)) is None  # within the gap
    assert storm.observe(t0 + 10.5, int(base * 4.6)) == "ceiling"  # quadrupled: settled or not
    assert FullCollectionSchedule(settings).observe(t0 + 61, base) == "interval"
    assert FullCollectionSchedule(settings).observe(t0 + 601, base) == "thaw"


async def test_survivors_are_frozen_until_a_thaw() -> None:
    schedule = FullCollectionSchedule(ScheduleSettings(growth=100.0, min_gap=0.0, max_interval=3600.0,
                                                       thaw_every=3600.0))
    schedule.start()
    try:
        item = Cyclic()
        ref = weakref.ref(item)
        schedule.collect("interval")  # alive: it survives, and is frozen with the rest
        assert gc.get_freeze_count() > 0
        del item
        schedule.collect("interval")
        assert ref() is not None  # what is frozen is not scanned, garbage or not...
        record = schedule.collect("thaw")
        assert ref() is None  # ...until a thaw
        assert record.collected >= 1 and record.reason == "thaw"
        assert gc.get_freeze_count() > 0  # and what survived the thaw is frozen again
    finally:
        await schedule.close()
    assert gc.get_freeze_count() == 0


async def test_a_grown_heap_is_frozen_once_it_settles() -> None:
    settings = ScheduleSettings(growth=0.5, settle=0.2, ceiling=1000.0, min_gap=0.2, max_interval=3600.0,
                                check_every=0.05)
    schedule = FullCollectionSchedule(settings)
    schedule.start()
    try:
        blocks = sys.getallocatedblocks()
        # The heap more than doubles with objects that stay; once it stops growing, the schedule freezes them
        # (no scan: they are alive) and measures its next baseline from there.
        kept = [[i] for i in range(int(blocks * 0.8))]
        deadline = time.monotonic() + 5
        while not schedule.history and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert [(record.reason, record.collected) for record in schedule.history] == [("growth", 0)]
        assert gc.get_freeze_count() > len(kept)
        assert schedule.observe(time.monotonic() + 0.25, sys.getallocatedblocks()) is None
        del kept
    finally:
        await schedule.close()
    assert gc.get_freeze_count() == 0
