"""Test edge: encode a clip to Opus RTP packets (aiortc `RtpPacket`) once, with PyAV's libopus encoder."""

from __future__ import annotations

import fractions

import av
import numpy as np
from aiortc.rtp import RtpPacket


def opus_rtp_packets(samples: np.ndarray, rate: int = 48000, ssrc: int = 1234, first_seq: int = 65000,
                     first_ts: int = 4_294_500_000, skip_silence: bool = False) -> list[RtpPacket]:
    """20 ms Opus packets of int16 mono 48 kHz audio; sequence numbers and timestamps wrap around.
    `skip_silence` leaves out packets of digital silence, as a sender with DTX would."""
    assert rate == 48000
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate = rate
    enc.layout = "mono"
    enc.format = "s16"
    enc.bit_rate = 32000
    enc.time_base = fractions.Fraction(1, rate)
    enc.open()
    packets: list[RtpPacket] = []
    seq = first_seq
    frame_len = 960
    for i in range(0, len(samples) - frame_len + 1, frame_len):
        chunk = np.ascontiguousarray(samples[None, i:i + frame_len].astype(np.int16))
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = i
        for encoded in enc.encode(frame):
            start = i  # the encoder's delay is constant; stamp packets with the input position
            if skip_silence and not np.any(samples[start:start + frame_len]):
                continue
            packets.append(RtpPacket(payload_type=111, sequence_number=seq & 0xFFFF,
                                     timestamp=(first_ts + start) & 0xFFFFFFFF, ssrc=ssrc,
                                     payload=bytes(encoded)))
            seq += 1
    return packets
