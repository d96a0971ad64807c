"""A ring of recent packets of one stream (one SSRC), by sequence number, to answer subscribers' NACKs.

Packets are kept as plain tuples of ints and bytes, not as parsed packet objects: the garbage collector
stops tracking such tuples, whereas half a thousand packet objects per stream in a hundred-person room
made every full collection scan over a million objects and stall forwarding for ~0.5 s.

Once the stream has a compiled receive route (sfu/aiortc_seams.ReceiveRoute), its packets are kept in a C ring
instead (`compile()`), which the route fills itself; Python's packets of that stream go there too, so the stream
has one ring whichever path a packet took.
"""

from __future__ import annotations

from typing import Any

from sfu.rtp import RtpPacket

# (sequence number, payload type, marker, timestamp, payload, padding size)
Kept = tuple[int, int, int, int, bytes, int]
SIZE = 512  # the C ring's size too (CONVENE_RING in sfu/_fastpath.c)
PAYLOAD_ROOM = 1500


def keep(packet: RtpPacket) -> Kept:
    return (packet.sequence_number, packet.payload_type, packet.marker, packet.timestamp, packet.payload,
            packet.padding_size)


def restore(kept: Kept, ssrc: int) -> RtpPacket:
    seq, payload_type, marker, timestamp, payload, padding = kept
    packet = RtpPacket(payload_type=payload_type, marker=marker, sequence_number=seq, timestamp=timestamp,
                       ssrc=ssrc, payload=payload)
    packet.padding_size = padding
    return packet


class CompiledRing:
    """The C ring (convene_ring_*): slots own their bytes, freed with the ring."""

    def __init__(self, ffi: Any, lib: Any) -> None:
        self._ffi = ffi
        self._lib = lib
        self.ring = ffi.gc(lib.convene_ring_new(), lib.convene_ring_free)
        if self.ring == ffi.NULL:
            raise MemoryError("packet ring")
        self._fields = ffi.new("int[3]")
        self._ts = ffi.new("unsigned int *")
        self._out = ffi.new("char[]", PAYLOAD_ROOM)

    def put(self, kept: Kept) -> None:
        seq, payload_type, marker, timestamp, payload, padding = kept
        self._lib.convene_ring_put(self.ring, seq, payload_type, marker, timestamp, padding, payload, len(payload))

    def get(self, sequence_number: int) -> Kept | None:
        n = self._lib.convene_ring_get(self.ring, sequence_number, self._fields, self._ts, self._out, PAYLOAD_ROOM)
        if n < 0:
            return None
        fields = self._fields
        return (sequence_number, fields[0], fields[1], self._ts[0], self._ffi.buffer(self._out, n)[:], fields[2])


class PacketCache:
    def __init__(self, ssrc: int, size: int = SIZE) -> None:
        self.ssrc = ssrc
        self._size = size
        self._ring: list[Kept | None] = [None] * size
        self.compiled: CompiledRing | None = None

    def put(self, packet: RtpPacket) -> None:
        if self.compiled is not None:
            self.compiled.put(keep(packet))
        else:
            self._ring[packet.sequence_number % self._size] = keep(packet)

    def get(self, sequence_number: int) -> RtpPacket | None:
        if self.compiled is not None:
            kept = self.compiled.get(sequence_number)
        else:
            kept = self._ring[sequence_number % self._size]
        if kept is None or kept[0] != sequence_number:
            return None
        return restore(kept, self.ssrc)

    def compile(self, ffi: Any, lib: Any) -> CompiledRing:
        """Moves the ring into C (once): what it holds stays answerable."""
        if self.compiled is None:
            if self._size != SIZE:
                raise ValueError(f"a compiled ring holds {SIZE} packets, not {self._size}")
            ring = CompiledRing(ffi, lib)
            for kept in self._ring:
                if kept is not None:
                    ring.put(kept)
            self._ring = []
            self.compiled = ring
        return self.compiled
