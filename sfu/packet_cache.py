"""A ring of recent packets of one publication, by sequence number, to answer subscribers' NACKs."""

from __future__ import annotations

from sfu.rtp import RtpPacket


class PacketCache:
    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._ring: list[RtpPacket | None] = [None] * size

    def put(self, packet: RtpPacket) -> None:
        self._ring[packet.sequence_number % self._size] = packet

    def get(self, sequence_number: int) -> RtpPacket | None:
        packet = self._ring[sequence_number % self._size]
        if packet is not None and packet.sequence_number == sequence_number:
            return packet
        return None
