"""Counters that show how the caption engine keeps up: queue depth, merged/dropped chunks, lag per stream."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class StreamStats:
    received_seconds: float = 0.0  # audio pushed into the stream
    processed_seconds: float = 0.0  # audio the recogniser has seen up to (or VAD dropped as silence)
    inferences: int = 0
    merged_chunks: int = 0  # chunks folded into a later, larger inference because the pool was busy
    dropped_seconds: float = 0.0  # audio dropped unrecognised (buffer over its cap)
    rejected: int = 0  # hypotheses dropped (no speech, compression ratio)
    finals: int = 0
    interims: int = 0
    detections: int = 0  # language identifications (rooms in `auto`)
    language: str = ""  # what the stream is transcribed as

    @property
    def lag_seconds(self) -> float:
        return max(0.0, self.received_seconds - self.processed_seconds)


@dataclass
class EngineStats:
    queued: int = 0  # inferences waiting for a worker
    running: int = 0
    inferences: int = 0
    inference_busy_seconds: float = 0.0
    inference_audio_seconds: float = 0.0
    frontend_cpu_seconds: float = 0.0
    streams: dict[str, StreamStats] = field(default_factory=dict)


class Metrics:
    """Thread-safe counters; `snapshot()` is the dict the server exposes."""

    def __init__(self, workers: int) -> None:
        self._lock = threading.Lock()
        self._workers = workers
        self._stats = EngineStats()
        self._closed_streams = StreamStats()
        # Told each stream's lag after each inference (the Prometheus histogram, signaling/prometheus.py).
        self.lag_observers: list[Callable[[float], None]] = []

    def observe_lag(self, seconds: float) -> None:
        for observe in self.lag_observers:
            observe(seconds)

    def queued(self, delta: int) -> None:
        with self._lock:
            self._stats.queued += delta

    def started(self) -> None:
        with self._lock:
            self._stats.queued -= 1
            self._stats.running += 1

    def finished(self, busy_seconds: float, audio_seconds: float) -> None:
        with self._lock:
            self._stats.running -= 1
            self._stats.inferences += 1
            self._stats.inference_busy_seconds += busy_seconds
            self._stats.inference_audio_seconds += audio_seconds

    def frontend(self, cpu_seconds: float) -> None:
        with self._lock:
            self._stats.frontend_cpu_seconds += cpu_seconds

    def stream(self, key: str) -> StreamStats:
        with self._lock:
            return self._stats.streams.setdefault(key, StreamStats())

    def remove_stream(self, key: str) -> None:
        with self._lock:
            stats = self._stats.streams.pop(key, None)
            if stats is not None:
                c = self._closed_streams
                c.inferences += stats.inferences
                c.merged_chunks += stats.merged_chunks
                c.dropped_seconds += stats.dropped_seconds
                c.rejected += stats.rejected

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            s = self._stats
            streams = {k: {**asdict(v), "lag_seconds": round(v.lag_seconds, 3)} for k, v in s.streams.items()}
            all_streams = [*s.streams.values(), self._closed_streams]
            return {
                "workers": self._workers,
                "queue_depth": s.queued,
                "running": s.running,
                "inferences": s.inferences,
                "inference_busy_seconds": round(s.inference_busy_seconds, 3),
                "inference_audio_seconds": round(s.inference_audio_seconds, 3),
                "frontend_cpu_seconds": round(s.frontend_cpu_seconds, 3),
                "merged_chunks": sum(x.merged_chunks for x in all_streams),
                "dropped_seconds": round(sum(x.dropped_seconds for x in all_streams), 3),
                "rejected_hypotheses": sum(x.rejected for x in all_streams),
                "max_lag_seconds": round(max((v.lag_seconds for v in s.streams.values()), default=0.0), 3),
                "streams": streams,
            }
