"""A counting bot's steady streams take the compiled receive route and its socket's drain (#14): each packet reaches
the bot as a record (sequence number, timestamp, payload size, the payload's stamped tail, marker) instead of a
parsed packet. Over real aiortc peers and a real server, bob counts that way and carol parses every packet in
Python; both subscribe to alice's video and audio, which cross a sequence-number wrap and lose three packets. The
bots must count the same packets, in the same order, with the same latency stamps."""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from typing import Any

from loadtest.histogram import Histogram
from loadtest.peers import CountingTarget, PacketPublisherPeer, PacketSubscriberPeer
from loadtest.stamp import TAIL_SIZE, stamp
from loadtest.track_stats import TrackStats
from sfu.aiortc_seams import GatheringConnection, drain_built, receiver_of
from sfu.rtp import RtpPacket
from signaling.client import SignalingClient
from tests.conftest import RunningServer
from tests.sfu.peers import Participant, drained_datagrams, join, make_packet, wait_until

Counted = tuple[int, int, int, bytes, int]  # seq, timestamp, size, tail, marker


async def counting_bot(server: RunningServer, room: str) -> tuple[Participant, dict[str, list[Counted]]]:
    counted: dict[str, list[Counted]] = defaultdict(list)

    def on_packet(mid: str, packet: RtpPacket) -> None:
        payload = packet.payload
        counted[mid].append((packet.sequence_number, packet.timestamp, len(payload), payload[-TAIL_SIZE:],
                             packet.marker))

    def on_record(mid: str, seq: int, ts: int, size: int, tail: bytes, marker: int, arrival: float) -> None:
        counted[mid].append((seq, ts, size, tail, marker))

    subscriber = PacketSubscriberPeer(on_packet, on_record=on_record)
    token = await server.token(room, "bob")
    client = SignalingClient(server.url, room, token, on_offer=lambda sdp, tracks: subscriber.answer(sdp))
    await client.connect()
    return Participant(client, PacketPublisherPeer(), subscriber), counted


def parsed(packets: list[RtpPacket]) -> list[Counted]:
    return [(p.sequence_number, p.timestamp, len(p.payload), p.payload[-TAIL_SIZE:], p.marker) for p in packets]


def relative(counted: list[Counted]) -> list[tuple[int, int, int, bytes, int]]:
    """Each subscriber's slot has its own sequence and timestamp offsets: compare steps, sizes, tails, markers."""
    return [((b[0] - a[0]) % 65536, (b[1] - a[1]) % (1 << 32), b[2], b[3], b[4]) for a, b in zip(counted, counted[1:])]


def targets_of(participant: Participant) -> list[CountingTarget]:
    out = []
    for transceiver in participant.subscriber.pc.getTransceivers():
        target = receiver_of(transceiver).route_target
        if isinstance(target, CountingTarget):
            out.append(target)
    return out


async def test_a_counting_bot_counts_from_records_what_a_parsing_bot_counts(server: RunningServer) -> None:
    assert drain_built(), "the compiled module predates the socket drain: python -m sfu.fastpath_build"
    room = "counting"
    alice = await join(server.url, room, await server.token(room, "alice"))
    carol = await join(server.url, room, await server.token(room, "carol"))
    bob, counted = await counting_bot(server, room)
    people = [alice, carol, bob]
    try:
        video, audio = await alice.publish(("video", "video/VP8", "camera"), ("audio", "audio/opus", "microphone"))
        for viewer in (bob, carol):
            await wait_until(lambda v=viewer: len(v.client.tracks_by_mid) == 2, 10)  # type: ignore[misc]
            await wait_until(lambda v=viewer: v.subscriber.pc.connectionState == "connected", 10)  # type: ignore[misc]
        seq = 65300  # the streams wrap during the run
        for k in range(500):
            if k not in (200, 201, 202):  # lost upstream: a gap Python handles, then the route again
                now = asyncio.get_running_loop().time()
                vp8 = bytes([0x10, 0x00 if k % 100 == 0 else 0x01]) + os.urandom(300 + k % 400)
                video.write(make_packet(seq, 3000 * k, stamp(vp8, now), marker=k % 3 == 0))
                if k % 2 == 0:  # its own numbers, which wrap too
                    opus = bytes([0x78]) + os.urandom(60 + k % 20)
                    audio.write(make_packet((65400 + k // 2) % 65536, 960 * k, stamp(opus, now)))
            seq = (seq + 1) % 65536
            await asyncio.sleep(0.004)
        await asyncio.sleep(0.5)

        mids = {viewer.id: {str(info["kind"]): mid for mid, info in viewer.client.tracks_by_mid.items()}
                for viewer in (bob, carol)}
        for kind in ("video", "audio"):
            by_bob, by_carol = counted[mids[bob.id][kind]], parsed(carol.received[mids[carol.id][kind]])
            assert len(by_bob) == len(by_carol) > (450 if kind == "video" else 220), kind
            assert relative(by_bob) == relative(by_carol), kind

        # Most of it came as records, through the drain of bob's socket, and no record was lost.
        for transceiver in bob.subscriber.pc.getTransceivers():
            receiver_of(transceiver).report_blocks()  # folds what the routes handled into the targets
        routed = [target.routed_packets for target in targets_of(bob)]
        assert len(routed) == 2 and min(routed) > 200 and sum(routed) > 650, routed
        connection = receiver_of(bob.subscriber.pc.getTransceivers()[0]).transport.transport._connection
        assert isinstance(connection, GatheringConnection) and connection.inline is not None
        assert connection.inline.records_lost == 0
        drained = drained_datagrams(connection)
        assert drained > 600, drained

        # A bot's statistics from the records: every packet a latency sample (its stamp read from the tail).
        stats = TrackStats("t", "p", "video", 0.0, Histogram())
        for seq_, ts, size, tail, marker in counted[mids[bob.id]["video"]]:
            stats.add_counted(seq_, ts, size, tail, marker, asyncio.get_running_loop().time())
        assert (stats.lost, stats.latency.total) == (3, stats.unique)
    finally:
        for participant in people:
            await participant.close()


def test_counted_and_parsed_packets_make_the_same_statistics() -> None:
    payloads = [stamp(bytes([1, 2, 3]) * n, 100.0 + n) for n in range(1, 40)] + [b"\x05"]
    by_packet, by_record = (TrackStats("t", "p", "audio", 0.0, Histogram()) for _ in range(2))
    for i, payload in enumerate(payloads):
        seq = (65530 + i + (i > 20)) % 65536  # a wrap and a gap
        by_packet.add(seq, 960 * i, payload, 0, 101.0 + i)
        by_record.add_counted(seq, 960 * i, len(payload), payload[-TAIL_SIZE:], 0, 101.0 + i)
    fields: Any = ("packets", "bytes", "unique", "lost", "jitter")
    assert [getattr(by_packet, f) for f in fields] == [getattr(by_record, f) for f in fields]
    assert by_packet.latency.total == by_record.latency.total == len(payloads) - 1
    assert by_packet.lost == 1
