"""The send time a publishing bot appends to every payload, read back by receiving bots.

Our server never reads payloads past the codec's first bytes, so a tail is safe for bots: 8 bytes of
`time.monotonic()` (one clock for every process on the machine) and a 4-byte marker.
"""

from __future__ import annotations

import struct

MARKER = b"CvLT"
_TAIL = struct.Struct("!d4s")
TAIL_SIZE = _TAIL.size
# The send time at an offset (a receiving bot reads it from the payload's last TAIL_SIZE octets, after checking MARKER).
unpack_sent_at = struct.Struct("!d").unpack_from


def stamp(payload: bytes, sent_at: float) -> bytes:
    return payload + _TAIL.pack(sent_at, MARKER)


def read_stamp(payload: bytes) -> float | None:
    """The embedded send time, or None when the payload carries no tail."""
    if len(payload) < TAIL_SIZE or not payload.endswith(MARKER):
        return None
    sent_at: float = unpack_sent_at(payload, len(payload) - TAIL_SIZE)[0]
    return sent_at


def strip_stamp(payload: bytes) -> bytes:
    return payload[:-TAIL_SIZE] if payload[-4:] == MARKER else payload
