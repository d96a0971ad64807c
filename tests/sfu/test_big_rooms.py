"""Big-room policies with real peers: last-N video with pause/resume on keyframes, loudest-few audio."""

from __future__ import annotations

import asyncio

from sfu.webrtc import PacketWriter
from tests.conftest import RunningServer
from tests.sfu.peers import Participant, join, make_packet, opus_payload, vp8_payload, wait_until


async def stream_video(writers: list[PacketWriter], stop: asyncio.Event, keyframe_every: int = 15) -> None:
    seq = [100] * len(writers)
    i = 0
    while not stop.is_set():
        for n, w in enumerate(writers):
            # Publishers answer keyframe requests: a keyframe right after a PLI, else every N frames.
            key = i % keyframe_every == 0 or w.keyframe_requests > getattr(w, "_answered", 0)
            w._answered = w.keyframe_requests  # type: ignore[attr-defined]
            w.write(make_packet(seq[n], 3000 * i, vp8_payload(key, 300), marker=True))
            seq[n] += 1
        i += 1
        await asyncio.sleep(0.02)


def video_mids(p: Participant) -> dict[str, str]:
    """subscriber mid -> publishing participant id, for the video m-lines in use."""
    return {mid: t["participant_id"] for mid, t in p.client.tracks_by_mid.items() if t["kind"] == "video"}


async def test_last_n_pauses_and_resumes_on_a_keyframe(server: RunningServer) -> None:
    room = "lastn"
    publishers = [await join(server.url, room, server.token(room, f"p{i}")) for i in range(4)]
    viewer = await join(server.url, room, server.token(room, "viewer"))
    stop = asyncio.Event()
    try:
        writers = [(await p.publish(("video", "video/VP8", "camera")))[0] for p in publishers]
        await wait_until(lambda: len(video_mids(viewer)) == 4, 10)
        await viewer.client.send({"type": "set_subscriptions", "max_video": 2})
        paused = await viewer.client.wait_for("video_paused")
        assert len(paused["track_ids"]) == 2
        task = asyncio.create_task(stream_video(writers, stop))
        await asyncio.sleep(1.5)
        counts = {mid: len(viewer.received[mid]) for mid in video_mids(viewer)}
        flowing = [mid for mid, n in counts.items() if n > 0]
        assert len(flowing) == 2, counts
        # Pin a paused one: it resumes, starting on a keyframe; one of the others pauses.
        paused_mid = next(mid for mid, n in counts.items() if n == 0)
        track_id = viewer.client.tracks_by_mid[paused_mid]["track_id"]
        await viewer.client.send({"type": "set_subscriptions", "pinned": [track_id]})
        await wait_until(lambda: len(viewer.received[paused_mid]) > 5, 5)
        assert viewer.received[paused_mid][0].payload[1] & 0x01 == 0  # first packet is a keyframe
        before = {mid: len(viewer.received[mid]) for mid in counts}
        await asyncio.sleep(1.0)
        after = {mid: len(viewer.received[mid]) for mid in counts}
        assert sum(1 for mid in counts if after[mid] > before[mid] + 3) == 2
        assert after[paused_mid] > before[paused_mid]
        stop.set()
        await task
    finally:
        stop.set()
        for p in [*publishers, viewer]:
            await p.close()


async def test_only_the_loudest_three_are_forwarded(server: RunningServer) -> None:
    room = "loud"
    talkers = [await join(server.url, room, server.token(room, f"t{i}")) for i in range(5)]
    listener = await join(server.url, room, server.token(room, "listener"))
    try:
        mics = [(await t.publish(("audio", "audio/opus", "microphone")))[0] for t in talkers]
        await wait_until(lambda: len(listener.client.tracks_by_mid) == 5, 10)
        seq = [0] * 5

        async def talk(levels: list[int], seconds: float) -> None:
            for _ in range(int(seconds / 0.02)):
                for n, mic in enumerate(mics):
                    mic.write(make_packet(seq[n], seq[n] * 960, opus_payload(), audio_level=levels[n]))
                    seq[n] += 1
                await asyncio.sleep(0.02)

        by_participant = {t["participant_id"]: mid for mid, t in listener.client.tracks_by_mid.items()}
        mids = [by_participant[t.id] for t in talkers]
        # Four talk at once (t0..t3), t4 is silent: only three are heard.
        await talk([20, 25, 30, 35, 127], 1.5)
        heard = [n for n, mid in enumerate(mids) if listener.received[mid]]
        assert len(heard) == 3, heard
        assert 4 not in heard
        silent_one = next(n for n in range(4) if n not in heard)
        # One of the open speakers stops; after the hold time the waiting speaker gets its place,
        # and its stream starts without a sequence gap.
        stopper = heard[0]
        levels = [20, 25, 30, 35, 127]
        levels[stopper] = 127
        start = len(listener.received[mids[silent_one]])
        await talk(levels, 2.0)
        newly = listener.received[mids[silent_one]][start:]
        assert len(newly) > 20
        gaps = [(b.sequence_number - a.sequence_number) % 65536 for a, b in zip(newly, newly[1:])]
        assert set(gaps) == {1}
    finally:
        for p in [*talkers, listener]:
            await p.close()
