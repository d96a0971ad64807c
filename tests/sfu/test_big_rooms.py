"""Big-room policies with real peers: a subscriber's m-lines are slots bounded by last-N and the loudest
few voices; who a slot carries changes by a `tracks` table, on a keyframe, with continuous sequence numbers."""

from __future__ import annotations

import asyncio
from sfu.rtp import RtpPacket
from loadtest.peers import PacketWriter
from tests.conftest import RunningServer
from tests.sfu.peers import Participant, join, make_packet, wait_until

def tagged(payload_head: bytes, index: int, size: int) -> bytes:
    return payload_head + bytes(size) + bytes([index])


def source_of(packet: RtpPacket) -> int:
    return packet.payload[-1]


def is_keyframe(packet: RtpPacket) -> bool:
    return packet.payload[1] & 0x01 == 0


async def stream_video(writers: list[PacketWriter], stop: asyncio.Event, keyframe_every: int = 15) -> None:
    seq = [100] * len(writers)
    i = 0
    while not stop.is_set():
        for n, w in enumerate(writers):
            # Publishers answer keyframe requests: a keyframe right after a PLI, else every N frames.
            key = i % keyframe_every == 0 or w.keyframe_requests > getattr(w, "_answered", 0)
            w._answered = w.keyframe_requests  # type: ignore[attr-defined]
            head = bytes([0x10, 0x00 if key else 0x01])  # VP8 descriptor S=1; P bit clear on a keyframe
            w.write(make_packet(seq[n], 3000 * i, tagged(head, n, 300), marker=True))
            seq[n] += 1
        i += 1
        await asyncio.sleep(0.02)


def slots(p: Participant, kind: str) -> dict[str, str]:
    """subscriber mid -> track id, for the slots of `kind` carrying a track now."""
    return {mid: t["track_id"] for mid, t in p.client.tracks_by_mid.items() if t["kind"] == kind}


def offered_m_lines(p: Participant, kind: str) -> int:
    offers = [m for m in p.client.messages if m.get("type") == "offer"]
    return offers[-1]["sdp"].count(f"m={kind} ") if offers else 0


def continuous(packets: list[RtpPacket]) -> bool:
    return all((b.sequence_number - a.sequence_number) % 65536 == 1 for a, b in zip(packets, packets[1:]))


async def test_last_n_slots_switch_on_a_keyframe_with_continuous_sequence(server: RunningServer) -> None:
    room = "lastn"
    viewer = await join(server.url, room, await server.token(room, "viewer"))
    await viewer.client.send({"type": "set_subscriptions", "max_video": 2})
    publishers = [await join(server.url, room, await server.token(room, f"p{i}")) for i in range(4)]
    stop = asyncio.Event()
    try:
        writers = [(await p.publish(("video", "video/VP8", "camera")))[0] for p in publishers]
        index_of_track: dict[str, int] = {}
        for n, p in enumerate(publishers):
            track = await p.client.wait_for("published")
            index_of_track[track["tracks"][0]["track"]["id"]] = n
        await wait_until(lambda: len(slots(viewer, "video")) == 2, 10)
        # Four cameras, two slots: the connection never grew beyond what last-N lets through.
        assert offered_m_lines(viewer, "video") == 2
        paused = await viewer.client.wait_for(
            "video_paused", lambda m: len(m["track_ids"]) == 2)
        task = asyncio.create_task(stream_video(writers, stop))
        await wait_until(lambda: all(len(viewer.received[mid]) > 10 for mid in slots(viewer, "video")), 5)
        for mid, track_id in slots(viewer, "video").items():
            assert {source_of(p) for p in viewer.received[mid]} == {index_of_track[track_id]}
        # Pin a paused camera: it takes a slot (no renegotiation) and starts there on a keyframe,
        # continuing that slot's sequence numbers.
        offers = viewer.client.count("offer")
        pinned = paused["track_ids"][0]
        await viewer.client.send({"type": "set_subscriptions", "max_video": 2, "pinned": [pinned]})
        await wait_until(lambda: pinned in slots(viewer, "video").values(), 5)
        mid = next(m for m, t in slots(viewer, "video").items() if t == pinned)
        pinned_index = index_of_track[pinned]
        await wait_until(lambda: sum(source_of(p) == pinned_index for p in viewer.received[mid]) > 5, 5)
        packets = viewer.received[mid]
        first = next(i for i, p in enumerate(packets) if source_of(p) == pinned_index)
        assert first > 0 and is_keyframe(packets[first])
        assert {source_of(p) for p in packets[first:]} == {pinned_index}
        assert continuous(packets), [p.sequence_number for p in packets]
        assert viewer.client.count("offer") == offers
        assert offered_m_lines(viewer, "video") == 2
        stop.set()
        await task
    finally:
        stop.set()
        for p in [*publishers, viewer]:
            await p.close()


