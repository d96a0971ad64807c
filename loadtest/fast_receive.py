"""A cheaper receive path for the load generator's process (installed by loadtest/worker.py only): aiortc's
RtpPacket.parse and NackGenerator.add, replaced by equivalents that take fewer steps per packet.

A bot parses every packet it receives (tens of thousands a second per generator core, #14), and aiortc's parse
was the largest piece of Python in that path: it builds the packet twice over (an empty HeaderExtensions that
is then replaced), a list of (id, bytes) pairs and a slice per header extension, and a struct call each.
The packets our server forwards have one shape (version 2, no padding, no CSRC, one-byte header extensions):
this parses that shape in one pass into the same RtpPacket, and hands anything else (and anything malformed,
so errors stay aiortc's ValueErrors) to aiortc's own parse.

aiortc's NackGenerator scans its whole set of missing numbers after every packet (up to 128 of them while
there is loss, which is when a generator is busiest); `nack_add` drops the one number an in-order packet
pushes out of the window instead, and gives the same answers. The server's process installs neither.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensions, HeaderExtensionsMap, RtpPacket

# Version 2, no padding, an extension, no CSRC: every packet our forwarding writes.
PLAIN_WITH_EXTENSION = 0x90
ONE_BYTE_PROFILE = 0xBEDE
_FIXED = struct.Struct("!BBHLLHH")  # the 12-byte header and the extension block's profile and length

_aiortc_parse: Callable[[bytes, HeaderExtensionsMap], RtpPacket] | None = None


def _extensions(ids: HeaderExtensions, data: bytes, pos: int, end: int) -> HeaderExtensions | None:
    """One-byte header extensions (RFC 8285) in data[pos:end], as aiortc reads them; None: let aiortc parse
    (an element it reads with a struct of its own, or one of the wrong length)."""
    values = HeaderExtensions()
    while pos < end:
        first = data[pos]
        if first == 0:  # padding
            pos += 1
            continue
        x_id = first >> 4
        length = (first & 0x0F) + 1
        pos += 1
        stop = pos + length
        if stop > end:
            return None
        if x_id == ids.mid:
            values.mid = data[pos:stop].decode("utf8")
        elif x_id == ids.repaired_rtp_stream_id:
            values.repaired_rtp_stream_id = data[pos:stop].decode("ascii")
        elif x_id == ids.rtp_stream_id:
            values.rtp_stream_id = data[pos:stop].decode("ascii")
        elif x_id == ids.abs_send_time:
            if length != 3:
                return None
            values.abs_send_time = int.from_bytes(data[pos:stop], "big")
        elif x_id == ids.transmission_offset or x_id == ids.transport_sequence_number:
            return None
        elif x_id == ids.audio_level:
            if length != 1:
                return None
            level = data[pos]
            values.audio_level = (level & 0x80 == 0x80, level & 0x7F)
        pos = stop
    return values


def parse(cls: type[RtpPacket], data: bytes, extensions_map: HeaderExtensionsMap = HeaderExtensionsMap()) -> RtpPacket:
    original = _aiortc_parse
    assert original is not None
    if len(data) < _FIXED.size or data[0] != PLAIN_WITH_EXTENSION:
        return original(data, extensions_map)
    _, m_pt, seq, timestamp, ssrc, profile, words = _FIXED.unpack_from(data)
    end = _FIXED.size + 4 * words
    if profile != ONE_BYTE_PROFILE or end > len(data):
        return original(data, extensions_map)
    ids: HeaderExtensions = extensions_map._HeaderExtensionsMap__ids  # type: ignore[attr-defined]
    values = _extensions(ids, data, _FIXED.size, end)
    if values is None:
        return original(data, extensions_map)
    packet: Any = object.__new__(cls)  # RtpPacket's own fields, set once (its __init__ would make them twice)
    packet.version = 2
    packet.marker = m_pt >> 7
    packet.payload_type = m_pt & 0x7F
    packet.sequence_number = seq
    packet.timestamp = timestamp
    packet.ssrc = ssrc
    packet.csrc = []
    packet.extensions = values
    packet.payload = data[end:]
    packet.padding_size = 0
    built: RtpPacket = packet
    return built


def nack_add(self: NackGenerator, packet: RtpPacket) -> bool:
    """NackGenerator.add: marks a packet received; True when it revealed missing numbers.

    After every add, the set holds only numbers in the window of RTP_HISTORY_SIZE below the highest (aiortc's
    `truncate`). So a packet one past the highest pushes out exactly one number, and a late packet none; only a
    packet that jumps ahead needs the full truncate.
    """
    seq = packet.sequence_number
    top = self.max_seq
    if top is None:
        self.max_seq = seq
        return False
    missing = self.missing
    delta = (seq - top) & 0xFFFF
    if delta == 1:
        if missing:
            missing.discard((top - RTP_HISTORY_SIZE) & 0xFFFF)
        self.max_seq = seq
        return False
    if 0 < delta < 0x8000:
        for n in range(1, delta):
            missing.add((top + n) & 0xFFFF)
        self.max_seq = seq
        self.truncate()
        return True
    missing.discard(seq)  # late (a retransmission, reordering) or a duplicate: the window does not move
    return False


def install_fast_receive() -> None:
    """Idempotent. For the generator's process: every RtpPacket.parse and NackGenerator.add in it (aiortc's and
    ours) become `parse` and `nack_add`."""
    global _aiortc_parse
    if _aiortc_parse is not None:
        return
    _aiortc_parse = RtpPacket.parse
    RtpPacket.parse = classmethod(parse)  # type: ignore[method-assign, assignment]
    NackGenerator.add = nack_add  # type: ignore[method-assign]
