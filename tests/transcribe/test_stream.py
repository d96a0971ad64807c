"""The streaming processor on real synthesized speech: accuracy, interim → final, attribution, silence."""

from __future__ import annotations

import numpy as np

from tests.transcribe.conftest import ALICE_TEXT, BOB_TEXT
from tests.transcribe.speech import SpeechClip
from transcribe.caption import Caption
from transcribe.engine import AsrEngine
from transcribe.stream import SpeakerStream
from transcribe.wer import word_error_rate

CHUNK_SECONDS = 0.25  # what a tap pushes at a time; recognition runs every second of new speech


async def feed(stream: SpeakerStream, samples: np.ndarray, rate: int, chunk: float = CHUNK_SECONDS) -> None:
    """Pushes audio in streaming-sized chunks, faster than real time but waiting for each to be processed."""
    step = int(rate * chunk)
    for i in range(0, len(samples), step):
        stream.push(samples[i:i + step], rate)
        await stream.drain()


def final_text(captions: list[Caption]) -> str:
    return " ".join(c.text for c in captions if c.final and c.text)


async def test_streaming_wer_and_interims_become_finals(engine: AsrEngine, alice_clip: SpeechClip) -> None:
    captions: list[Caption] = []
    stream = SpeakerStream(engine, "TR_a", "PA_alice", "Alice", captions.append)
    await feed(stream, alice_clip.samples, alice_clip.sample_rate)
    await stream.close()

    wer = word_error_rate(ALICE_TEXT, final_text(captions))
    assert wer < 0.15, (wer, final_text(captions))
    interim_ids = {c.segment_id for c in captions if not c.final}
    final_ids = {c.segment_id for c in captions if c.final}
    assert interim_ids, "expected interim captions while speaking"
    assert interim_ids <= final_ids, "every interim segment must be replaced by a final one"
    # A final closes its segment for good: nothing is emitted for a segment after its final.
    closed: set[str] = set()
    for c in captions:
        assert c.segment_id not in closed
        if c.final:
            closed.add(c.segment_id)
    finals = [c for c in captions if c.final and c.text]
    assert all(c.participant_id == "PA_alice" and c.name == "Alice" for c in captions)
    # Times are on the audio's timeline: speech starts after the 1 s of leading silence.
    assert finals[0].start >= alice_clip.lead_silence - 0.4
    assert all(a.start <= b.start for a, b in zip(finals, finals[1:]))
    assert finals[-1].end <= alice_clip.duration + 0.1


async def test_second_voice(engine: AsrEngine, bob_clip: SpeechClip) -> None:
    captions: list[Caption] = []
    stream = SpeakerStream(engine, "TR_b", "PA_bob", "Bob", captions.append)
    await feed(stream, bob_clip.samples, bob_clip.sample_rate, chunk=0.5)
    await stream.close()
    wer = word_error_rate(BOB_TEXT, final_text(captions))
    assert wer < 0.2, (wer, final_text(captions))


async def test_two_speakers_in_turn_are_attributed(engine: AsrEngine, alice_clip: SpeechClip,
                                                   bob_clip: SpeechClip) -> None:
    """Alice speaks, then Bob, each on their own track (silence on the other), on one meeting timeline."""
    captions: list[Caption] = []
    alice = SpeakerStream(engine, "TR_a2", "PA_alice", "Alice", captions.append)
    bob = SpeakerStream(engine, "TR_b2", "PA_bob", "Bob", captions.append)
    rate = alice_clip.sample_rate
    assert bob_clip.sample_rate == rate
    a_len, b_len = len(alice_clip.samples), len(bob_clip.samples)
    alice_track = np.concatenate([alice_clip.samples, np.zeros(b_len, np.int16)])
    bob_track = np.concatenate([np.zeros(a_len, np.int16), bob_clip.samples])
    step = int(rate * CHUNK_SECONDS)
    for i in range(0, len(alice_track), step):
        alice.push(alice_track[i:i + step], rate)
        bob.push(bob_track[i:i + step], rate)
        await alice.drain()
        await bob.drain()
    await alice.close()
    await bob.close()

    by_alice = [c for c in captions if c.participant_id == "PA_alice" and c.final and c.text]
    by_bob = [c for c in captions if c.participant_id == "PA_bob" and c.final and c.text]
    assert word_error_rate(ALICE_TEXT, final_text(by_alice)) < 0.15
    assert word_error_rate(BOB_TEXT, final_text(by_bob)) < 0.2
    alice_end = len(alice_clip.samples) / rate
    assert all(c.end <= alice_end + 0.2 for c in by_alice)
    assert all(c.start >= alice_end - 0.2 for c in by_bob)
    assert all(c.name == "Bob" for c in by_bob)


async def test_silence_and_noise_cost_nothing(engine: AsrEngine) -> None:
    captions: list[Caption] = []
    stream = SpeakerStream(engine, "TR_s", "PA_quiet", "Quiet", captions.append)
    rng = np.random.default_rng(1)
    silence = np.zeros(48000 * 4, dtype=np.int16)
    hiss = (rng.normal(0, 60, 48000 * 4)).astype(np.int16)  # a quiet open microphone
    before = engine.snapshot()["inferences"]
    await feed(stream, np.concatenate([silence, hiss]), 48000, chunk=0.5)
    await stream.close()
    assert captions == []
    assert engine.snapshot()["inferences"] == before


def test_a_hypothesis_that_loops_back_is_cut_where_the_loop_starts() -> None:
    from transcribe.agreement import without_repetition
    from transcribe.caption import Word

    said = "Thank you, Alice. I will send the final report to the whole team before the weekend."
    looped = said + " Thank you Alice, I will send the final report to the"
    words = [Word(" " + t, i * 0.3, i * 0.3 + 0.25) for i, t in enumerate(looped.split())]
    kept = without_repetition(words)
    assert " ".join(w.text.strip() for w in kept) == said
    plain = [Word(" " + t, i * 0.3, i * 0.3 + 0.25) for i, t in enumerate(said.split())]
    assert without_repetition(plain) == plain