async def test_joins_do_not_renegotiate_a_subscriber_whose_slots_exist(server: RunningServer) -> None:
    room = "manyjoins"
    viewer = await join(server.url, room, await server.token(room, "viewer"))
    await viewer.client.send({"type": "set_subscriptions", "max_video": 2})
    people: list[Participant] = []
    try:
        for i in range(8):
            person = await join(server.url, room, await server.token(room, f"p{i}"))
            people.append(person)
            await person.publish(("audio", "audio/opus", "microphone"), ("video", "video/VP8", "camera"))
            # Each person received takes a pair, and the viewer receives at most two cameras and the loudest
            # three voices at once: five pairs, made as soon as five people publish, and never more.
            if i == 4:
                await wait_until(lambda: offered_m_lines(viewer, "video") == 5
                                 and offered_m_lines(viewer, "audio") == 5, 10)
                offers = viewer.client.count("offer")
        await wait_until(lambda: len(viewer.client.room_tracks) == 16, 10)
        await asyncio.sleep(0.5)
        assert viewer.client.count("offer") == offers
        assert offered_m_lines(viewer, "video") == 5 and offered_m_lines(viewer, "audio") == 5
        assert len(slots(viewer, "video")) == 2  # nobody speaks here: the gate opens no voice
    finally:
        for p in [*people, viewer]:
            await p.close()


async def test_only_the_loudest_three_are_forwarded(server: RunningServer) -> None:
    room = "loud"
    talkers = [await join(server.url, room, await server.token(room, f"t{i}")) for i in range(5)]
    listener = await join(server.url, room, await server.token(room, "listener"))
    try:
        mics = [(await t.publish(("audio", "audio/opus", "microphone")))[0] for t in talkers]
        track_index: dict[str, int] = {}
        for n, t in enumerate(talkers):
            track_index[(await t.client.wait_for("published"))["tracks"][0]["track"]["id"]] = n
        seq = [0] * 5

        async def talk(levels: list[int], seconds: float) -> None:
            for _ in range(int(seconds / 0.02)):
                for n, mic in enumerate(mics):
                    head = bytes([0x78, 0])
                    mic.write(make_packet(seq[n], seq[n] * 960, tagged(head, n, 60), audio_level=levels[n]))
                    seq[n] += 1
                await asyncio.sleep(0.02)

        def heard_since(counts: dict[str, int]) -> set[int]:
            return {source_of(p) for mid, ps in listener.received.items() for p in ps[counts.get(mid, 0):]}

        # Four talk at once (t0..t3), t4 is silent: only three are heard, over three audio slots.
        await talk([20, 25, 30, 35, 127], 1.5)
        heard = heard_since({})
        assert len(heard) == 3 and 4 not in heard, heard
        assert offered_m_lines(listener, "audio") == 3
        assert sorted(track_index[t] for t in slots(listener, "audio").values()) == sorted(heard)
        silent_one = next(n for n in range(4) if n not in heard)
        # One of the open speakers stops; after the hold time the waiting speaker takes its slot, and
        # the slot's sequence numbers go on without a gap.
        stopper = min(heard)
        stopper_mid = next(m for m, t in slots(listener, "audio").items() if track_index[t] == stopper)
        levels = [20, 25, 30, 35, 127]
        levels[stopper] = 127
        await talk(levels, 2.0)
        assert track_index[slots(listener, "audio")[stopper_mid]] == silent_one
        packets = listener.received[stopper_mid]
        assert [source_of(p) for p in packets][-20:] == [silent_one] * 20
        assert continuous(packets)
        assert offered_m_lines(listener, "audio") == 3
    finally:
        for p in [*talkers, listener]:
            await p.close()




async def test_video_paused_is_sent_at_once_then_at_most_every_quarter_second(server: RunningServer) -> None:
    room = "pausedburst"
    viewer = await join(server.url, room, await server.token(room, "viewer"))
    await viewer.client.send({"type": "set_subscriptions", "max_video": 1})
    people = [await join(server.url, room, await server.token(room, f"p{i}")) for i in range(6)]
    try:
        await people[0].publish(("video", "video/VP8", "camera"))
        await people[1].publish(("video", "video/VP8", "camera"))
        first = await viewer.client.wait_for("video_paused", lambda m: len(m["track_ids"]) == 1)
        # Four cameras at once: four changes of the viewer's paused set, told in at most two messages.
        await asyncio.gather(*(p.publish(("video", "video/VP8", "camera")) for p in people[2:]))
        last = await viewer.client.wait_for("video_paused", lambda m: len(m["track_ids"]) == 5)
        assert set(first["track_ids"]) < set(last["track_ids"])
        await asyncio.sleep(0.5)
        assert 2 <= viewer.client.count("video_paused") <= 3
        assert [m for m in viewer.client.messages if m.get("type") == "video_paused"][-1] == last
    finally:
        for p in [*people, viewer]:
            await p.close()
