"""The inline receive path (#14): once a connection's DTLS transport is up, its SRTP and SRTCP datagrams are
handled where they arrive instead of through aiortc's queue and receive task. Over real aiortc peers and a real
server: packets arrive in order and complete on both receive paths, the transport's statistics stay true, NACKs
(RTCP) are still answered, a frame's packets are read in one wake-up, and datagrams a stranger sends to the media
port end nothing."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator

import pytest

from sfu.aiortc_seams import (
    GatheringConnection,
    InlineReceive,
    check_seams,
    connection_transport,
    set_receive_mode,
)
from tests.conftest import RunningServer
from tests.sfu.peers import Participant, join, make_packet, wait_until


@pytest.fixture(autouse=True)
def default_receive_mode() -> Iterator[None]:
    yield
    set_receive_mode("inline")


def inline_of(participant: Participant, side: str) -> InlineReceive | None:
    pc = participant.publisher.pc if side == "publisher" else participant.subscriber.pc
    transport = connection_transport(pc)
    assert transport is not None
    connection = transport.transport._connection
    assert isinstance(connection, GatheringConnection)
    return connection.inline


def server_address(participant: Participant) -> tuple[str, int]:
    """Where the server's connection for this participant's publisher receives: its nominated pair's far end."""
    transport = connection_transport(participant.publisher.pc)
    assert transport is not None
    pair = transport.transport._connection._nominated[1]
    address: tuple[str, int] = pair.remote_addr
    return address


async def stream_and_collect(server: RunningServer, room: str, mode: str, count: int,
                             strangers: list[bytes] | None = None, frame: int = 1
                             ) -> tuple[list[int], Participant, Participant]:
    """alice sends `count` video packets, in frames of `frame` full-size packets sent back to back (a stranger's
    datagrams to the server's port in the middle); returns the upstream sequence numbers bob got, in arrival
    order."""
    set_receive_mode(mode)  # taken by every transport that connects from now on: the server's and the peers'
    alice = await join(server.url, room, await server.token(room, "alice"))
    bob = await join(server.url, room, await server.token(room, "bob"))
    (video,) = await alice.publish(("video", "video/VP8", "camera"))
    await wait_until(lambda: len(bob.client.tracks_by_mid) == 1, 10)
    await wait_until(lambda: bob.subscriber.pc.connectionState == "connected", 10)
    mid = next(iter(bob.client.tracks_by_mid))
    for i in range(count):
        first, last = i % frame == 0, (i + 1) % frame == 0
        key = first and i % 40 == 0
        descriptor = bytes([0x10 if first else 0x00, 0x00 if key else 0x01, i % 256])
        video.write(make_packet(1000 + i, 3000 * (i // frame), descriptor + os.urandom(400 if frame == 1 else 1000),
                                marker=last))
        if strangers and i == count // 2:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for datagram in strangers:
                    sock.sendto(datagram, server_address(alice))
        if last:
            await asyncio.sleep(0.004)
    await wait_until(lambda: len(bob.received[mid]) >= count - 5, 10)
    await asyncio.sleep(0.2)
    return [p.payload[2] for p in bob.received[mid]], alice, bob


def out_of_order(got: list[int]) -> int:
    """Steps between consecutive packets that are not +1 (a swapped pair makes two)."""
    return sum(1 for a, b in zip(got, got[1:]) if (b - a) % 256 != 1)


@pytest.mark.parametrize("mode", ["inline", "queue"])
async def test_both_receive_paths_deliver_every_packet_in_order(server: RunningServer, mode: str) -> None:
    alice = bob = None
    try:
        got, alice, bob = await stream_and_collect(server, f"inline-{mode}", mode, 300)
        # Every packet (the first may wait for the keyframe), in the order sent. Loopback itself may swap two
        # neighbours about once in 66,000 packets (see test_fast_path): one swap is the network's, not ours.
        assert len(got) >= 295
        assert out_of_order(got) <= 2
        inline = inline_of(alice, "publisher")
        if mode == "inline":
            assert inline is not None and inline.started  # the server's side as the peers': the path was used
            assert inline_of(bob, "subscriber") is not None
        else:
            assert inline is None
        # aiortc's transport statistics count what arrived, on either path.
        transport = connection_transport(bob.subscriber.pc)
        assert transport is not None
        [stats] = [s for s in transport._get_stats().values() if s.type == "transport"]
        assert stats.packetsReceived >= len(got) and stats.bytesReceived > 400 * len(got)
    finally:
        for participant in (alice, bob):
            if participant is not None:
                await participant.close()


@pytest.mark.parametrize("mode", ["inline", "single"])
async def test_a_frames_packets_are_read_in_one_wake_up(server: RunningServer, mode: str) -> None:
    """A frame's packets arrive back to back; inline, those queued behind a packet that is mid-frame (marker
    clear) are read in the same wake-up, on the server and at bob's. "single" reads one per wake-up."""
    alice = bob = None
    try:
        got, alice, bob = await stream_and_collect(server, f"burst-{mode}", mode, 300, frame=5)
        assert len(got) >= 295 and out_of_order(got) <= 2
        inline = inline_of(bob, "subscriber")
        assert inline is not None and inline.started
        if mode == "inline":
            # Four of each frame's five packets wait behind the first at bob's socket: the server read alice's
            # burst in one wake-up and forwarded it before bob's socket was read (one event loop here).
            assert inline.queued_reads >= 300 // 2
        else:
            assert inline.queued_reads == 0
    finally:
        for participant in (alice, bob):
            if participant is not None:
                await participant.close()


async def test_a_strangers_datagrams_end_nothing(server: RunningServer) -> None:
    """An empty datagram used to end aiortc's receive loop (it reads data[0]), and with it the connection; forged
    SRTP and SRTCP fail authentication and are dropped."""
    alice = bob = None
    forged_rtp = bytes([0x80, 0x60]) + os.urandom(60)
    forged_rtcp = bytes([0x80, 0xC8]) + os.urandom(40)
    try:
        got, alice, bob = await stream_and_collect(server, "strangers", "inline", 200,
                                                   strangers=[b"", forged_rtp, forged_rtcp, b"\x17" + os.urandom(30)])
        assert len(got) >= 195 and out_of_order(got) <= 2
        transport = connection_transport(alice.publisher.pc)
        assert transport is not None and transport.state == "connected"
        assert alice.publisher.pc.connectionState == "connected"
    finally:
        for participant in (alice, bob):
            if participant is not None:
                await participant.close()


def test_the_seam_check_covers_the_inline_path() -> None:
    assert check_seams() == []
