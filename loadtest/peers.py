"""The client side of packet forwarding: aiortc peers that send and receive pre-encoded RTP packets
without codecs (load bots, benchmarks and tests). The server's sfu/webrtc.py holds none of this."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from functools import partial

from aiortc import RTCRtpTransceiver, RTCSessionDescription

from sfu.aiortc_seams import (
    ForwardingPeerConnection,
    ForwardingReceiver,
    RecordSink,
    offer_payload_type,
    receiver_of,
    sender_of,
)
from sfu.fanout import FanOut
from sfu.packet_cache import PacketCache
from sfu.rtp import RtpPacket
from sfu.selection import GATE_OFF
from sfu.simulcast_sdp import offer_with_simulcast
from sfu.webrtc import IceServerEntry, rtc_configuration


class PacketWriter:
    """Writes pre-encoded RTP payloads on one sendonly transceiver of a client connection
    (several streams with `layers`: simulcast, lowest first)."""

    def __init__(self, transceiver: RTCRtpTransceiver, kind: str, mime_type: str,
                 layers: list[str] | None = None) -> None:
        self.transceiver = transceiver
        self.sender = sender_of(transceiver)
        self.kind = kind
        self.mime_type = mime_type
        self.layers = list(layers or [])
        self.layer_ssrcs = [random.getrandbits(32) for _ in self.layers]
        self.sender.extra_ssrcs = list(self.layer_ssrcs)
        self.keyframe_requests = 0
        self.nacked: list[int] = []
        self.remb: int | None = None
        self.history = PacketCache(0, 1024)  # what was sent, for NACKs (single-stream writers)
        self.sender.feedback = self

    @property
    def mid(self) -> str | None:
        return self.transceiver.mid

    @property
    def ready(self) -> bool:
        return self.sender.started

    @property
    def ssrc(self) -> int:
        return int(self.sender._ssrc)

    def write(self, packet: RtpPacket, layer: int | None = None) -> bool:
        pt = offer_payload_type(self.kind, self.mime_type)
        if pt is None:
            return False
        if layer is not None and self.layers:
            return self.sender.write(packet, pt, packet.sequence_number, packet.timestamp,
                                     ssrc=self.layer_ssrcs[layer], rid=self.layers[layer])
        self.history.put(packet)
        return self.sender.write(packet, pt, packet.sequence_number, packet.timestamp)

    def on_nack(self, sequence_numbers: list[int]) -> None:
        self.nacked.extend(sequence_numbers)
        pt = offer_payload_type(self.kind, self.mime_type)
        for seq in sequence_numbers:
            packet = self.history.get(seq)
            if packet is not None and pt is not None:
                self.sender.write(packet, pt, seq, packet.timestamp, rtx=True)

    def on_keyframe_request(self) -> None:
        self.keyframe_requests += 1

    def on_remb(self, bitrate: int) -> None:
        self.remb = bitrate


class PacketPublisherPeer:
    """Client side of a publisher connection that sends pre-encoded packets (load bots, tests)."""

    def __init__(self, ice_servers: Sequence[IceServerEntry] | None = None) -> None:
        self.pc = ForwardingPeerConnection(rtc_configuration(ice_servers or []))
        self.writers: list[PacketWriter] = []

    def add_track(self, kind: str, mime_type: str, layers: list[str] | None = None) -> PacketWriter:
        transceiver = self.pc.addTransceiver(kind, direction="sendonly")
        writer = PacketWriter(transceiver, kind, mime_type, layers)
        self.writers.append(writer)
        return writer

    async def create_offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        description = self.pc.localDescription
        assert description is not None
        layers = {str(w.mid): w.layers for w in self.writers if w.layers and w.mid is not None}
        return offer_with_simulcast(str(description.sdp), layers)

    async def apply_answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def close(self) -> None:
        await self.pc.close()


# (mid, sequence number, RTP timestamp, payload octets, the payload's last 12 octets, marker, arrival)
RecordHandler = Callable[[str, int, int, int, bytes, int, float], None]


class CountingTarget:
    """Where a counting subscriber's streams go (a RouteTarget): nowhere but their records. With it a steady
    stream takes the server's compiled receive route, and its socket's drain: unprotected, its statistics and
    NACK window kept in C, each packet reaches the bot as a record (seq, timestamp, size, tail) instead of a
    parsed packet, so a bot costs a fraction of a packet's Python path (#14)."""

    steady = True

    def __init__(self, sink: RecordSink) -> None:
        self.sink: RecordSink | None = sink
        self.routed_packets = 0
        self._fanout: FanOut | None = None

    def route_for(self, ssrc: int) -> tuple[FanOut, None, int]:
        if self._fanout is None:
            self._fanout = FanOut()  # no member: C sends nothing
        return self._fanout, None, 0

    def routable(self) -> bool:
        return True

    def one_by_one(self, layer: int) -> tuple[object, ...]:
        return ()

    def keyframe(self, packet: RtpPacket) -> bool:
        return False

    def gate(self) -> int:
        return GATE_OFF  # a bot hears whatever the server forwards

    def absorb_routed(self, layer: int, packets: int, octets: int, levels: tuple[int, int, int],
                      voiced_at: float) -> None:
        self.routed_packets += packets

    def routed(self, ssrc: int, fold: Callable[[], None] | None) -> None:
        pass


class PacketSubscriberPeer:
    """Client side of a subscriber connection that hands on raw packets instead of decoding (or, with
    `on_record`, only what a counting bot needs of each steady packet: see CountingTarget)."""

    def __init__(self, on_packet: Callable[[str, RtpPacket], None],
                 ice_servers: Sequence[IceServerEntry] | None = None, on_record: RecordHandler | None = None) -> None:
        self.pc = ForwardingPeerConnection(rtc_configuration(ice_servers or []))
        self._on_packet = on_packet
        self._on_record = on_record

    async def answer(self, offer_sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for transceiver in self.pc.getTransceivers():
            receiver = receiver_of(transceiver)
            if receiver.on_packet is None and transceiver.mid is not None:
                receiver.on_packet = partial(self._on_packet, str(transceiver.mid))  # called per packet: no lambda frame
                if self._on_record is not None:
                    receiver.route_target = CountingTarget(partial(self._on_record, str(transceiver.mid)))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        description = self.pc.localDescription
        assert description is not None
        return str(description.sdp)

    def _receiver(self, mid: str) -> ForwardingReceiver | None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid == mid:
                receiver = receiver_of(transceiver)
                return receiver
        return None

    def request_keyframe(self, mid: str) -> bool:
        receiver = self._receiver(mid)
        return receiver is not None and receiver.send_pli()

    def send_nack(self, mid: str, sequence_numbers: list[int]) -> None:
        receiver = self._receiver(mid)
        if receiver is not None and receiver.media_ssrc is not None:
            receiver.send_nack(receiver.media_ssrc, sequence_numbers)

    async def close(self) -> None:
        await self.pc.close()
