"""Speech through Opus RTP: packets → OpusAudioTap (PyAV decode off the loop) → streaming captions."""

from __future__ import annotations

import asyncio
import time

from tests.transcribe.conftest import ALICE_TEXT
from tests.transcribe.opus_rtp import opus_rtp_packets
from tests.transcribe.speech import SpeechClip
from transcribe.caption import Caption
from transcribe.engine import AsrEngine
from transcribe.opus_tap import OpusAudioTap
from transcribe.stream import SpeakerStream
from transcribe.wer import word_error_rate


async def test_opus_rtp_through_the_tap(engine: AsrEngine, alice_clip: SpeechClip) -> None:
    packets = opus_rtp_packets(alice_clip.samples, skip_silence=True)  # DTX: the lead silence is not sent
    assert packets[0].timestamp > packets[-1].timestamp  # the RTP timestamp wraps during the clip
    captions: list[Caption] = []
    tap = OpusAudioTap(SpeakerStream(engine, "TR_o", "PA_alice", "Alice", captions.append))

    # write_rtp runs on the event loop for every packet: it must only queue.
    started = time.perf_counter()
    tap.write_rtp(packets[0])
    assert time.perf_counter() - started < 0.005

    for i in range(1, len(packets)):
        tap.write_rtp(packets[i])
        if i % 12 == 0:  # ~0.25 s of audio at a time
            await tap.drain()
    await tap.aclose()

    text = " ".join(c.text for c in captions if c.final and c.text)
    assert word_error_rate(ALICE_TEXT, text) < 0.15, text
    assert tap.stats.packets == len(packets)
    assert tap.stats.decode_errors == 0 and tap.stats.late == 0
    # The tap's clock starts at its first packet and follows RTP timestamps across the wrap.
    finals = [c for c in captions if c.final and c.text]
    sent = ((packets[-1].timestamp - packets[0].timestamp) & 0xFFFFFFFF) / 48000
    assert finals[0].start < 0.5
    assert sent - 1.5 < finals[-1].end <= sent + 0.1


async def test_write_rtp_after_close_is_ignored(engine: AsrEngine) -> None:
    captions: list[Caption] = []
    tap = OpusAudioTap(SpeakerStream(engine, "TR_c", "PA_x", "X", captions.append))
    await tap.aclose()
    packets = opus_rtp_packets(__import__("numpy").zeros(48000, dtype="int16"))
    for p in packets:
        tap.write_rtp(p)
    await asyncio.sleep(0.2)
    assert tap.stats.packets == 0 and captions == []


async def test_dtx_gap_keeps_the_timeline(engine: AsrEngine, alice_clip: SpeechClip) -> None:
    """Three seconds without packets (DTX / a muted mic) become silence: later captions stay in place."""
    import numpy as np

    gap = np.zeros(3 * 48000, dtype=np.int16)
    packets = opus_rtp_packets(np.concatenate([alice_clip.samples[:48000 * 4], gap, alice_clip.samples[48000 * 4:]]),
                               skip_silence=True)
    captions: list[Caption] = []
    tap = OpusAudioTap(SpeakerStream(engine, "TR_g", "PA_alice", "Alice", captions.append))
    for i, p in enumerate(packets):
        tap.write_rtp(p)
        if i % 25 == 0:
            await tap.drain()
    await tap.aclose()
    assert tap.stats.gap_seconds > 2.5
    sent = ((packets[-1].timestamp - packets[0].timestamp) & 0xFFFFFFFF) / 48000
    finals = [c for c in captions if c.final and c.text]
    assert sent - 1.5 < finals[-1].end <= sent + 0.1
