"""Media a bot replays: VP8 layers and Opus speech, encoded once (and cached on disk), never again.

Each video layer is a 3 s loop whose first frame is the only keyframe, so restarting the loop (or
answering a PLI by jumping to frame 0) always yields a decodable stream.
"""

from __future__ import annotations

import fractions
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("convene.loadtest.media")

LOOP_SECONDS = 3
WARMUP_FRAMES = 30  # the encoder's rate control settles before the kept loop starts
CACHE_VERSION = 1


@dataclass(frozen=True)
class LayerSpec:
    rid: str  # simulcast RTP stream id
    quality: str  # low | mid | high, as in set_subscriptions
    width: int
    height: int
    fps: int
    bitrate: int


def video_profile(name: str) -> list[LayerSpec]:
    """Three simulcast layers, lowest first; `name` is the top layer's height."""
    tops = {"360p": (640, 360, 700_000), "540p": (960, 540, 1_100_000), "720p": (1280, 720, 1_500_000)}
    if name not in tops:
        raise ValueError(f"unknown video profile {name!r} (one of {', '.join(tops)})")
    w, h, rate = tops[name]
    return [
        LayerSpec("l", "low", w // 4, h // 4, 15, max(60_000, rate // 8)),
        LayerSpec("m", "mid", w // 2, h // 2, 15, rate // 3),
        LayerSpec("h", "high", w, h, 30, rate),
    ]


@dataclass(frozen=True)
class EncodedLayer:
    spec: LayerSpec
    frames: list[list[bytes]]  # RTP payloads of each frame; frames[0] is a keyframe


@dataclass(frozen=True)
class MediaLibrary:
    profile: str
    layers: list[EncodedLayer]  # lowest first
    speech: list[bytes]  # 20 ms Opus packets of speech-like sound

    @staticmethod
    def load_or_build(cache_dir: Path, profile: str) -> Path:
        """The path of a pickled library for `profile`, encoding it first if it is not cached."""
        path = cache_dir / f"media-{profile}-v{CACHE_VERSION}.pickle"
        if path.exists():
            return path
        library = MediaLibrary(profile, [encode_layer(s) for s in video_profile(profile)], encode_speech())
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(library))
        tmp.replace(path)
        return path

    @staticmethod
    def load(path: Path) -> MediaLibrary:
        library = pickle.loads(path.read_bytes())
        assert isinstance(library, MediaLibrary)
        return library


def encode_layer(spec: LayerSpec) -> EncodedLayer:
    """A moving pattern with camera-like noise, VP8 in CBR, packetized as aiortc does."""
    import av
    import numpy as np
    from aiortc.codecs.vpx import Vp8Encoder

    packetizer = Vp8Encoder()
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = spec.width, spec.height, "yuv420p"
    codec.bit_rate = spec.bitrate
    codec.time_base = fractions.Fraction(1, spec.fps)
    codec.framerate = fractions.Fraction(spec.fps)
    codec.gop_size = 100_000
    codec.qmin, codec.qmax = 2, 56
    codec.thread_count = 1
    codec.options = {"bufsize": str(spec.bitrate), "cpu-used": "-6", "deadline": "realtime",
                     "lag-in-frames": "0", "minrate": str(spec.bitrate), "maxrate": str(spec.bitrate),
                     "undershoot-pct": "100", "overshoot-pct": "15", "static-thresh": "1", "partitions": "0"}
    yy, xx = np.mgrid[0:spec.height, 0:spec.width]
    rng = np.random.default_rng(7)
    keep = LOOP_SECONDS * spec.fps
    frames: list[list[bytes]] = []
    for i in range(WARMUP_FRAMES + keep):
        image = np.stack([(xx + 4 * i) % 256, (yy + 2 * i) % 256, (xx + yy + 8 * i) % 256], axis=-1)
        image = image + rng.integers(0, 12, size=image.shape)
        frame = av.VideoFrame.from_ndarray(image.astype("uint8"), format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = i, fractions.Fraction(1, spec.fps)
        if i == WARMUP_FRAMES:
            frame.pict_type = av.video.frame.PictureType.I
        for packet in codec.encode(frame):
            payloads, _ = packetizer.pack(packet)
            if i >= WARMUP_FRAMES:
                frames.append([bytes(p) for p in payloads])
    return EncodedLayer(spec, frames)


def encode_speech(seconds: int = LOOP_SECONDS, bitrate: int = 32_000) -> list[bytes]:
    """Voiced syllables (a harmonic pitch with a 4 Hz envelope and some noise) as 20 ms Opus packets."""
    import av
    import numpy as np

    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format, codec.bit_rate = 48000, "mono", "s16", bitrate
    rng = np.random.default_rng(11)
    out: list[bytes] = []
    for i in range(seconds * 50):
        t = (np.arange(960) + i * 960) / 48000
        pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
        voice = sum(np.sin(2 * np.pi * k * pitch * t) / k for k in range(1, 6))
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
        signal = (voice * envelope * 4000 + rng.normal(0, 200, 960)).astype("int16")
        frame = av.AudioFrame.from_ndarray(signal.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, fractions.Fraction(1, 48000)
        out.extend(bytes(p) for p in codec.encode(frame))
    return out
