"""RTP vocabulary for the forwarding path: the packet type, sequence arithmetic, keyframe detection.

The packet codec itself is aiortc's (`aiortc.rtp`, a public protocol module); everything else here is ours
and pure, so the room logic never imports aiortc.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket

__all__ = [
    "HeaderExtensionsMap",
    "RtpWriter",
    "SharedFields",
    "abs_send_time",
    "extensions_map",
    "RtpPacket",
    "is_keyframe_start",
    "parse_forwarded",
    "seq_add",
    "seq_newer",
    "ts_add",
    "unpack_remb",
]


# -- parsing fails with ValueError only -----------------------------------------------------------
# aiortc's transport drops a datagram whose RTP or RTCP parsing raises ValueError, but any other
# exception ends the transport's receive loop: the connection dies. Two of its parsers raise
# struct.error on short input that a peer chooses: a header-extension element of the wrong length
# (abs-send-time, audio level, toffset, transport-cc) and a REMB whose SSRC count exceeds its data.
# `unpack_remb` below raises ValueError only; sfu/aiortc_seams.py installs it and a ValueError-only
# header-extension parser into aiortc when it is imported (before any peer connection exists).


def unpack_remb(data: bytes) -> tuple[int, list[int]]:
    """A REMB feedback's (bitrate, SSRCs) from its FCI; ValueError when it is not REMB or is truncated."""
    if len(data) < 8 or data[:4] != b"REMB":
        raise ValueError("not a REMB FCI")
    count = data[4]
    if len(data) < 8 + 4 * count:
        raise ValueError(f"REMB FCI names {count} SSRCs but carries {(len(data) - 8) // 4}")
    exponent = data[5] >> 2
    mantissa = ((data[5] & 0x03) << 16) | (data[6] << 8) | data[7]
    return mantissa << exponent, list(struct.unpack_from(f"!{count}L", data, 8))



SEQ_MOD = 1 << 16

AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"


def extensions_map(uris: list[str]) -> HeaderExtensionsMap:
    """A header-extension map with ids 1.. for `uris`, for links we define ourselves (pipes)."""
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

    ext_map = HeaderExtensionsMap()
    ext_map.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=i, uri=uri) for i, uri in enumerate(uris, start=1)
    ]))
    return ext_map
TS_MOD = 1 << 32


def seq_add(a: int, b: int) -> int:
    return (a + b) % SEQ_MOD


def ts_add(a: int, b: int) -> int:
    return (a + b) % TS_MOD


def seq_newer(a: int, b: int) -> bool:
    """True when sequence number `a` comes after `b` (RFC 3550 wrap-around)."""
    return a != b and ((a - b) % SEQ_MOD) < SEQ_MOD // 2


def vp8_is_keyframe_start(payload: bytes) -> bool:
    """First packet of a VP8 keyframe: descriptor S=1 and PID=0, then the payload header's P bit clear."""
    if len(payload) < 1:
        return False
    first = payload[0]
    if not (first & 0x10) or (first & 0x07) != 0:
        return False
    i = 1
    if first & 0x80:  # X: extension byte follows
        if len(payload) <= i:
            return False
        ext = payload[i]
        i += 1
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= i:
                return False
            i += 2 if payload[i] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            i += 1
        if ext & 0x30:  # T or K: TID/KEYIDX byte
            i += 1
    return len(payload) > i and (payload[i] & 0x01) == 0


