"""Whisper recognition of one short buffer: encode only the buffer (no 30 s window), greedy decode, word times.

faster-whisper's own `transcribe()` pads every call to a 30 s window (~0.5 CPU-s per call on this kind of
machine); CTranslate2 accepts fewer mel frames, so we drive the model's pieces ourselves.
"""

from __future__ import annotations

import logging
import os
import threading
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from transcribe.agreement import without_repetition
from transcribe.caption import Word
from transcribe.settings import AsrSettings

SAMPLE_RATE = 16000
HOP = 160  # mel frame = 10 ms
SECONDS_PER_ALIGN_STEP = 0.02  # the encoder halves the frame rate


@dataclass(frozen=True)
class Recognition:
    words: list[Word]  # times relative to the start of the buffer
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    rejected: str = ""  # why the hypothesis was dropped ("" when kept)
    language: str = "en"  # the language it was transcribed as


def compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / max(1, len(zlib.compress(raw)))


def _is_punctuation(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and all(not ch.isalnum() for ch in stripped)


# Languages written without spaces between words: Whisper's word split is per character there.
NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "yue"})
# Told to the model before each buffer (as "previous text"): without it Whisper base often writes Chinese in
# traditional characters; with it, simplified (and with punctuation, which buffer trimming needs).
INITIAL_PROMPTS = {"zh": "以下是普通话的句子。"}

_MODELS: dict[tuple[str, str, int, int], Any] = {}
_MODELS_LOCK = threading.Lock()


def shared_model(path: str, compute_type: str, threads: int, workers: int, local: bool) -> Any:
    """One loaded WhisperModel per process and configuration: CTranslate2 models are thread-safe, so every
    engine in the process (a test session starts many servers) shares one copy instead of loading its own."""
    key = (path, compute_type, threads, workers)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            from faster_whisper import WhisperModel

            model = WhisperModel(path, device="cpu", compute_type=compute_type, cpu_threads=threads,
                                 num_workers=workers, local_files_only=local)
            _MODELS[key] = model
        return model


