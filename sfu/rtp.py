"""RTP vocabulary for the forwarding path: the packet type, sequence arithmetic, keyframe detection.

The packet codec itself is aiortc's (`aiortc.rtp`, a public protocol module); everything else here is ours
and pure, so the room logic never imports aiortc.
"""

from __future__ import annotations

from aiortc.rtp import HeaderExtensionsMap, RtpPacket

__all__ = [
    "HeaderExtensionsMap",
    "extensions_map",
    "RtpPacket",
    "is_keyframe_start",
    "seq_add",
    "seq_newer",
    "ts_add",
]

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
