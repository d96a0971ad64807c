"""The socket drain (convene_drain, #14) hands back what is not an open route's exactly as asyncio's own read would:
the datagram's bytes and its sender's address as Python's socket module gives it (aioice matches STUN requests
and consent checks by that address, so a wrong one would end a connection after its consent timeout)."""

from __future__ import annotations

import socket
import sys
from typing import Any

import pytest

from sfu.aiortc_seams import (
    DRAIN_DATAGRAM,
    DRAIN_EMPTY,
    DRAIN_RAW,
    DRAIN_SPENT,
    compiled_send,
    drain_buffer,
    drain_built,
    sender_address,
)

pytestmark = pytest.mark.skipif(not drain_built(), reason="the compiled module is not built")


def drain_of(sock: socket.socket, budget: int, raw: Any = None) -> tuple[Any, Any, Any]:
    """A drain of `sock` with no route, reading into `raw` (default: a buffer of its own)."""
    compiled = compiled_send()
    assert compiled is not None
    ffi, lib, _protect = compiled
    if raw is None:
        raw = ffi.new("unsigned char[]", DRAIN_DATAGRAM)
    c = ffi.new("struct convene_drain *")
    c.fd, c.raw, c.budget = sock.fileno(), raw, budget
    c.routes = routes = ffi.new("struct convene_routes *")  # no route: every datagram comes back
    return c, (raw, routes), lib


def pair(family: int, host: str) -> tuple[socket.socket, socket.socket]:
    receiver = socket.socket(family, socket.SOCK_DGRAM)
    sender = socket.socket(family, socket.SOCK_DGRAM)
    receiver.bind((host, 0))
    sender.bind((host, 0))
    receiver.setblocking(False)
    return receiver, sender


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_what_no_route_takes_comes_back_with_its_sender(family: int, host: str) -> None:
    try:
        receiver, sender = pair(family, host)
    except OSError as exc:  # a machine without IPv6 loopback
        pytest.skip(f"no {host}: {exc}")
    with receiver, sender:
        # A STUN-like datagram, an SRTP-looking one (no route has its SSRC), a large one and an empty one.
        datagrams = [b"\x00\x01" + bytes(18), b"\x90\x60" + bytes(30), bytes(range(256)) * 200, b""]
        for data in datagrams:
            sender.sendto(data, receiver.getsockname())
        c, keep, lib = drain_of(receiver, budget=10)
        ffi = compiled_send()[0]  # type: ignore[index]
        for data in datagrams:
            assert lib.convene_drain(c) == DRAIN_RAW
            assert bytes(ffi.buffer(c.raw, c.raw_len)) == data
            sent_from = bytes(ffi.buffer(c.addr, c.addrlen))
            assert sender_address(int.from_bytes(sent_from[:2], sys.byteorder), sent_from) == sender.getsockname()
        assert lib.convene_drain(c) == DRAIN_EMPTY
        assert (c.reads, c.handled, c.rx_packets) == (len(datagrams), 0, 0)


def test_a_wake_ups_budget_bounds_the_reads() -> None:
    receiver, sender = pair(socket.AF_INET, "127.0.0.1")
    with receiver, sender:
        for _ in range(3):
            sender.sendto(b"\x00" * 20, receiver.getsockname())
        c, keep, lib = drain_of(receiver, budget=2)
        assert lib.convene_drain(c) == DRAIN_RAW and lib.convene_drain(c) == DRAIN_RAW
        assert lib.convene_drain(c) == DRAIN_SPENT  # the third waits for the next wake-up
        c.budget = 1
        assert lib.convene_drain(c) == DRAIN_RAW and c.reads == 3


async def test_the_drains_of_one_event_loop_share_one_buffer() -> None:
    """One 64 KiB buffer per event loop, not per socket: each datagram is copied out before the next call."""
    compiled = compiled_send()
    assert compiled is not None
    ffi, lib, _protect = compiled
    raw = drain_buffer(ffi)
    assert drain_buffer(ffi) is raw
    (a, a_sender), (b, b_sender) = pair(socket.AF_INET, "127.0.0.1"), pair(socket.AF_INET, "127.0.0.1")
    with a, a_sender, b, b_sender:
        drains = [drain_of(sock, budget=10, raw=raw) for sock in (a, b)]
        for i in range(3):
            a_sender.sendto(b"a" * (100 + i), a.getsockname())
            b_sender.sendto(b"b" * (2000 - i), b.getsockname())
        got: dict[str, list[bytes]] = {"a": [], "b": []}
        for _ in range(3):
            for name, (c, _keep, _lib) in zip("ab", drains):
                assert lib.convene_drain(c) == DRAIN_RAW
                got[name].append(bytes(ffi.buffer(c.raw, c.raw_len)))
        assert got == {"a": [b"a" * (100 + i) for i in range(3)], "b": [b"b" * (2000 - i) for i in range(3)]}
