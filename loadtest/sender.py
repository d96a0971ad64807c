"""Publishing bots' senders: replay pre-encoded VP8 layers and Opus speech in real time, with our own
sequence numbers and timestamps, a send-time tail on each payload, PLI answered by restarting from the
keyframe and NACK answered from a history (per simulcast layer too)."""

from __future__ import annotations

import random
import time
from collections import deque

from aiortc import RTCRtpTransceiver

from loadtest.media import EncodedLayer
from loadtest.stamp import stamp
from loadtest.talk import TalkSchedule
from sfu.aiortc_seams import offer_payload_type
from sfu.packet_cache import Kept, keep, restore
from sfu.rtp import RtpPacket
from loadtest.peers import PacketWriter

SEQ_SPACING = 21845  # simulcast layers start a third of the sequence space apart (see LayeredWriter)
MAX_CATCH_UP = 3  # frames sent at once when the pacer was late; more are skipped
DTX_INTERVAL = 20  # in silence, one packet every 20 x 20 ms = 400 ms, as Opus DTX does
DTX_PAYLOAD = bytes([0xF8, 0xFF, 0xFE])  # an Opus TOC (20 ms CELT) with a tiny silent frame
SILENCE_LEVEL = 127


class LayeredWriter(PacketWriter):
    """A PacketWriter that answers NACKs for simulcast layers as well.

    PacketWriter keeps history only for single-stream writes, and RTCP NACK reaches it without the
    media SSRC; layers therefore start far apart in sequence space, so a sequence number names its
    layer for the length of a load run (about 140 s of the top layer before ranges could meet).
    """

    def __init__(self, transceiver: RTCRtpTransceiver, kind: str, mime_type: str,
                 layers: list[str] | None = None) -> None:
        super().__init__(transceiver, kind, mime_type, layers)
        # Plain tuples, not packet objects: the garbage collector stops tracking them (see PacketCache).
        self._layer_history: dict[int, tuple[int, Kept]] = {}
        self._order: deque[int] = deque()
        self.resent = 0

    def write(self, packet: RtpPacket, layer: int | None = None) -> bool:
        if layer is not None and self.layers:
            seq = packet.sequence_number
            self._layer_history[seq] = (layer, keep(packet))
            self._order.append(seq)
            while len(self._order) > 3072:
                old = self._order.popleft()
                kept = self._layer_history.get(old)
                if kept is not None and kept[1][0] == old:
                    del self._layer_history[old]
        return super().write(packet, layer)

    def on_nack(self, sequence_numbers: list[int]) -> None:
        if not self.layers:
            self.resent += len(sequence_numbers)
            super().on_nack(sequence_numbers)
            return
        self.nacked.extend(sequence_numbers[:64])
        del self.nacked[:-256]
        pt = offer_payload_type(self.kind, self.mime_type)
        for seq in sequence_numbers[:64]:
            kept = self._layer_history.get(seq)
            if kept is None or pt is None:
                continue
            layer, data = kept
            packet = restore(data, self.layer_ssrcs[layer])
            self.resent += 1
            self.sender.write(packet, pt, seq, packet.timestamp, rtx=True, ssrc=self.layer_ssrcs[layer],
                              rid=self.layers[layer])


class _Stream:
    """One layer's cursor: which frame is next, and its sequence/timestamp state."""

    def __init__(self, layer: EncodedLayer, first_seq: int, start: float, rng: random.Random) -> None:
        self.layer = layer
        self.interval = 1.0 / layer.spec.fps
        self.ts_step = 90000 // layer.spec.fps
        self.seq = first_seq
        self.timestamp = rng.getrandbits(31)
        self.frame = 0
        self.next_due = start


