"""More speech than the pool can follow: captions come later and coarser, the event loop never stalls."""

from __future__ import annotations

import asyncio
import time

from tests.transcribe.conftest import ALICE_TEXT
from tests.transcribe.speech import SpeechClip
from transcribe.caption import Caption
from transcribe.engine import AsrEngine
from transcribe.stream import SpeakerStream
from transcribe.wer import word_error_rate

SPEEDUP = 8.0  # each stream receives audio 8x faster than real time
STREAMS = 4


async def test_overload_degrades_without_stalling(engine: AsrEngine, alice_clip: SpeechClip) -> None:
    captions: list[list[Caption]] = [[] for _ in range(STREAMS)]
    streams = [SpeakerStream(engine, f"TR_over{i}", f"PA_{i}", f"P{i}", captions[i].append) for i in range(STREAMS)]
    merged_before = engine.snapshot()["merged_chunks"]
    worst_gap = 0.0
    max_lag = 0.0
    max_queue = 0
    feeding = True

    async def ticker() -> None:
        nonlocal worst_gap
        last = time.monotonic()
        while feeding:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            worst_gap = max(worst_gap, now - last)
            last = now

    tick = asyncio.get_running_loop().create_task(ticker())
    rate, step = alice_clip.sample_rate, alice_clip.sample_rate // 4
    for i in range(0, len(alice_clip.samples), step):
        for s in streams:
            s.push(alice_clip.samples[i:i + step], rate)
        await asyncio.sleep(0.25 / SPEEDUP)
        snap = engine.snapshot()
        max_lag = max(max_lag, float(snap["max_lag_seconds"]))
        max_queue = max(max_queue, int(snap["queue_depth"]))
    for s in streams:
        await s.close()
    feeding = False
    await tick

    print(f"worst loop gap {worst_gap:.3f} s, max lag {max_lag:.1f} s, max queue {max_queue}, snapshot {engine.snapshot()}")
    assert worst_gap < 0.25, f"event loop stalled for {worst_gap:.2f} s"
    assert engine.snapshot()["merged_chunks"] > merged_before  # coarser chunks, visible in metrics
    assert max_lag > 1.0  # the lag was visible while it lasted
    assert max_queue <= STREAMS  # never more than one queued inference per stream
    for caps in captions:  # and still captions, of all that was said
        text = " ".join(c.text for c in caps if c.final and c.text)
        assert word_error_rate(ALICE_TEXT, text) < 0.25, text