def h264_is_keyframe_start(payload: bytes) -> bool:
    """A packet that starts an IDR picture or carries SPS (single NAL, STAP-A or FU-A start)."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (5, 7):
        return True
    if nal_type == 24:  # STAP-A: 2-byte sizes, then NALs
        i = 1
        while i + 2 < len(payload):
            size = (payload[i] << 8) | payload[i + 1]
            if i + 2 < len(payload) and (payload[i + 2] & 0x1F) in (5, 7):
                return True
            i += 2 + size
        return False
    if nal_type == 28 and len(payload) > 1:  # FU-A: start bit and inner type
        return bool(payload[1] & 0x80) and (payload[1] & 0x1F) in (5, 7)
    return False


def is_keyframe_start(mime_type: str, payload: bytes) -> bool:
    mime = mime_type.lower()
    if mime == "video/vp8":
        return vp8_is_keyframe_start(payload)
    if mime == "video/h264":
        return h264_is_keyframe_start(payload)
    return True  # audio and unknown codecs need no keyframe


NTP_UNIX_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)


def abs_send_time(now: float) -> int:
    """The abs-send-time extension value (6.18 fixed-point seconds, 24 bits) for Unix time `now`."""
    return int((now + NTP_UNIX_OFFSET) * 262144) & 0xFFFFFF


class Layout(NamedTuple):
    """One header shape of an outgoing stream: the fixed header and extension block as a Struct, the block's
    constant bytes (profile, length, MID element, abs-send-time id) and its zero padding."""

    header: struct.Struct
    constant: bytes
    padding: int
    with_time: bool  # an abs-send-time element follows the constant bytes


class SharedFields:
    """What every subscriber's copy of a packet shares, computed once per packet: the fan-out writes one
    packet to many subscribers in a row, so the last packet seen is the one asked about."""

    __slots__ = ("_packet", "send_time")

    def __init__(self) -> None:
        self._packet: RtpPacket | None = None
        self.send_time = b"\x00\x00\x00"

    def share(self, packet: RtpPacket, send_time: bytes) -> None:
        """`packet` went out with `send_time` already (the compiled receive route): the rest of it does too."""
        self._packet = packet
        self.send_time = send_time

    def of(self, packet: RtpPacket, now: Callable[[], float]) -> bytes:
        if packet is not self._packet:
            self._packet = packet  # held: its id cannot be reused by a later packet while we compare
            self.send_time = abs_send_time(now()).to_bytes(3, "big")
        return self.send_time


class RtpWriter:
    """Serializes forwarded packets for one outgoing stream, faster than RtpPacket.serialize: the
    MID element is prepared once, and only abs-send-time, the audio level and a RID are added per packet.

    Ids are the negotiated header-extension ids (0 = not negotiated).
    """

    def __init__(self, mid: str | None, mid_id: int, abs_send_time_id: int, audio_level_id: int, rid_id: int) -> None:
        mid_bytes = mid.encode() if mid and mid_id else b""
        self._mid_element = bytes([(mid_id << 4) | (len(mid_bytes) - 1)]) + mid_bytes if mid_bytes else b""
        self._abs_id = abs_send_time_id
        self._level_id = audio_level_id
        self._rid_id = rid_id
        # `pack_into` layouts, with and without the audio level: the fixed header, then the extension block
        # whose constant part (profile, length, MID element, abs-send-time id) is prepared here. Same bytes
        # as `serialize`, element for element.
        self._layouts: tuple[Layout, Layout] | None = None
        if mid_bytes or abs_send_time_id:  # else no extension block: serialize does it (never negotiated so)
            self._layouts = (self._layout(False), self._layout(True))

    def _layout(self, level: bool) -> "Layout":
        with_time = bool(self._abs_id)  # audio m-lines negotiate no abs-send-time
        elements = len(self._mid_element) + (4 if with_time else 0) + (2 if level and self._level_id else 0)
        padding = -elements % 4
        constant = struct.pack("!HH", 0xBEDE, (elements + padding) >> 2) + self._mid_element \
            + (bytes(((self._abs_id << 4) | 2,)) if with_time else b"")
        tail = ("3s" if with_time else "") + ("H" if level and self._level_id else "")
        return Layout(struct.Struct(f"!BBHLL{len(constant)}s{tail}{padding}x"), constant, padding, with_time)

    def batch_shapes(self) -> tuple[tuple[bytes, int], tuple[bytes, int], bool, int] | None:
        """For the batched fan-out: (constant, padding) without and with the audio level, whether abs-send-time
        follows the constant, and the audio-level id (0: none); None when packets need `serialize`."""
        layouts = self._layouts
        if layouts is None:
            return None
        plain, leveled = layouts
        return (plain.constant, plain.padding), (leveled.constant, leveled.padding), plain.with_time, self._level_id

    def layout_of(self, packet: RtpPacket) -> tuple["Layout", int] | None:
        """For the compiled path: the packet's layout and its audio-level element as a 16-bit word (-1: none);
        None when the packet needs `serialize`."""
        layouts = self._layouts
        if layouts is None or packet.csrc or packet.padding_size:
            return None
        level = packet.extensions.audio_level
        if level is not None and self._level_id:
            return layouts[1], (self._level_id << 12) | (0x80 if level[0] else 0) | (level[1] & 0x7F)
        return layouts[0], -1

    def pack_into(self, buffer: memoryview, packet: RtpPacket, payload_type: int, seq: int, timestamp: int,
                  ssrc: int, send_time: bytes) -> int:
        """Writes what `serialize` returns (without a RID) into `buffer` and returns its length; 0 when this
        packet needs `serialize` (CSRCs, padding, no extension negotiated). `send_time`: the 3 bytes of
        abs-send-time, computed once per packet for all subscribers (`SharedFields`)."""
        layouts = self._layouts
        if layouts is None or packet.csrc or packet.padding_size:
            return 0
        level = packet.extensions.audio_level
        second = (packet.marker << 7) | payload_type
        if level is not None and self._level_id:
            shape = layouts[1]
            word = (self._level_id << 12) | (0x80 if level[0] else 0) | (level[1] & 0x7F)
            if shape.with_time:
                shape.header.pack_into(buffer, 0, 0x90, second, seq, timestamp, ssrc, shape.constant, send_time, word)
            else:
                shape.header.pack_into(buffer, 0, 0x90, second, seq, timestamp, ssrc, shape.constant, word)
        else:
            shape = layouts[0]
            if shape.with_time:
                shape.header.pack_into(buffer, 0, 0x90, second, seq, timestamp, ssrc, shape.constant, send_time)
            else:
                shape.header.pack_into(buffer, 0, 0x90, second, seq, timestamp, ssrc, shape.constant)
        layout = shape.header
        start = layout.size
        end = start + len(packet.payload)
        buffer[start:end] = packet.payload
        return end

    def serialize(self, packet: RtpPacket, payload_type: int, seq: int, timestamp: int, ssrc: int,
                  send_time: int, rid: str | None = None) -> bytes:
        elements = self._mid_element
        if self._abs_id:
            elements += bytes(((self._abs_id << 4) | 2, send_time >> 16, (send_time >> 8) & 0xFF, send_time & 0xFF))
        level = packet.extensions.audio_level
        if level is not None and self._level_id:
            elements += bytes(((self._level_id << 4), (0x80 if level[0] else 0) | (level[1] & 0x7F)))
        if rid and self._rid_id:
            rid_bytes = rid.encode()
            elements += bytes(((self._rid_id << 4) | (len(rid_bytes) - 1),)) + rid_bytes
        csrc = packet.csrc
        first = 0x80 | len(csrc)
        if elements:
            first |= 0x10
            elements += b"\x00" * (-len(elements) % 4)
        padding = packet.padding_size
        if padding:
            first |= 0x20
        head = struct.pack("!BBHLL", first, (packet.marker << 7) | payload_type, seq, timestamp, ssrc)
        if csrc:
            head += b"".join(struct.pack("!L", c) for c in csrc)
        if elements:
            head += struct.pack("!HH", 0xBEDE, len(elements) >> 2) + elements
        data = head + packet.payload
        if padding:
            data += bytes(padding - 1) + bytes((padding,))
        return data


# -- the one shape we forward, parsed in one pass -------------------------------------------------------
# aiortc's RtpPacket.parse builds each packet twice over (an empty HeaderExtensions that is then replaced), a list
# of (id, bytes) pairs and a slice per header extension, and a struct call each: the largest piece of Python per
# received packet (server and bots alike, #14). Every packet a browser, aiortc or our server sends has one shape:
# version 2, no padding, no CSRC, one-byte header extensions. `parse_forwarded` reads that shape into the same
# RtpPacket and returns None for anything else (and anything malformed), for aiortc's own parse to read or refuse.

PLAIN_WITH_EXTENSION = 0x90
ONE_BYTE_PROFILE = 0xBEDE
_FIXED = struct.Struct("!BBHLLHH")  # the 12-byte header and the extension block's profile and length


def _one_byte_extensions(ids: HeaderExtensions, data: bytes, pos: int, end: int) -> HeaderExtensions | None:
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


def parse_forwarded(data: bytes, ids: HeaderExtensions) -> RtpPacket | None:
    """The packet, as aiortc's parse with the map whose ids are `ids` reads it; None: not the common shape."""
    if len(data) < _FIXED.size or data[0] != PLAIN_WITH_EXTENSION:
        return None
    _, m_pt, seq, timestamp, ssrc, profile, words = _FIXED.unpack_from(data)
    end = _FIXED.size + 4 * words
    if profile != ONE_BYTE_PROFILE or end > len(data):
        return None
    values = _one_byte_extensions(ids, data, _FIXED.size, end)
    if values is None:
        return None
    packet: Any = object.__new__(RtpPacket)  # RtpPacket's own fields, set once (its __init__ would make them twice)
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
