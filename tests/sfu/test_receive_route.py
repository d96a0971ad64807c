"""The compiled receive route (#14): a steady video stream's packets go from datagram to subscribers in one C call
(unprotect, parse, receive statistics, the packet ring, the batched fan-out).

Over real aiortc peers and a real server, two publishers send the same packets: alice's stream takes the route,
carol's connection was made in the "python" receive mode (the inline path without the route). Bob, a subscriber
of both, must get the same packets from both; the server's statistics of both streams must agree through a gap
(a loss, which only Python handles, and the route after it); NACKs are answered from the ring the route fills;
sender reports count what bob got; a mute hands the stream back to Python and the route comes back after."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sfu.aiortc_seams import (
    ForwardingReceiver,
    GatheringConnection,
    InlineReceive,
    ReceiveRoute,
    drain_built,
    set_receive_mode,
)
from sfu.publication import Publication
from sfu.rtp import RtpPacket
from sfu.selection import GATE_IN, GATE_OUT
from signaling.appkeys import ROOMS
from tests.conftest import RunningServer
from loadtest.peers import PacketSubscriberPeer, PacketWriter
from signaling.client import SignalingClient
from tests.sfu.peers import Participant, drained_datagrams, join, make_packet, wait_until
from tests.sfu.test_fast_path import RTX, VP8, publish_simulcast_and_audio, sender_counts_reach, tap


@pytest.fixture(autouse=True)
def default_receive_mode() -> Iterator[None]:
    yield
    set_receive_mode("inline")


def publication_of(server: RunningServer, participant: Participant, kind: str) -> Publication:
    return next(pub for room in server.app[ROOMS].all() for pub in room.publications()
                if pub.participant_id == participant.id and pub.kind == kind)


async def routed_and_python(server: RunningServer, room: str, track: tuple[str, str, str], mode: str = "inline"
                            ) -> tuple[list[Participant], list[PacketWriter], list[Publication]]:
    """alice, carol and bob in `room`; alice publishes `track` over a routed connection (made in `mode`: "inline"
    drains its socket in C, "route" enters the route once per datagram), carol over one made in the "python"
    receive mode; bob subscribes to both. Returns the participants, the two writers and the two publications
    (alice's first)."""
    people = [await join(server.url, room, await server.token(room, name)) for name in ("alice", "carol", "bob")]
    alice, carol, bob = people
    try:
        set_receive_mode(mode)
        (routed,) = await alice.publish(track)
        set_receive_mode("python")  # the server's connection for carol's publisher is made now
        (python,) = await carol.publish(track)
        publications = [publication_of(server, alice, track[0]), publication_of(server, carol, track[0])]
        await wait_until(lambda: inline_of(receiver_of(publications[1])) is not None, 5)
        set_receive_mode("inline")
        assert inline_of(receiver_of(publications[0])).routed and not inline_of(receiver_of(publications[1])).routed
        await wait_until(lambda: len(bob.client.tracks_by_mid) == 2, 10)
        await wait_until(lambda: bob.subscriber.pc.connectionState == "connected", 10)
    except BaseException:
        for participant in people:
            await participant.close()
        raise
    return people, [routed, python], publications


def receiver_of(publication: Publication) -> ForwardingReceiver:
    receiver: ForwardingReceiver = publication._up._receiver
    return receiver


def inline_of(receiver: ForwardingReceiver) -> InlineReceive:
    connection = receiver.transport.transport._connection
    assert isinstance(connection, GatheringConnection) and connection.inline is not None
    return connection.inline


def drained(publication: Publication) -> int:
    """Datagrams of the publisher's connection that its sockets' drain handled without entering Python."""
    return drained_datagrams(receiver_of(publication).transport.transport._connection)


def route_of(publication: Publication) -> ReceiveRoute | None:
    routes = list(receiver_of(publication).routes.values())
    return routes[0] if routes else None


def by_ssrc(packets: list[bytes]) -> dict[int, list[RtpPacket]]:
    streams: dict[int, list[RtpPacket]] = {}
    for data in packets:
        packet = RtpPacket.parse(data)
        streams.setdefault(packet.ssrc, []).append(packet)
    return streams


@pytest.mark.parametrize("mode", ["inline", "route"])
async def test_a_routed_stream_and_a_python_stream_deliver_the_same(server: RunningServer, mode: str) -> None:
    assert drain_built(), "the compiled module predates the socket drain: python -m sfu.fastpath_build"
    people, (routed, python), (alice_video, carol_video) = await routed_and_python(
        server, f"route-{mode}", ("video", "video/VP8", "camera"), mode)
    bob = people[2]
    try:
        plaintext = tap(bob)
        seq = 65300  # both streams wrap during the run

        async def stream(count: int, lost: int = 0) -> None:
            nonlocal seq
            for k in range(count):
                if k < count - lost:  # the last `lost` numbers are never sent: a gap the next packet reveals
                    payload = bytes([0x10, 0x00 if seq % 30 == 0 else 0x01]) + os.urandom(400 + seq % 300)
                    for writer in (routed, python):
                        writer.write(make_packet(seq, 3000 * seq % (1 << 32), payload, marker=seq % 3 == 0))
                seq = (seq + 1) % 65536
                await asyncio.sleep(0.004)

        await stream(300, lost=3)
        await stream(200)
        await asyncio.sleep(0.3)
        route = route_of(alice_video)
        assert route is not None and route_of(carol_video) is None
        # The route carried most of alice's stream (not the first packets, the gap, nor a keyframe wait's); with
        # the drain, those packets never entered Python (bob is in the batch: nobody needs them from Python).
        assert int(route.c.packets) > 400
        assert drained(alice_video) > 400 if mode == "inline" else drained(alice_video) == 0
        assert drained(carol_video) == 0

        # Bob got the same packets from both: payloads, markers, payload types; sequence numbers continuous.
        streams = list(by_ssrc([d for d in plaintext if RtpPacket.parse(d).payload_type != RTX]).values())
        assert len(streams) == 2
        first, second = ({p.payload: p for p in s} for s in streams)
        assert set(first) == set(second) and len(first) > 450
        for payload, packet in first.items():
            other = second[payload]
            assert (packet.marker, packet.payload_type) == (other.marker, other.payload_type)
        for packets in streams:
            assert {(b.sequence_number - a.sequence_number) % 65536 for a, b in zip(packets, packets[1:])} <= {1, 4}

        # The server's statistics of both upstreams agree: packets, the highest number across the wrap, the loss.
        blocks = [receiver_of(pub).report_blocks() for pub in (alice_video, carol_video)]
        assert [(b[0].highest_sequence, b[0].packets_lost) for b in blocks[:1]] == \
            [(b[0].highest_sequence, b[0].packets_lost) for b in blocks[1:]]
        assert blocks[0][0].packets_lost == 3
        wrapped = [next(iter(receiver_of(pub)._streams.values())) for pub in (alice_video, carol_video)]
        assert [(stats.cycles, stats.packets_received) for stats in wrapped] == [(1 << 16, 497)] * 2
        alice_video.fold_routed()
        assert [(pub.packets, receiver_of(pub).packets) for pub in (alice_video, carol_video)] == \
            [(carol_video.packets, receiver_of(carol_video).packets)] * 2

        # A NACK for a routed packet is answered from the ring the route fills, over RTX.
        mid = next(m for m, carried in bob.client.tracks_by_mid.items() if alice_video.id in str(carried))
        target = bob.received[mid][-20]
        before = len(plaintext)
        bob.subscriber.send_nack(mid, [target.sequence_number])
        await wait_until(lambda: any(RtpPacket.parse(d).payload_type == RTX for d in plaintext[before:]), 5)
        rtx = next(RtpPacket.parse(d) for d in plaintext[before:] if RtpPacket.parse(d).payload_type == RTX)
        assert rtx.payload[2:] == target.payload

        # Sender reports count exactly what bob got on each media SSRC.
        for m in bob.received:
            ssrc = bob.received[m][-1].ssrc
            media = by_ssrc(plaintext)[ssrc]
            want = (len(media), sum(len(p.payload) for p in media))
            assert await sender_counts_reach(bob, m, want) == want

        # A mute hands alice's stream back to Python (which drops it: muted); unmuted, the route comes back.
        alice_video.set_muted(True)
        handled = int(route.c.packets)
        await stream(30)
        assert route_of(alice_video) is None and int(route.c.packets) == handled
        alice_video.set_muted(False)
        await stream(100)
        again = route_of(alice_video)
        assert again is not None and again is not route and int(again.c.packets) > 50
    finally:
        for participant in people:
            await participant.close()


async def test_a_routed_audio_stream_keeps_levels_and_speakers_as_python_does(server: RunningServer) -> None:
    """Audio takes the route too while the room has no loudest-speakers gate: the audio level reaches subscribers
    and the speaker detector's counts (levels heard, voiced packets, loudness) are what Python counts."""
    people, (routed, python), (alice_audio, carol_audio) = await routed_and_python(
        server, "route-audio", ("audio", "audio/opus", "microphone"))
    bob = people[2]
    try:
        plaintext = tap(bob)
        # The room's speaker detector reads and resets the counts every 0.3 s: this test reads them itself.
        [meeting] = [r for r in server.app[ROOMS].all() if alice_audio in r.publications()]
        meeting._speaker_interval = 3600.0
        await asyncio.sleep(0.5)  # its current sleep ends; the next one outlasts the test
        for pub in (alice_audio, carol_audio):
            pub.fold_routed()
            pub.heard = pub.voiced = pub.loudness = 0  # as the detector does
        for seq in range(65450, 65450 + 200):
            payload = bytes([0x78]) + os.urandom(60 + seq % 40)
            for writer in (routed, python):
                writer.write(make_packet(seq % 65536, 960 * seq, payload, audio_level=(seq * 7) % 127))
            await asyncio.sleep(0.004)
        await asyncio.sleep(0.3)
        route = route_of(alice_audio)
        assert route is not None and route_of(carol_audio) is None and int(route.c.packets) > 150
        for pub in (alice_audio, carol_audio):
            pub.fold_routed()
        assert (alice_audio.heard, alice_audio.voiced, alice_audio.loudness) == \
            (carol_audio.heard, carol_audio.voiced, carol_audio.loudness)
        assert alice_audio.heard >= 199 and 0 < alice_audio.voiced < alice_audio.heard
        # Bob got the same payloads with the same levels from both.
        extensions = bob_extensions(bob)
        levels: dict[int, dict[bytes, object]] = {}
        for data in plaintext:
            packet = RtpPacket.parse(data, extensions)
            levels.setdefault(packet.ssrc, {})[packet.payload] = packet.extensions.audio_level
        assert len(levels) == 2
        first, second = levels.values()
        assert first == second and len(first) >= 199 and all(level is not None for level in first.values())
        stats = [next(iter(receiver_of(pub)._streams.values())) for pub in (alice_audio, carol_audio)]
        assert stats[0].cycles == stats[1].cycles == 1 << 16
        assert stats[0].packets_received == stats[1].packets_received
    finally:
        for participant in people:
            await participant.close()


def bob_extensions(bob: Participant) -> Any:
    """The header-extension map of bob's subscriber connection (to read the audio level of what he got)."""
    from sfu.aiortc_seams import connection_transport

    transport = connection_transport(bob.subscriber.pc)
    assert transport is not None
    return transport._rtp_header_extensions_map


async def test_a_gated_voice_takes_the_route_and_keeps_its_place_while_it_speaks(server: RunningServer) -> None:
    """In a room with the loudest-speakers gate, a voice let in is forwarded in C, which times its voices: the gate
    reads that time when another voice asks for the place, so a voice that keeps speaking keeps it though no packet
    of it reaches Python. Once it falls silent, the other takes the place after the hold; the silent one's packets
    are still counted in C and reach nobody. (Here the gate has one place and two voices: alice's stream takes the
    route, carol's connection has none.)"""
    people, (routed, python), (alice_audio, carol_audio) = await routed_and_python(
        server, "route-gate", ("audio", "audio/opus", "microphone"))
    bob = people[2]
    try:
        [meeting] = [r for r in server.app[ROOMS].all() if alice_audio in r.publications()]
        meeting.audio_gate.max_open = 1
        meeting._update_audio_gate()  # two voices for one place: gated, nobody in yet
        assert alice_audio.gate() == carol_audio.gate() == GATE_OUT
        plaintext = tap(bob)
        seq = [0, 0]

        async def talk(alice_level: int, carol_level: int, seconds: float) -> None:
            for _ in range(int(seconds / 0.02)):
                for n, (writer, tag, level) in enumerate(((routed, b"A", alice_level), (python, b"C", carol_level))):
                    payload = bytes([0x78]) + tag + seq[n].to_bytes(4, "big") + os.urandom(40)
                    writer.write(make_packet(seq[n], 960 * seq[n], payload, audio_level=level))
                    seq[n] += 1
                await asyncio.sleep(0.02)

        def heard(since: int) -> list[bytes]:
            return [RtpPacket.parse(data).payload[1:2] for data in plaintext[since:]]

        await talk(20, 127, 0.6)  # alice speaks first: she is let in
        await wait_until(lambda: b"A" in heard(0), 5)
        assert alice_audio.gate() == GATE_IN and carol_audio.gate() == GATE_OUT
        route = route_of(alice_audio)
        assert route is not None and route_of(carol_audio) is None
        forwarded_in_c = int(route.c.packets)
        # Both speak, longer than the hold: carol asks for the place at each packet, alice keeps it. Her packets
        # don't enter Python; her last voice is the one C timed.
        mark = len(plaintext)
        await talk(20, 20, 2.0)
        assert set(heard(mark)) == {b"A"} and len(heard(mark)) > 60
        assert int(route.c.packets) - forwarded_in_c > 60 and route_of(alice_audio) is route
        assert 0 < time.monotonic() - float(route.c.voiced_at) < 0.5
        # Alice falls silent: after the hold, carol takes the place; alice's silence is counted in C, not sent.
        await talk(127, 20, 2.0)
        assert alice_audio.gate() == GATE_OUT and carol_audio.gate() == GATE_IN
        mark, counted = len(plaintext), int(route.c.packets)
        await talk(127, 20, 0.6)
        assert set(heard(mark)) == {b"C"}
        assert int(route.c.packets) - counted >= 25 and route_of(alice_audio) is route
    finally:
        for participant in people:
            await participant.close()


async def test_a_subscriber_still_connecting_leaves_the_stream_to_the_route(server: RunningServer) -> None:
    """While a newcomer's subscriber connection is not up, its subscription sends nothing, so it must not bring the
    stream's packets back to Python (a hundred joining would keep the room's most seen cameras there). Once it is
    up, it gets the stream from a keyframe."""
    assert drain_built(), "the compiled module predates the socket drain: python -m sfu.fastpath_build"
    room = "route-connecting"
    alice, bob = [await join(server.url, room, await server.token(room, name)) for name in ("alice", "bob")]
    answer_now = asyncio.Event()
    carol_got: list[RtpPacket] = []
    carol_subscriber = PacketSubscriberPeer(lambda mid, packet: carol_got.append(packet))

    async def answer_later(sdp: str, tracks: dict[str, Any]) -> str:
        await answer_now.wait()
        return await carol_subscriber.answer(sdp)

    carol = SignalingClient(server.url, room, await server.token(room, "carol"), on_offer=answer_later)
    try:
        (writer,) = await alice.publish(("video", "video/VP8", "camera"))
        video = publication_of(server, alice, "video")
        seq = 0

        async def stream(count: int) -> None:
            nonlocal seq
            for _ in range(count):
                payload = bytes([0x10, 0x00 if seq % 25 == 0 else 0x01]) + os.urandom(300)
                writer.write(make_packet(seq, 3000 * seq, payload, marker=True))
                seq += 1
                await asyncio.sleep(0.005)

        await wait_until(lambda: bob.subscriber.pc.connectionState == "connected", 10)
        await stream(150)
        assert route_of(video) is not None and video.one_by_one(0) == ()  # bob is in the batch

        await carol.connect()
        await wait_until(lambda: len(video.receivers) == 2, 5)
        waiting = next(s for s in video.receivers if s.subscriber_id == carol.joined["participant"]["id"])
        before = drained(video)
        await stream(150)
        # Carol's subscription is active but her connection is not up: the route keeps the stream in C.
        assert not waiting.ready and video.one_by_one(0) == ()
        assert route_of(video) is not None and drained(video) - before > 100
        assert not carol_got

        answer_now.set()
        await wait_until(lambda: waiting.ready, 10)
        await stream(150)
        await wait_until(lambda: len(carol_got) > 50, 5)
        assert carol_got[0].payload[1] == 0x00  # her first packet starts a keyframe
        assert route_of(video) is not None and video.one_by_one(0) == ()  # and she is in the batch now
    finally:
        await carol.close()
        await carol_subscriber.close()
        for participant in (alice, bob):
            await participant.close()


def video_packets(plaintext: list[bytes]) -> list[RtpPacket]:
    return [packet for packet in map(RtpPacket.parse, plaintext) if packet.payload_type == VP8]


async def test_a_layer_switch_waits_for_its_keyframe_in_the_batch(server: RunningServer) -> None:
    """A subscriber moved to another layer keeps getting the layer it had from the batch, in C, until the new one's
    keyframe: only that layer's packets come to Python (a speaker change moves a hundred subscribers at once, and each
    used to be forwarded the old layer through Python meanwhile, with every layer's packets parsed for it). At the
    keyframe it switches with no gap and no packet twice, and joins the new layer's batch."""
    assert drain_built(), "the compiled module predates the socket drain: python -m sfu.fastpath_build"
    room = "route-switch"
    alice, bob = [await join(server.url, room, await server.token(room, name)) for name in ("alice", "bob")]
    try:
        writer, _, video_id = await publish_simulcast_and_audio(alice)
        video = publication_of(server, alice, "video")
        await wait_until(lambda: bob.subscriber.pc.connectionState == "connected" and video.receivers, 10)
        (sub,) = video.receivers
        plaintext = tap(bob)
        seq = [0, 0, 0]
        keyframes = {0, 1, 2}  # the layers whose next packet starts a keyframe

        async def stream(count: int) -> None:
            for _ in range(count):
                for layer in range(3):
                    head = bytes([0x10, 0x00 if layer in keyframes else 0x01, layer])
                    writer.write(make_packet(seq[layer], 3000 * seq[layer], head + os.urandom(200), marker=True),
                                 layer=layer)
                    seq[layer] += 1
                keyframes.clear()
                await asyncio.sleep(0.01)

        await stream(60)
        await wait_until(lambda: sub.batch is not None, 5)
        entry = sub.batch
        assert entry is not None and entry.fanout is video.fanout(2) and sub.current == sub.target == 2
        assert all(route is not None for route in receiver_of(video).routes.values())
        assert [video.one_by_one(layer) for layer in range(3)] == [(), (), ()]

        await bob.client.send({"type": "set_subscriptions", "layers": {video_id: "low"}})
        await wait_until(lambda: sub.target == 0, 5)
        before = len(plaintext)
        await stream(60)  # no keyframe of the low layer yet
        # Still the high layer, from the same batch entry; only the low layer's packets come to Python, for it.
        assert sub.batch is entry and sub.current == 2
        assert [video.one_by_one(layer) for layer in range(3)] == [(sub,), (), ()]
        await wait_until(lambda: len(video_packets(plaintext[before:])) >= 55, 5)
        assert {p.payload[2] for p in video_packets(plaintext[before:])} == {2}

        keyframes.add(0)
        await stream(60)
        await wait_until(lambda: sub.batch is not None and sub.batch.fanout is video.fanout(0), 5)
        assert sub.current == sub.target == 0 and [video.one_by_one(layer) for layer in range(3)] == [(), (), ()]
        await asyncio.sleep(0.2)
        packets = video_packets(plaintext)
        layers = [p.payload[2] for p in packets]
        switch = layers.index(0)
        assert set(layers[:switch]) == {2} and set(layers[switch:]) == {0} and len(layers) - switch >= 55
        assert packets[switch].payload[1] == 0x00  # the new layer starts with its keyframe
        assert {(b.sequence_number - a.sequence_number) % 65536 for a, b in zip(packets, packets[1:])} == {1}
    finally:
        for participant in (alice, bob):
            await participant.close()