class Recognizer:
    """Thread-safe: CTranslate2 runs concurrent calls; each call uses `settings.threads` threads."""

    def __init__(self, settings: AsrSettings) -> None:
        self._settings = settings
        self._log = logging.getLogger(f"convene.transcribe.recognizer.{id(self):x}")
        local = settings.model_is_local()
        if local:
            os.environ["HF_HUB_OFFLINE"] = "1"  # never reach a hub for a shipped model
        path = settings.model_path()
        self._log.info("loading ASR model %s (%s, %d thread(s))", path, settings.compute_type, settings.threads)
        self._model = shared_model(path, settings.compute_type, settings.threads, max(1, settings.workers), local)
        self._ct2 = self._model.model
        self.multilingual = bool(self._ct2.is_multilingual)
        self._features = self._model.feature_extractor
        self._tokenizers: dict[str, Any] = {}
        self._tokenizers_lock = threading.Lock()
        tok = self._tokenizer_for("en")
        self._suppress = sorted(
            set(tok.non_speech_tokens) | {tok.transcribe, tok.translate, tok.sot, tok.sot_prev, tok.sot_lm, tok.no_speech}
        )

    def _tokenizer_for(self, language: str) -> Any:
        """The tokenizer whose start sequence names `language` (an English-only model knows only English)."""
        from faster_whisper.tokenizer import Tokenizer

        code = language if self.multilingual else "en"
        with self._tokenizers_lock:
            tok = self._tokenizers.get(code)
            if tok is None:
                tok = Tokenizer(self._model.hf_tokenizer, self.multilingual, task="transcribe", language=code)
                self._tokenizers[code] = tok
            return tok

    def language_of(self, requested: str | None) -> str:
        """What a request for `requested` is transcribed as: English-only models write English whatever is asked."""
        return requested if (self.multilingual and requested) else "en"

    def detect_language(self, audio: np.ndarray, candidates: tuple[str, ...] = ()) -> tuple[str, float]:
        """Whisper's language identification on `audio` (a few seconds of speech): the likeliest language among
        `candidates` (all Whisper's languages when empty) and its probability among them."""
        import ctranslate2

        if not self.multilingual:
            return "en", 1.0
        audio = np.asarray(audio, dtype=np.float32)[: 29 * SAMPLE_RATE]
        mel = self._features(np.concatenate([audio, np.zeros(int(self._settings.pad_seconds * SAMPLE_RATE),
                                                                dtype=np.float32)]), padding=HOP)
        mel = mel[:, : min(mel.shape[-1], 3000)]
        encoded = self._ct2.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=False)
        scores = [(token.strip("<|>"), float(p)) for token, p in self._ct2.detect_language(encoded)[0]]
        allowed = [(code, p) for code, p in scores if not candidates or code in candidates]
        if not allowed:
            return (candidates[0] if candidates else "en"), 0.0
        total = sum(p for _, p in allowed) or 1.0
        code, p = max(allowed, key=lambda item: item[1])
        return code, p / total

    def _prompt(self, tok: Any, previous_text: str) -> list[int]:
        tokens: list[int] = []
        previous = previous_text.strip() or INITIAL_PROMPTS.get(tok.language_code, "")
        if previous:
            space = "" if tok.language_code in NO_SPACE_LANGUAGES else " "
            tokens = [tok.sot_prev, *tok.encode(space + previous)[-200:]]
        # Timestamp mode: without timestamps the model often ends early on a buffer that starts mid-sentence.
        return [*tokens, *tok.sot_sequence]

    def recognize(self, audio: np.ndarray, previous_text: str = "", language: str | None = "en") -> Recognition:
        """Transcribes `audio` (float32 mono 16 kHz, at most ~29 s) into words with times, in `language`
        (None: detected on this buffer, among the configured auto languages; never silently English)."""
        import ctranslate2

        s = self._settings
        if language is None:
            language = self.detect_language(audio, s.auto_languages)[0]
        tok = self._tokenizer_for(self.language_of(language))
        audio = np.asarray(audio, dtype=np.float32)
        content_frames = len(audio) // HOP
        if content_frames < 10:
            return Recognition([], "", 0.0, 1.0, 0.0, rejected="too short")
        padded = np.concatenate([audio, np.zeros(int(s.pad_seconds * SAMPLE_RATE), dtype=np.float32)])
        mel = self._features(padded, padding=HOP)
        mel = mel[:, : min(mel.shape[-1], 3000)]
        encoded = self._ct2.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=False)
        prompt = self._prompt(tok, previous_text)
        # ~3 words a second plus timestamp pairs is generous; the cap stops runaway repetition loops.
        max_new = int(len(audio) / SAMPLE_RATE * 10) + 16
        result = self._ct2.generate(
            encoded,
            [prompt],
            beam_size=max(1, s.beam),
            max_length=min(448, len(prompt) + max_new),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
            max_initial_timestamp_index=50,
        )[0]
        sequence = list(result.sequences_ids[0])
        tokens = [t for t in sequence if t < tok.eot]
        text = tok.decode(tokens).strip()
        avg_logprob = float(result.scores[0]) if result.scores else 0.0
        no_speech = float(result.no_speech_prob)
        ratio = compression_ratio(text)
        if not tokens:
            return Recognition([], "", avg_logprob, no_speech, ratio, rejected="empty", language=tok.language_code)
        if ratio > s.compression_ratio_limit:
            return Recognition([], text, avg_logprob, no_speech, ratio, rejected="compression ratio",
                               language=tok.language_code)
        if no_speech > s.no_speech_limit and avg_logprob < s.logprob_limit:
            return Recognition([], text, avg_logprob, no_speech, ratio, rejected="no speech",
                               language=tok.language_code)
        words = self._clamp(self._align(tok, encoded, tokens, content_frames), self._segments(tok, sequence))
        words = without_repetition(words)
        return Recognition(words, text, avg_logprob, no_speech, ratio, language=tok.language_code)

    @staticmethod
    def _segments(tok: Any, sequence: list[int]) -> list[tuple[int, float, float]]:
        """(first text token index, start, end) of each timestamped segment the model produced."""
        begin = tok.timestamp_begin
        segments: list[tuple[int, float, float]] = []
        text_index = 0
        start: float | None = None
        first = 0
        for t in sequence:
            if t >= begin:
                stamp = (t - begin) * SECONDS_PER_ALIGN_STEP
                if start is None:
                    start, first = stamp, text_index
                else:
                    if text_index > first:
                        segments.append((first, start, stamp))
                    start = None
            elif t < tok.eot:
                text_index += 1
        return segments

    @staticmethod
    def _clamp(words: list[tuple[Word, int]], segments: list[tuple[int, float, float]]) -> list[Word]:
        """Alignment stretches a segment's last word over the pause after it; the timestamps bound it."""
        out: list[Word] = []
        for word, first_token in words:
            bounds = [(s, e) for f, s, e in segments if f <= first_token]
            if bounds:
                seg_start, seg_end = bounds[-1]
                end = min(word.end, seg_end) if seg_end > word.start else word.end
                word = Word(word.text, max(word.start, seg_start) if seg_start < end else word.start, end,
                            word.probability)
            out.append(word)
        return out

    def _align(self, tok: Any, encoded: object, tokens: list[int], content_frames: int) -> list[tuple[Word, int]]:
        """Word times from the cross-attention alignment; each word with the index of its first token.
        Words keep the model's own spacing in languages written without spaces (a Chinese "word" is a
        character); elsewhere each word starts with one space."""
        no_space = tok.language_code in NO_SPACE_LANGUAGES
        alignment = self._ct2.align(encoded, tok.sot_sequence, [tokens], content_frames)[0]
        pairs = alignment.alignments
        probs = list(alignment.text_token_probs)
        # Token k starts at the first alignment step whose text index is k.
        token_start: dict[int, float] = {}
        for text_index, time_index in pairs:
            if text_index not in token_start:
                token_start[int(text_index)] = int(time_index) * SECONDS_PER_ALIGN_STEP
        end_of_audio = content_frames * HOP / SAMPLE_RATE
        word_texts, word_tokens = tok.split_to_word_tokens(tokens + [tok.eot])
        words: list[tuple[Word, int]] = []
        index = 0
        for text, toks in zip(word_texts, word_tokens):
            first = index
            index += len(toks)
            if toks and toks[0] >= tok.eot:
                break
            start = token_start.get(first, words[-1][0].end if words else 0.0)
            end = token_start.get(index, end_of_audio)
            start, end = min(start, end_of_audio), min(max(end, start), end_of_audio)
            p = float(np.mean(probs[first:index])) if probs[first:index] else 1.0
            if _is_punctuation(text) and words:
                last, at = words[-1]
                words[-1] = (Word(last.text + text.strip(), last.start, max(last.end, end), last.probability), at)
                continue
            if not text.strip():
                continue
            if not (no_space or text.startswith(" ")):
                text = " " + text
            words.append((Word(text, start, end, p), first))
        return words
