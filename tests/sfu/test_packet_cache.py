"""The NACK ring of one stream, in Python and in C (once its stream has a compiled receive route): the same
answers, across a sequence-number wrap, evictions, a ring moved into C mid-stream, and payloads of every size."""

from __future__ import annotations

import os

import pytest

from sfu.aiortc_seams import compiled_send, route_built
from sfu.packet_cache import PacketCache
from sfu.rtp import RtpPacket


def packet(seq: int, size: int, padding: int = 0) -> RtpPacket:
    made = RtpPacket(payload_type=96 + seq % 2, marker=seq % 3 == 0, sequence_number=seq,
                     timestamp=(seq * 3000) % (1 << 32), ssrc=1234, payload=os.urandom(size))
    made.padding_size = padding
    return made


def fields(found: RtpPacket | None) -> tuple[object, ...] | None:
    if found is None:
        return None
    return (found.sequence_number, found.payload_type, found.marker, found.timestamp, found.ssrc, found.payload,
            found.padding_size)


@pytest.fixture
def compiled() -> tuple[object, object]:
    built = compiled_send()
    assert built is not None and route_built(), "python -m sfu.fastpath_build"
    return built[0], built[1]


def test_the_c_ring_answers_as_the_python_ring(compiled: tuple[object, object]) -> None:
    ffi, lib = compiled
    python, c, moved = PacketCache(1234), PacketCache(1234), PacketCache(1234)
    c.compile(ffi, lib)
    sizes = [0, 1, 1200, 17, 1400, 300]  # a slot's buffer grows and is reused for smaller payloads
    sent = [packet((65000 + k) % 65536, sizes[k % len(sizes)], padding=4 if k % 50 == 0 else 0) for k in range(1200)]
    for k, made in enumerate(sent):
        for cache in (python, c, moved):
            cache.put(made)
        if k == 700:
            moved.compile(ffi, lib)  # mid-stream: what the Python ring held stays answerable
            assert fields(moved.get(made.sequence_number)) == fields(made)
            assert fields(moved.get(sent[k - 300].sequence_number)) == fields(sent[k - 300])
    for made in sent[-600:]:
        want = fields(python.get(made.sequence_number))
        assert fields(c.get(made.sequence_number)) == want == fields(moved.get(made.sequence_number))
    assert fields(c.get(sent[-1].sequence_number)) == fields(sent[-1])
    evicted = sent[-513].sequence_number  # 512 packets later its slot holds another number
    assert python.get(evicted) is None and c.get(evicted) is None and moved.get(evicted) is None
    assert c.get((sent[-1].sequence_number + 1) % 65536) is None  # never sent
