"""Any-rate, any-layout PCM (numpy or decoded PyAV frames) to float32 16 kHz mono, with PyAV's resampler."""

from __future__ import annotations

from typing import Any

import av
import numpy as np

TARGET_RATE = 16000


class Resampler:
    """One per stream (the resampler keeps filter state between calls); not thread-safe."""

    def __init__(self) -> None:
        self._resamplers: dict[tuple[int, str, str], Any] = {}

    def _resampler(self, rate: int, layout: str, fmt: str) -> Any:
        key = (rate, layout, fmt)
        if key not in self._resamplers:
            self._resamplers[key] = av.AudioResampler(format="flt", layout="mono", rate=TARGET_RATE)
        return self._resamplers[key]

    def frame(self, frame: Any) -> np.ndarray:
        """Resamples one decoded `av.AudioFrame`."""
        if frame.sample_rate == TARGET_RATE and frame.format.name == "flt" and frame.layout.nb_channels == 1:
            return np.asarray(frame.to_ndarray(), dtype=np.float32).reshape(-1)
        resampler = self._resampler(frame.sample_rate, frame.layout.name, frame.format.name)
        out = [np.asarray(f.to_ndarray(), dtype=np.float32).reshape(-1) for f in resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def pcm(self, samples: np.ndarray, sample_rate: int, channels: int = 1) -> np.ndarray:
        """Resamples interleaved int16 or float PCM (values in [-1, 1] for floats)."""
        data = np.asarray(samples)
        if data.dtype == np.int16:
            floats = data.astype(np.float32) / 32768.0
        else:
            floats = data.astype(np.float32)
        if channels > 1:
            floats = floats.reshape(-1, channels).mean(axis=1)
        floats = floats.reshape(-1)
        if sample_rate == TARGET_RATE:
            return floats
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(floats[None, :]), format="flt", layout="mono")
        frame.sample_rate = sample_rate
        return self.frame(frame)
