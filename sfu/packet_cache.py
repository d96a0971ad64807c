"""A ring of recent packets of one stream (one SSRC), by sequence number, to answer subscribers' NACKs.

Packets are kept as plain tuples of ints and bytes, not as parsed packet objects: the garbage collector
stops tracking such tuples, whereas half a thousand packet objects per stream in a hundred-person room
made every full collection scan over a million objects and stall forwarding for ~0.5 s.
"""

from __future__ import annotations

from sfu.rtp import RtpPacket

# (sequence number, payload type, marker, timestamp, payload, padding size)
Kept = tuple[int, int, int, int, bytes, int]


def keep(packet: RtpPacket) -> Kept:
    return (packet.sequence_number, packet.payload_type, packet.marker, packet.timestamp, packet.payload,
            packet.padding_size)


def restore(kept: Kept, ssrc: int) -> RtpPacket:
    seq, payload_type, marker, timestamp, payload, padding = kept
    packet = RtpPacket(payload_type=payload_type, marker=marker, sequence_number=seq, timestamp=timestamp,
                       ssrc=ssrc, payload=payload)
    packet.padding_size = padding
    return packet


class PacketCache:
    def __init__(self, ssrc: int, size: int = 512) -> None:
        self.ssrc = ssrc
        self._size = size
        self._ring: list[Kept | None] = [None] * size

    def put(self, packet: RtpPacket) -> None:
        self._ring[packet.sequence_number % self._size] = keep(packet)

    def get(self, sequence_number: int) -> RtpPacket | None:
        kept = self._ring[sequence_number % self._size]
        if kept is None or kept[0] != sequence_number:
            return None
        return restore(kept, self.ssrc)
