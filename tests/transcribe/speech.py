"""Offline test speech: espeak-ng or flite speaks known text into a 16-bit mono WAV (no network).

Reusable by other tests (WebRTC path, browser): `make_speech_wav(text, voice, path, lead_silence)`.
Voices: "espeak" (espeak-ng en-us), "espeak-gb", "flite" (flite's slt), "flite-awb", "flite-rms", and
"espeak-zh": Mandarin from pinyin with tone numbers ("wo3 men5"; Debian's espeak-ng reads Chinese characters
with `-v cmn` as English-spoken pinyin, so the text is pinyin and the reference is written separately).
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOICES = {
    "espeak": ["espeak-ng", "-v", "en-us", "-s", "160"],
    "espeak-gb": ["espeak-ng", "-v", "en-gb", "-s", "160"],
    "flite": ["flite", "-voice", "slt"],
    "flite-awb": ["flite", "-voice", "awb"],
    "flite-rms": ["flite", "-voice", "rms"],
    "espeak-zh": ["espeak-ng", "-v", "cmn-latn-pinyin", "-s", "150"],
}


@dataclass(frozen=True)
class SpeechClip:
    path: Path
    text: str
    sample_rate: int
    samples: np.ndarray  # int16 mono
    lead_silence: float

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def tts_available(voice: str = "espeak") -> bool:
    return shutil.which(VOICES[voice][0]) is not None


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Returns int16 mono samples and the sample rate (stereo is averaged)."""
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        channels = w.getnchannels()
        width = w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{path}: only 16-bit WAV is supported")
    data = np.frombuffer(raw, dtype=np.int16)
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data, rate


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype=np.int16).tobytes())


def _synthesize(text: str, voice: str, out: Path) -> None:
    cmd = VOICES[voice]
    if cmd[0] == "flite":
        subprocess.run([*cmd, "-t", text, "-o", str(out)], check=True, capture_output=True, timeout=60)
    else:
        subprocess.run([*cmd, "-w", str(out), text], check=True, capture_output=True, timeout=60)


def make_speech_wav(
    text: str,
    voice: str,
    path: Path,
    lead_silence: float = 0.5,
    tail_silence: float = 1.0,
    rate: int | None = None,
) -> SpeechClip:
    """Speaks `text` with `voice` into `path` (16-bit mono WAV), padded with silence.

    `rate` resamples (sox) to e.g. 48000 for a fake microphone; None keeps the voice's own rate.
    """
    path = Path(path)
    raw = path.with_suffix(".raw.wav")
    _synthesize(text, voice, raw)
    if rate is not None:
        resampled = path.with_suffix(".rs.wav")
        subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(resampled)], check=True,
                       capture_output=True, timeout=60)
        raw.unlink()
        raw = resampled
    samples, sr = read_wav(raw)
    raw.unlink()
    lead = np.zeros(int(lead_silence * sr), dtype=np.int16)
    tail = np.zeros(int(tail_silence * sr), dtype=np.int16)
    full = np.concatenate([lead, samples, tail])
    write_wav(path, full, sr)
    return SpeechClip(path=path, text=text, sample_rate=sr, samples=full, lead_silence=lead_silence)


def concat_turns(clips: list[tuple[str, SpeechClip]], gap: float = 0.8) -> list[tuple[str, np.ndarray, float]]:
    """Lays out turns on one timeline: returns (speaker, samples, start seconds) for each clip."""
    out: list[tuple[str, np.ndarray, float]] = []
    t = 0.0
    for speaker, clip in clips:
        out.append((speaker, clip.samples, t))
        t += clip.duration + gap
    return out
