"""Test helpers: packet-level participants (aiortc peers over 127.0.0.1) joined through real signaling."""

from __future__ import annotations

import asyncio
import os
import struct
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sfu.rtp import RtpPacket
from loadtest.peers import PacketPublisherPeer, PacketSubscriberPeer, PacketWriter
from signaling.client import SignalingClient


def vp8_payload(keyframe: bool, size: int = 600) -> bytes:
    # Descriptor: S=1, PID=0, no extensions; then the VP8 payload header whose bit 0 is P (0 = key).
    header = bytes([0x10, 0x00 if keyframe else 0x01])
    return header + os.urandom(size)


@dataclass
class Participant:
    client: SignalingClient
    publisher: PacketPublisherPeer
    subscriber: PacketSubscriberPeer
    received: dict[str, list[RtpPacket]] = field(default_factory=lambda: defaultdict(list))

    @property
    def id(self) -> str:
        assert self.client.joined is not None
        return str(self.client.joined["participant"]["id"])

    async def publish(self, *tracks: tuple[str, str, str]) -> list[PacketWriter]:
        """tracks: (kind, mime, source). Returns writers once the publisher connection is up."""
        writers = [self.publisher.add_track(kind, mime) for kind, mime, _ in tracks]
        offer = await self.publisher.create_offer()
        announce = [{"mid": w.mid, "source": source} for w, (_, _, source) in zip(writers, tracks)]
        reply = await self.client.request({"type": "publish", "sdp": offer, "tracks": announce}, "answer")
        await self.publisher.apply_answer(reply["sdp"])
        await wait_until(lambda: all(w.ready for w in writers), 10)
        return writers

    async def close(self) -> None:
        await self.client.close()
        await self.publisher.close()
        await self.subscriber.close()


async def join(server_url: str, room: str, token: str) -> Participant:
    received: dict[str, list[RtpPacket]] = defaultdict(list)
    subscriber = PacketSubscriberPeer(lambda mid, packet: received[mid].append(packet))
    client = SignalingClient(server_url, room, token, on_offer=lambda sdp, tracks: subscriber.answer(sdp))
    await client.connect()
    return Participant(client, PacketPublisherPeer(), subscriber, received)


async def wait_until(predicate: Any, timeout: float, interval: float = 0.02) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)


def drained_datagrams(connection: Any) -> int:
    """Datagrams an ICE connection's socket drains handled in C without entering Python (#14)."""
    return sum(int(p._drain.c.handled) for p in connection._protocols if getattr(p, "_drain", None) is not None)


def make_packet(seq: int, timestamp: int, payload: bytes, marker: bool = False,
                audio_level: int | None = None) -> RtpPacket:
    packet = RtpPacket(payload_type=0, marker=int(marker), sequence_number=seq, timestamp=timestamp,
                       ssrc=0, payload=payload)
    if audio_level is not None:
        packet.extensions.audio_level = (True, audio_level)
    return packet


def opus_payload(size: int = 80) -> bytes:
    return struct.pack("!B", 0x78) + os.urandom(size)
