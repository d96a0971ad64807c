"""Streaming voice activity detection with faster-whisper's bundled Silero VAD (ONNX), state kept per stream."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

WINDOW = 512  # samples at 16 kHz (32 ms), what Silero expects
CONTEXT = 64


def load_silero_session() -> Any:
    """One ONNX session shared by every stream (onnxruntime sessions are thread-safe to run)."""
    import importlib
    import os

    from faster_whisper.utils import get_assets_path

    onnxruntime = importlib.import_module("onnxruntime")
    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 4
    path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"], sess_options=opts)


@dataclass(frozen=True)
class VoicedAudio:
    """What one call to `VoiceDetector.process` keeps for recognition."""

    samples: np.ndarray  # float32 16 kHz: speech (with pre-roll) to append to the ASR buffer
    start: float  # stream time (s) of samples[0]
    speech_started: bool  # an utterance began in this call (the ASR buffer should start at `start`)
    speech_ended: bool  # an utterance ended in this call: finalize


class VoiceDetector:
    """Decides, 32 ms at a time, whether a speaker is talking; silence is dropped before recognition."""

    def __init__(self, session: Any, threshold: float = 0.5, min_silence: float = 0.6, preroll: float = 0.3,
                 sample_rate: int = 16000) -> None:
        self._session = session
        self._threshold = threshold
        self._neg_threshold = max(0.01, threshold - 0.15)
        self._silence_windows = max(1, int(min_silence * sample_rate / WINDOW))
        self._preroll_windows = max(0, int(preroll * sample_rate / WINDOW))
        self._rate = sample_rate
        self._context = np.zeros((1, CONTEXT), dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)  # samples not yet a whole window
        self._time = 0.0  # stream time of the first pending sample
        self._speaking = False
        self._silent_run = 0
        self._preroll: list[np.ndarray] = []
        self._log = logging.getLogger(f"convene.transcribe.vad.{id(self):x}")
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)

    @property
    def speaking(self) -> bool:
        return self._speaking

    def _probabilities(self, windows: np.ndarray) -> np.ndarray:
        # The bundled model reads a batch of windows as consecutive time steps (as faster-whisper feeds it),
        # each prefixed with the last 64 samples of the window before it.
        previous = np.concatenate([self._context, windows[:-1, -CONTEXT:]], axis=0)
        batch = np.ascontiguousarray(np.concatenate([previous, windows], axis=1), dtype=np.float32)
        out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = windows[-1:, -CONTEXT:].copy()
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def process(self, samples: np.ndarray) -> list[VoicedAudio]:
        """Consumes float32 16 kHz mono samples; returns the pieces of speech to recognise from them."""
        audio = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        whole = len(audio) // WINDOW
        windows = audio[: whole * WINDOW].reshape(whole, WINDOW)
        self._pending = audio[whole * WINDOW:]
        t0 = self._time
        self._time += whole * WINDOW / self._rate
        if not whole:
            return []
        probs = self._probabilities(windows)
        step = WINDOW / self._rate
        out: list[VoicedAudio] = []
        kept: list[np.ndarray] = []
        kept_start: float | None = None
        started = False
        for i, (window, p) in enumerate(zip(windows, probs)):
            t = t0 + i * step
            if not self._speaking:
                if p >= self._threshold:
                    self._speaking, self._silent_run, started = True, 0, True
                    kept = [*self._preroll, window]
                    kept_start = t - len(self._preroll) * step
                    self._preroll = []
                elif self._preroll_windows:
                    self._preroll.append(window)
                    del self._preroll[: -self._preroll_windows]
                continue
            if kept_start is None:
                kept_start = t
            kept.append(window)
            if p >= self._neg_threshold:
                self._silent_run = 0
                continue
            self._silent_run += 1
            if self._silent_run >= self._silence_windows:
                out.append(VoicedAudio(np.concatenate(kept), kept_start, started, True))
                self._speaking, self._silent_run, started = False, 0, False
                kept, kept_start = [], None
        if kept and kept_start is not None:
            out.append(VoicedAudio(np.concatenate(kept), kept_start, started, False))
        return out