class VideoSender:
    def __init__(self, writer: LayeredWriter, layers: list[EncodedLayer], simulcast: bool, start: float,
                 rng: random.Random) -> None:
        self.writer = writer
        self.simulcast = simulcast
        chosen = layers if simulcast else layers[-1:]
        self.streams = [_Stream(layer, (i * SEQ_SPACING + rng.randrange(1000)) % 65536, start, rng)
                        for i, layer in enumerate(chosen)]
        self._answered = 0
        self.wanted: set[int] | None = None  # stream indexes the server wants (None: all)
        self.packets = 0
        self.frames = 0
        self.keyframes_sent = 0
        self.late = 0  # frames skipped because the pacer fell behind
        self._ready = False  # the writer's sender stays started once it is (asked every 10 ms per bot)

    def tick(self, now: float) -> None:
        if not self._ready:
            if not self.writer.ready:
                for stream in self.streams:
                    stream.next_due = now
                return
            self._ready = True
        if self.writer.keyframe_requests != self._answered:
            # A PLI names one stream, but reaches us without its SSRC: restart every layer.
            self._answered = self.writer.keyframe_requests
            for stream in self.streams:
                stream.frame = 0
        for i, stream in enumerate(self.streams):
            if self.wanted is not None and i not in self.wanted:
                # Paused (nobody receives this layer): the clock runs on, no packets go out.
                while stream.next_due <= now:
                    stream.next_due += stream.interval
                    stream.timestamp = (stream.timestamp + stream.ts_step) % (1 << 32)
                continue
            sent = 0
            while now >= stream.next_due and sent < MAX_CATCH_UP:
                self._send_frame(stream, i if self.simulcast else None)
                stream.next_due += stream.interval
                sent += 1
            if now - stream.next_due > stream.interval:
                skipped = int((now - stream.next_due) / stream.interval)
                self.late += skipped
                stream.next_due += skipped * stream.interval

    def set_demand(self, active: bool, rids: list[str]) -> None:
        """The server's `track_demand`: send only the layers someone receives; a resumed layer starts
        with a keyframe, as an encoder does."""
        if self.simulcast:
            wanted = {i for i, s in enumerate(self.streams) if s.layer.spec.rid in rids}
        else:
            wanted = {0} if active else set()
        for i, stream in enumerate(self.streams):
            if i in wanted and self.wanted is not None and i not in self.wanted:
                stream.frame = 0
        self.wanted = wanted

    def _send_frame(self, stream: _Stream, layer: int | None) -> None:
        frames = stream.layer.frames
        payloads = frames[stream.frame % len(frames)]
        if stream.frame % len(frames) == 0:
            self.keyframes_sent += 1
        last = len(payloads) - 1
        for n, payload in enumerate(payloads):
            packet = RtpPacket(payload_type=0, marker=int(n == last), sequence_number=stream.seq,
                               timestamp=stream.timestamp, payload=stamp(payload, time.monotonic()))
            if self.writer.write(packet, layer):
                self.packets += 1
            stream.seq = (stream.seq + 1) % 65536
        stream.frame += 1
        stream.timestamp = (stream.timestamp + stream.ts_step) % (1 << 32)
        self.frames += 1


class AudioSender:
    """20 ms Opus packets while talking (audio level 25-35 -dBov), a DTX packet every 400 ms in silence."""

    def __init__(self, writer: PacketWriter, speech: list[bytes], schedule: TalkSchedule, index: int,
                 origin: float, start: float, rng: random.Random) -> None:
        self.writer = writer
        self.speech = speech
        self.schedule = schedule
        self.index = index
        self.origin = origin  # the run's t = 0, shared by every worker
        self.rng = rng
        self.level = rng.randint(27, 33)
        self.seq = rng.randrange(65536)
        self.timestamp = rng.getrandbits(31)
        self.slot = 0
        self.next_due = start
        self.was_talking = False
        self.packets = 0
        self.talk_packets = 0
        self.late = 0
        self._ready = False  # as VideoSender's

    def tick(self, now: float) -> None:
        if not self._ready:
            if not self.writer.ready:
                self.next_due = now
                return
            self._ready = True
        sent = 0
        while now >= self.next_due and sent < 5:
            self._slot(self.next_due)
            self.next_due += 0.02
            sent += 1
        if now - self.next_due > 0.1:
            skipped = int((now - self.next_due) / 0.02)
            self.late += skipped
            self.slot += skipped
            self.timestamp = (self.timestamp + 960 * skipped) % (1 << 32)
            self.next_due += skipped * 0.02

    def _slot(self, due: float) -> None:
        talking = self.schedule.talking(self.index, due - self.origin)
        payload: bytes | None = None
        if talking:
            payload = self.speech[self.slot % len(self.speech)]
            level = max(25, min(35, self.level + self.rng.randint(-2, 2)))
        elif self.slot % DTX_INTERVAL == 0:
            payload, level = DTX_PAYLOAD, SILENCE_LEVEL
        if payload is not None:
            packet = RtpPacket(payload_type=0, marker=int(talking and not self.was_talking),
                               sequence_number=self.seq, timestamp=self.timestamp, payload=stamp(payload, time.monotonic()))
            packet.extensions.audio_level = (talking, level)
            if self.writer.write(packet):
                self.packets += 1
                self.talk_packets += int(talking)
            self.seq = (self.seq + 1) % 65536
        self.was_talking = talking
        self.slot += 1
        self.timestamp = (self.timestamp + 960) % (1 << 32)
