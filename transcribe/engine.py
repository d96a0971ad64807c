"""The shared caption engine: the model, the bounded inference pool, the front-end thread and the metrics."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from transcribe.metrics import Metrics
from transcribe.recognizer import SAMPLE_RATE, Recognition, Recognizer
from transcribe.settings import AsrSettings
from transcribe.vad import VoiceDetector, load_silero_session

T = TypeVar("T")


class AsrEngine:
    """One per server. Inference runs in a pool of `settings.workers` threads (one inference per stream at a
    time, so a stream never queues more than one job); decoding, resampling and VAD run on one front-end
    thread. Nothing CPU-heavy runs on the event loop. Loading is lazy and happens off the loop."""

    def __init__(self, settings: AsrSettings | None = None) -> None:
        self.settings = settings or AsrSettings()
        self._log = logging.getLogger(f"convene.transcribe.engine.{id(self):x}")
        self._pool = ThreadPoolExecutor(max_workers=max(1, self.settings.workers), thread_name_prefix="asr")
        self._frontend = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-frontend")
        self._load_lock = threading.Lock()
        self._recognizer: Recognizer | None = None
        self._vad_session: Any = None
        self.metrics = Metrics(max(1, self.settings.workers))
        self._closed = False
        if self.settings.model_is_local():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")

    @property
    def loaded(self) -> bool:
        return self._recognizer is not None

    def load(self) -> None:
        """Loads the model and the VAD (blocking; idempotent, thread-safe)."""
        with self._load_lock:
            if self._recognizer is None:
                started = time.monotonic()
                self._vad_session = load_silero_session()
                self._recognizer = Recognizer(self.settings)
                self._log.info("ASR engine ready in %.1f s", time.monotonic() - started)

    async def ensure_loaded(self) -> None:
        if not self.loaded:
            await asyncio.get_running_loop().run_in_executor(self._frontend, self.load)

    def new_voice_detector(self) -> VoiceDetector:
        self.load()
        s = self.settings
        return VoiceDetector(self._vad_session, threshold=s.vad_threshold, min_silence=s.vad_min_silence,
                             preroll=s.vad_preroll)

    async def run_frontend(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs light per-stream work (decode, resample, VAD) on the front-end thread."""
        def timed() -> T:
            started = time.thread_time()
            try:
                return fn(*args)
            finally:
                self.metrics.frontend(time.thread_time() - started)

        return await asyncio.get_running_loop().run_in_executor(self._frontend, timed)

    async def recognize(self, audio: np.ndarray, previous_text: str = "", language: str | None = "en") -> Recognition:
        """Recognises one buffer in the inference pool, in `language` (None: detected on this buffer)."""
        await self.ensure_loaded()
        recognizer = self._recognizer
        assert recognizer is not None

        def job() -> Recognition:
            self.metrics.started()
            started = time.monotonic()
            try:
                return recognizer.recognize(audio, previous_text, language)
            finally:
                self.metrics.finished(time.monotonic() - started, len(audio) / SAMPLE_RATE)

        return await self._submit(job)

    async def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """Whisper's language identification among the configured `auto_languages`, in the inference pool."""
        await self.ensure_loaded()
        recognizer = self._recognizer
        assert recognizer is not None

        def job() -> tuple[str, float]:
            self.metrics.started()
            started = time.monotonic()
            try:
                return recognizer.detect_language(audio, self.settings.auto_languages)
            finally:
                self.metrics.finished(time.monotonic() - started, len(audio) / SAMPLE_RATE)

        return await self._submit(job)

    def language_of(self, requested: str) -> str:
        """What a stream asking for `requested` is transcribed as (English-only models: always English)."""
        if self._recognizer is not None:
            return self._recognizer.language_of(requested)
        return requested if self.settings.multilingual else "en"

    async def _submit(self, job: Callable[[], T]) -> T:
        self.metrics.queued(1)
        try:
            future = self._pool.submit(job)
        except RuntimeError:
            self.metrics.queued(-1)
            raise
        return await asyncio.wrap_future(future)

    def snapshot(self) -> dict[str, Any]:
        return {"loaded": self.loaded, **self.metrics.snapshot()}

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._frontend.shutdown(wait=False, cancel_futures=True)
