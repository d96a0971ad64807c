"""Pre-encoded media for bots and benchmarks: a test pattern as VP8 and a tone as Opus, encoded once so
that senders replay packets without running a codec."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncodedFrame:
    payloads: list[bytes]  # RTP payloads, packetized
    timestamp: int  # in the codec's clock
    keyframe: bool


def pre_encode_vp8(frames: int, width: int = 640, height: int = 360, fps: int = 30,
                   bitrate: int = 800_000) -> list[EncodedFrame]:
    """Encodes a moving test pattern once, so bots and benchmarks replay packets without a codec."""
    import av
    import numpy as np
    from aiortc.codecs.vpx import Vp8Encoder

    encoder = Vp8Encoder()
    encoder.target_bitrate = bitrate
    out = []
    yy, xx = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(7)
    for i in range(frames):
        image = np.stack([(xx + 4 * i) % 256, (yy + 2 * i) % 256, (xx + yy + 8 * i) % 256], axis=-1)
        # Camera-like noise keeps the encoder near its target bitrate (and the packet rate realistic).
        image = image + rng.integers(0, 24, size=image.shape)
        frame = av.VideoFrame.from_ndarray(image.astype("uint8"), format="rgb24").reformat(format="yuv420p")
        frame.pts = i * (90000 // fps)
        frame.time_base = __import__("fractions").Fraction(1, 90000)
        payloads, timestamp = encoder.encode(frame, force_keyframe=(i == 0))
        out.append(EncodedFrame(payloads, timestamp, keyframe=(i == 0)))
    return out


def pre_encode_opus(seconds: float, frequency: float = 440.0) -> list[EncodedFrame]:
    """Encodes a tone as 20 ms Opus packets, once."""
    import fractions

    import av
    import numpy as np
    from aiortc.codecs.opus import OpusEncoder

    encoder = OpusEncoder()
    out = []
    samples = 960
    for i in range(int(seconds * 50)):
        t = (np.arange(samples) + i * samples) / 48000
        tone = (np.sin(2 * np.pi * frequency * t) * 8000).astype("int16")
        stereo = np.repeat(tone[None, :], 2, axis=0).T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = i * samples
        frame.time_base = fractions.Fraction(1, 48000)
        payloads, timestamp = encoder.encode(frame)
        out.append(EncodedFrame(payloads, timestamp, keyframe=True))
    return out
