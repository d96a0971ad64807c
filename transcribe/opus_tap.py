"""The transcriber's sink for one Opus audio publication: RTP in on the event loop, decoded off it.

`write_rtp` only queues the payload; every `flush_interval` the queued packets go to the stream's front-end
thread, which decodes them with PyAV (libopus), fills gaps in the RTP timestamps (DTX, loss) with silence so
caption times stay on the meeting's clock, and hands the audio to the speaker's streaming processor.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import av
import numpy as np

from transcribe.stream import SpeakerStream

OPUS_RATE = 48000
MAX_GAP_SECONDS = 30.0  # longer gaps are not replayed as silence (the timeline shifts instead)


class RtpLike(Protocol):
    """What the tap reads from an aiortc `RtpPacket`."""

    @property
    def payload(self) -> bytes: ...

    @property
    def timestamp(self) -> int: ...

    @property
    def sequence_number(self) -> int: ...


@dataclass
class TapStats:
    packets: int = 0
    late: int = 0  # older than what was already decoded: dropped
    decode_errors: int = 0
    gap_seconds: float = 0.0  # silence inserted for missing packets / DTX


class OpusDecoder:
    """Owned by one tap and used only on the engine's front-end thread."""

    def __init__(self, stats: TapStats) -> None:
        self._codec: Any = av.CodecContext.create("opus", "r")
        self._stats = stats
        self._next_ts: int | None = None
        self._log = logging.getLogger(f"convene.transcribe.opus.{id(self):x}")

    def decode(self, packets: list[tuple[bytes, int, int]]) -> list[Any]:
        out: list[Any] = []
        for payload, timestamp, _seq in packets:
            if self._next_ts is not None:
                ahead = (timestamp - self._next_ts) & 0xFFFFFFFF
                if ahead >= 0x80000000:  # behind what we already decoded
                    self._stats.late += 1
                    continue
                if 0 < ahead <= MAX_GAP_SECONDS * OPUS_RATE:
                    out.append((np.zeros(ahead, dtype=np.float32), OPUS_RATE))
                    self._stats.gap_seconds += ahead / OPUS_RATE
            try:
                frames = self._codec.decode(av.Packet(payload))
            except (av.FFmpegError, ValueError):
                self._stats.decode_errors += 1
                self._next_ts = None
                continue
            samples = sum(int(f.samples) * OPUS_RATE // int(f.sample_rate) for f in frames)
            out.extend(frames)
            self._next_ts = (timestamp + (samples or 960)) & 0xFFFFFFFF
        return out


class OpusAudioTap:
    """A DownTrack-like packet sink (`write_rtp`, `close`) feeding one speaker's stream."""

    def __init__(self, stream: SpeakerStream, flush_interval: float = 0.1) -> None:
        self.stream = stream
        self.stats = TapStats()
        self._decoder = OpusDecoder(self.stats)
        self._queued: list[tuple[bytes, int, int]] = []
        self._flush_interval = flush_interval
        self._flush_handle: asyncio.TimerHandle | None = None
        self._closed = False
        self._close_task: asyncio.Task[None] | None = None
        self._log = logging.getLogger(f"convene.transcribe.tap.{stream.key}")

    def write_rtp(self, packet: RtpLike) -> None:
        """Called on the event loop for every packet: queue only."""
        if self._closed:
            return
        self.stats.packets += 1
        self._queued.append((bytes(packet.payload), packet.timestamp, packet.sequence_number))
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(self._flush_interval, self.flush)

    def flush(self) -> None:
        """Hands the queued packets to the front-end thread (called by the timer; tests may call it)."""
        self._flush_handle = None
        if not self._queued:
            return
        batch, self._queued = self._queued, []
        decoder = self._decoder
        self.stream.push_decoder(lambda: decoder.decode(batch), seconds=len(batch) * 0.02)

    async def drain(self) -> None:
        self.flush()
        await self.stream.drain()

    def close(self) -> None:
        """Stops taking packets; finalising the stream continues in the background (see `aclose`)."""
        if self._closed:
            return
        self._closed = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self.flush()
        try:
            self._close_task = asyncio.get_running_loop().create_task(self.stream.close())
        except RuntimeError:  # no running loop: nothing left to finalise
            self._close_task = None

    async def aclose(self) -> None:
        self.close()
        if self._close_task is not None:
            await self._close_task
