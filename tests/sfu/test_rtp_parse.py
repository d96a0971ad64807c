"""The receive path's own steps (#14, server and bots alike): the one-pass RTP parse (sfu/rtp.py `parse_forwarded`,
with aiortc's parse for any other shape) reads what aiortc's reads and refuses what it refuses; the NACK
bookkeeping (`nack_add`) finds the same missing numbers as aiortc's, and a new gap asks only for what it revealed."""

from __future__ import annotations

import random
from typing import Any

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from sfu.aiortc_seams import extension_ids, nack_add, revealed  # importing it hardens aiortc's parsers
from sfu.rtp import parse_forwarded

URIS = ["urn:ietf:params:rtp-hdrext:sdes:mid", "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id", "urn:ietf:params:rtp-hdrext:toffset"]


def extension_map() -> HeaderExtensionsMap:
    ext = HeaderExtensionsMap()
    ext.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=n + 1, uri=uri) for n, uri in enumerate(URIS)]))
    return ext


def fields(packet: RtpPacket) -> dict[str, Any]:
    return {**vars(packet), "extensions": vars(packet.extensions)}


def aiortc_parse(data: bytes, ext: HeaderExtensionsMap) -> dict[str, Any] | str:
    try:
        return fields(RtpPacket.parse(data, ext))
    except ValueError as exc:
        return "ValueError"  # dropped either way (the message may name another fault of the same packet)


def fast_parse(data: bytes, ext: HeaderExtensionsMap) -> dict[str, Any] | str:
    try:  # as InlineReceive reads a packet
        return fields(parse_forwarded(data, extension_ids(ext)) or RtpPacket.parse(data, ext))
    except ValueError as exc:
        return "ValueError"  # dropped either way (the message may name another fault of the same packet)


def sample_packets(rng: random.Random, ext: HeaderExtensionsMap) -> list[bytes]:
    out = []
    for n in range(400):
        packet = RtpPacket(payload_type=rng.choice([96, 97, 111]), marker=rng.randint(0, 1),
                           sequence_number=rng.randrange(65536), timestamp=rng.getrandbits(32),
                           ssrc=rng.getrandbits(32), payload=rng.randbytes(rng.randint(0, 1200)))
        if n % 2:
            packet.extensions.mid = str(rng.randint(0, 40))
        if n % 3:
            packet.extensions.abs_send_time = rng.getrandbits(24)
        if n % 5 == 0:
            packet.extensions.audio_level = (bool(rng.getrandbits(1)), rng.randint(0, 127))
        if n % 7 == 0:
            packet.extensions.rtp_stream_id = rng.choice(["l", "m", "h"])
        if n % 11 == 0:
            packet.extensions.repaired_rtp_stream_id = "h"
        if n % 13 == 0:
            packet.extensions.transmission_offset = rng.randint(0, 1000)
        if n % 17 == 0:
            packet.csrc = [rng.getrandbits(32)]
        if n % 19 == 0:
            packet.padding_size = rng.randint(1, 20)
        out.append(packet.serialize(ext))
    return out


def test_fast_parse_reads_every_packet_as_aiortc_does() -> None:
    rng = random.Random(5)
    ext = extension_map()
    for data in sample_packets(rng, ext):
        assert fast_parse(data, ext) == aiortc_parse(data, ext)


@pytest.mark.parametrize("damage", ["truncate", "flip", "short"])
def test_fast_parse_refuses_damaged_packets_as_aiortc_does(damage: str) -> None:
    rng = random.Random(9)
    ext = extension_map()
    for data in sample_packets(rng, ext):
        if damage == "truncate":
            bad = data[:rng.randint(0, 24)]
        elif damage == "flip":
            at = rng.randrange(12, min(len(data), 40))
            bad = data[:at] + bytes([rng.randrange(256)]) + data[at + 1:]
        else:  # an extension block that claims more words than the packet holds
            bad = data[:14] + b"\x00\x40" + data[16:40]
        assert fast_parse(bad, ext) == aiortc_parse(bad, ext)


@pytest.mark.parametrize("seed", range(6))
def test_fast_nack_finds_what_aiortc_finds(seed: int) -> None:
    """In order, with losses (single, bursts, past the 128-packet window), late retransmissions, duplicates
    and wraparound: after every packet both generators answer alike and hold the same missing numbers."""
    rng = random.Random(seed)
    theirs, ours = NackGenerator(), NackGenerator()
    seq = rng.randrange(65536)
    late: list[int] = []
    for _ in range(20_000):
        roll = rng.random()
        if roll < 0.05:
            seq = (seq + rng.choice([2, 3, 10, 60, 200, 1000])) & 0xFFFF  # a loss or a burst of them
        elif roll < 0.06:
            seq = (seq - rng.randint(0, 5)) & 0xFFFF  # a duplicate or a reordered packet
        else:
            seq = (seq + 1) & 0xFFFF
        numbers = [seq]
        if late and rng.random() < 0.3:
            numbers.insert(0, late.pop(rng.randrange(len(late))))  # a retransmission arrives
        for number in numbers:
            packet = RtpPacket(sequence_number=number)
            assert nack_add(ours, packet) == theirs.add(packet)
            assert ours.missing == theirs.missing and ours.max_seq == theirs.max_seq
        late = [*late, *theirs.missing][-50:]


def test_the_common_shape_takes_the_one_pass_parse() -> None:
    ext = extension_map()
    packet = RtpPacket(payload_type=96, sequence_number=7, timestamp=9, ssrc=11, payload=b"x" * 100)
    packet.extensions.mid = "3"
    packet.extensions.abs_send_time = 12345
    parsed = parse_forwarded(packet.serialize(ext), extension_ids(ext))
    assert parsed is not None and fields(parsed) == fields(RtpPacket.parse(packet.serialize(ext), ext))
    packet.csrc = [1]
    assert parse_forwarded(packet.serialize(ext), extension_ids(ext)) is None  # aiortc's parse reads that one


def test_a_new_gap_asks_only_for_what_it_revealed() -> None:
    nack = NackGenerator()
    asked = []
    for seq in [100, 101, 103, 104, 107, 102, 110]:
        top = nack.max_seq
        if nack_add(nack, RtpPacket(sequence_number=seq)) and top is not None:
            asked.append(revealed(nack, top, seq))
    assert asked == [[102], [105, 106], [108, 109]]  # never 102 again with 105, 106 (aiortc asked the whole set)
    assert nack.missing == {105, 106, 108, 109}  # what the next report asks for once more
    # A jump far ahead asks for the window only, never thousands of numbers.
    top = nack.max_seq
    assert nack_add(nack, RtpPacket(sequence_number=30000)) and top is not None
    assert len(revealed(nack, top, 30000)) == 128 and len(nack.missing) == 128
