"""The streaming processor for one speaker: PCM in, interim and final captions out.

Audio is resampled to 16 kHz mono and gated by VAD on the engine's front-end thread; each utterance grows a
buffer that is re-recognised every `chunk_seconds` of new audio (LocalAgreement-2 commits the words two
hypotheses agree on), trimmed at sentence ends, and completed when the speaker pauses. One inference per
stream at a time: when the pool is busy, new audio accumulates and the next inference covers it (later,
coarser captions, counted as merged chunks) instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from transcribe.agreement import LocalAgreement
from transcribe.caption import SENTENCE_END, Caption, Word, join_words
from transcribe.engine import AsrEngine
from transcribe.recognizer import SAMPLE_RATE
from transcribe.resample import Resampler
from transcribe.settings import AUTO
from transcribe.vad import VoiceDetector, VoicedAudio

CaptionSink = Callable[[Caption], None]


class SpeakerStream:
    """One per transcribed audio track. `push*` are cheap and called on the event loop."""

    def __init__(self, engine: AsrEngine, key: str, participant_id: str, name: str, emit: CaptionSink,
                 offset: float = 0.0, language: str = "en") -> None:
        self.key = key
        self.participant_id = participant_id
        self.name = name
        self.offset = offset  # meeting time (s) of this stream's sample 0
        self._engine = engine
        self._settings = engine.settings
        self._emit = emit
        self._log = logging.getLogger(f"convene.transcribe.stream.{key}")
        self._stats = engine.metrics.stream(key)
        self._pending: list[tuple[str, Any, int, int]] = []  # ("pcm", array, rate, channels) | ("frame", ...)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._finish_requested = False
        # Owned by the worker task (and the front-end thread while it runs a step for this stream).
        self._resampler = Resampler()
        self._vad: VoiceDetector | None = None
        self._agreement = LocalAgreement()
        self._buffer: list[np.ndarray] = []
        self._buffer_samples = 0
        self._buffer_start = 0.0  # stream time of the buffer's first sample
        self._unrecognized = 0  # samples added since the last inference
        self._in_utterance = False
        self._utterance_words: list[Word] = []  # committed words of the current utterance
        self._history: list[Word] = []  # committed words that left the buffer (prompt material)
        self._ids = itertools.count(1)
        self._segment_id = self._next_id()
        self._interim_shown = False
        # The room's language ("en", "zh", or "auto": detected once on this speaker's first seconds of speech).
        self._language = language
        self._detected: str | None = None
        self._caption_language = "" if language == AUTO else engine.language_of(language)

    @property
    def language(self) -> str:
        """What this speaker is transcribed as: the room's language, or the one detected ("" until then)."""
        return self._detected or ("" if self._language == AUTO else self._engine.language_of(self._language))

    def set_language(self, language: str) -> None:
        """The room's language changed (moderator): the next inference uses it; `auto` detects again."""
        if language != self._language:
            self._language = language
            self._detected = None

    # ---- input (event loop, cheap) ----

    def push(self, samples: np.ndarray, sample_rate: int, channels: int = 1) -> None:
        """Queues interleaved int16/float PCM at any rate."""
        self._stats.received_seconds += len(samples) / channels / sample_rate
        self._queue(("pcm", samples, sample_rate, channels))

    def push_frame(self, frame: Any) -> None:
        """Queues one decoded `av.AudioFrame` (the Opus tap's path)."""
        self._stats.received_seconds += frame.samples / frame.sample_rate
        self._queue(("frame", frame, 0, 0))

    def push_decoder(self, decode: Callable[[], list[Any]], seconds: float) -> None:
        """Queues work that decodes on the front-end thread into `av.AudioFrame`s or (int16/float array,
        rate) pairs (the Opus tap's path: the event loop only queues payloads)."""
        self._stats.received_seconds += seconds
        self._queue(("decode", decode, 0, 0))

    def _queue(self, item: tuple[str, Any, int, int]) -> None:
        if self._closing:
            return
        self._pending.append(item)
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"captions-{self.key}")

    async def drain(self) -> None:
        """Waits until everything pushed so far has been recognised (tests, benchmarks)."""
        if self._task is not None:
            await self._idle.wait()

    async def finish(self) -> None:
        """Ends the current utterance as if the speaker paused: pending words become final."""
        self._finish_requested = True
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"captions-{self.key}")
        await self._idle.wait()

    async def close(self) -> None:
        """Finalises what was said and stops."""
        if self._task is not None and not self._task.done():
            await self.finish()
            self._closing = True
            self._wake.set()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._closing = True
        self._engine.metrics.remove_stream(self.key)

    # ---- worker ----

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._log.exception("caption step failed; audio dropped")
                self._reset_utterance()
            if not self._pending and not self._wake.is_set():
                self._idle.set()
            if self._closing and not self._pending:
                return

    async def _step(self) -> None:
        items, self._pending = self._pending, []
        if items:
            pieces = await self._engine.run_frontend(self._frontend, items)
            for piece in pieces:
                if piece.speech_started and self._in_utterance:
                    await self._recognize(final=True)
                if not self._in_utterance:
                    self._in_utterance = True
                    self._buffer_start = piece.start
                self._append(piece.samples)
                if piece.speech_ended:
                    await self._recognize(final=True)
            if not self._in_utterance:
                self._stats.processed_seconds = self._stats.received_seconds
        chunk = int(self._settings.chunk_seconds * SAMPLE_RATE)
        if self._in_utterance and self._finish_requested:
            await self._recognize(final=True)
        elif self._in_utterance and self._unrecognized >= chunk:
            if self._unrecognized >= 2 * chunk:
                self._stats.merged_chunks += self._unrecognized // chunk - 1
            await self._recognize(final=False)
        if self._finish_requested and not self._pending:
            self._finish_requested = False
            self._close_interim()

    def _frontend(self, items: list[tuple[str, Any, int, int]]) -> list[VoicedAudio]:
        """Runs on the front-end thread: resample and gate with VAD."""
        if self._vad is None:
            self._vad = self._engine.new_voice_detector()
        chunks: list[np.ndarray] = []
        for kind, data, rate, channels in items:
            if kind == "frame":
                chunks.append(self._resampler.frame(data))
            elif kind == "decode":
                for out in data():
                    if isinstance(out, tuple):
                        chunks.append(self._resampler.pcm(out[0], out[1]))
                    else:
                        chunks.append(self._resampler.frame(out))
            else:
                chunks.append(self._resampler.pcm(data, rate, channels))
        audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        return self._vad.process(audio)

    def _append(self, samples: np.ndarray) -> None:
        self._buffer.append(samples)
        self._buffer_samples += len(samples)
        self._unrecognized += len(samples)
        cap = int(self._settings.max_buffer_seconds * SAMPLE_RATE)
        if self._buffer_samples > cap:
            self._trim_to(self._buffer_start + (self._buffer_samples - cap) / SAMPLE_RATE, dropped=True)

    # ---- recognition ----

    def _prompt(self) -> str:
        limit = self._settings.prompt_chars
        if limit <= 0 or not self._history:
            return ""
        return join_words(self._history)[-limit:]

    async def _recognize(self, final: bool) -> None:
        if not self._buffer_samples:
            self._reset_utterance()
            return
        audio = np.concatenate(self._buffer)
        language = await self._language_for(audio, final)
        if language is None:
            return  # `auto` and too little speech yet to tell the language: wait for more
        start = self._buffer_start
        self._unrecognized = 0
        result = await self._engine.recognize(audio, self._prompt(), language)
        self._caption_language = self._stats.language = result.language
        self._stats.inferences += 1
        self._stats.processed_seconds = max(self._stats.processed_seconds,
                                            self._stats.received_seconds - self._lag_in_pending())
        self._engine.metrics.observe_lag(self._stats.lag_seconds)
        words = [w.shifted(start) for w in result.words]
        self._log.debug("recognized %.2f-%.2f final=%s rejected=%r: %s", start, start + len(audio) / SAMPLE_RATE, final, result.rejected, result.text)
        if result.rejected and result.rejected != "empty":
            self._stats.rejected += 1
        if final:
            committed = self._agreement.complete(None if result.rejected and not words else words)
        else:
            committed = self._agreement.insert(words)
        self._utterance_words.extend(committed)
        self._publish(committed, [] if final else self._agreement.pending, final)
        if final:
            self._reset_utterance()
        else:
            self._trim()

    async def _language_for(self, audio: np.ndarray, final: bool) -> str | None:
        """The language to transcribe in. For `auto`, Whisper's detection on the speaker's first
        `detect_seconds` of speech (or a shorter whole utterance), kept for the rest of the stream."""
        if self._language != AUTO:
            return self._language
        if self._detected is None:
            needed = int(self._settings.detect_seconds * SAMPLE_RATE)
            if len(audio) < needed and not final:
                return None
            language, probability = await self._engine.detect_language(audio[:needed])
            self._stats.detections += 1
            self._log.info("detected language %s (p=%.2f) for %s", language, probability, self.key)
            self._detected = language
            self._stats.language = language
        return self._detected

    def _lag_in_pending(self) -> float:
        return sum(
            (d.samples / d.sample_rate) if kind == "frame" else len(d) / c / r if kind == "pcm" else 0.0
            for kind, d, r, c in self._pending
        )

    def _trim(self) -> None:
        """Keeps the buffer short: cut after the last committed sentence once it is long enough (Western or
        Chinese sentence ends: without 。！？； a Chinese buffer grows to its 24 s cap and costs twice the CPU)."""
        s = self._settings
        length = self._buffer_samples / SAMPLE_RATE
        if length <= s.trim_seconds:
            return
        ends = [w.end for w in self._utterance_words if SENTENCE_END.search(w.text.strip())
                and w.end > self._buffer_start]
        if ends:
            self._trim_to(ends[-1])
        elif (pause := self._longest_pause()) is not None:
            # No sentence end (Whisper often leaves Chinese unpunctuated): cut in the longest pause between
            # committed words rather than let the buffer grow to 18 s (measured 0.40 vs 0.25 CPU-s per audio-s).
            self._trim_to(pause)
        elif length > s.max_buffer_seconds * 0.75 and self._utterance_words:
            self._trim_to(self._utterance_words[-1].end)

    def _longest_pause(self, at_least: float = 0.3) -> float | None:
        """The end of the committed word followed by the longest pause (at least `at_least` s), if any."""
        words = [w for w in self._utterance_words if w.end > self._buffer_start]
        gaps = [(b.start - a.end, a.end) for a, b in zip(words, words[1:])]
        best = max(gaps, default=None)
        return best[1] if best is not None and best[0] >= at_least else None

    def _trim_to(self, t: float, dropped: bool = False) -> None:
        cut = int(round((t - self._buffer_start) * SAMPLE_RATE))
        if cut <= 0:
            return
        cut = min(cut, self._buffer_samples)
        audio = np.concatenate(self._buffer)[cut:]
        self._buffer = [audio] if len(audio) else []
        self._buffer_samples = len(audio)
        self._buffer_start += cut / SAMPLE_RATE
        if dropped:
            self._stats.dropped_seconds += cut / SAMPLE_RATE
            self._agreement.forget_pending()
        gone = [w for w in self._utterance_words if w.end <= self._buffer_start + 0.01]
        self._history = (self._history + gone)[-50:]
        self._utterance_words = [w for w in self._utterance_words if w not in gone]

    def _reset_utterance(self) -> None:
        self._history = (self._history + self._utterance_words)[-50:]
        self._utterance_words = []
        self._buffer, self._buffer_samples, self._unrecognized = [], 0, 0
        self._in_utterance = False
        self._agreement.forget_pending()

    # ---- output ----

    def _next_id(self) -> str:
        return f"{self.key}-{next(self._ids)}"

    def _caption(self, words: list[Word], final: bool) -> Caption:
        return Caption(
            segment_id=self._segment_id,
            participant_id=self.participant_id,
            name=self.name,
            start=round(self.offset + words[0].start, 3) if words else 0.0,
            end=round(self.offset + words[-1].end, 3) if words else 0.0,
            text=join_words(words),
            final=final,
            language=self._caption_language,
        )

    def _publish(self, committed: list[Word], pending: list[Word], final: bool) -> None:
        if committed:
            self._emit(self._caption(committed, final=True))
            self._stats.finals += 1
            self._segment_id = self._next_id()
            self._interim_shown = False
        if pending:
            self._emit(self._caption(pending, final=False))
            self._stats.interims += 1
            self._interim_shown = True
        elif final:
            self._close_interim()

    def _close_interim(self) -> None:
        """An interim the model revised away is closed with an empty final, so clients drop it."""
        if self._interim_shown:
            self._emit(Caption(self._segment_id, self.participant_id, self.name, 0.0, 0.0, "", True,
                               self._caption_language))
            self._segment_id = self._next_id()
            self._interim_shown = False
