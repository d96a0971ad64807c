"""Packet forwarding through a real server between real aiortc peers on 127.0.0.1."""

from __future__ import annotations

import asyncio

from sfu.aiortc_seams import check_seams
from tests.conftest import RunningServer
from tests.sfu.peers import join, make_packet, opus_payload, vp8_payload, wait_until


def test_aiortc_seams_are_where_we_expect() -> None:
    # Fails loudly when an aiortc upgrade moves a private hook sfu/aiortc_seams.py relies on.
    assert check_seams() == []


async def test_packets_arrive_bit_identical_with_rewritten_headers(server: RunningServer) -> None:
    alice = await join(server.url, "fwd", await server.token("fwd", "alice"))
    bob = await join(server.url, "fwd", await server.token("fwd", "bob"))
    try:
        video, audio = await alice.publish(("video", "video/VP8", "camera"), ("audio", "audio/opus", "microphone"))
        await wait_until(lambda: len(bob.client.tracks_by_mid) == 2, 10)
        sent_video: list[bytes] = []
        sent_audio: list[bytes] = []
        seq_v, seq_a = 1000, 50000
        # Keep sending until bob's subscriber connection is up and the keyframe got through.
        for i in range(400):
            payload = vp8_payload(keyframe=(i % 50 == 0))
            video.write(make_packet(seq_v, 3000 * i, payload, marker=True))
            sent_video.append(payload)
            seq_v += 1
            apayload = opus_payload()
            audio.write(make_packet(seq_a, 960 * i, apayload, audio_level=20))
            sent_audio.append(apayload)
            seq_a = (seq_a + 1) % 65536
            await asyncio.sleep(0.01)
            if i > 150 and sum(len(v) for v in bob.received.values()) > 150:
                break
        mids = {t["kind"]: mid for mid, t in bob.client.tracks_by_mid.items()}
        got_video = bob.received[mids["video"]]
        got_audio = bob.received[mids["audio"]]
        assert len(got_video) > 20 and len(got_audio) > 20
        # Payloads are untouched: every received payload is one that was sent, in order.
        assert all(p.payload in sent_video for p in got_video)
        assert all(p.payload in sent_audio for p in got_audio)
        indexes = [sent_video.index(p.payload) for p in got_video]
        assert indexes == sorted(indexes)
        # The video starts on a keyframe (bit 0 of the VP8 header clear).
        assert got_video[0].payload[1] & 0x01 == 0
        # Headers are rewritten: the subscriber's own SSRC and negotiated PT, continuous sequence numbers.
        assert {p.ssrc for p in got_video} != {video.ssrc}
        assert len({p.ssrc for p in got_video}) == 1
        seqs = [p.sequence_number for p in got_video]
        assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:]))
        ts = [p.timestamp for p in got_video]
        assert all((b - a) % (1 << 32) == 3000 * (ib - ia) for a, b, ia, ib in zip(ts, ts[1:], indexes, indexes[1:]))
        # The audio level extension is handed on.
        assert got_audio[-1].extensions.audio_level == (True, 20)
        # RTCP flows both ways from the connections' single timers: the server's receiver reports
        # reach alice's senders, the server's sender reports reach bob's receivers.
        for _ in range(150):
            video.write(make_packet(seq_v, 3000 * (400 + _), vp8_payload(keyframe=False), marker=True))
            seq_v += 1
            await asyncio.sleep(0.02)
            alice_stats = await video.sender.getStats()
            bob_receivers = [t.receiver for t in bob.subscriber.pc.getTransceivers()]
            bob_stats = [s for r in bob_receivers for s in (await r.getStats()).values()]
            if (any(s.type == "remote-inbound-rtp" for s in alice_stats.values())
                    and any(s.type == "remote-outbound-rtp" for s in bob_stats)):
                break
        else:
            raise AssertionError("no RTCP reports seen within 3 s")
    finally:
        await alice.close()
        await bob.close()


async def test_pli_reaches_publisher_and_nack_is_answered_from_cache(server: RunningServer) -> None:
    alice = await join(server.url, "fb", await server.token("fb", "alice"))
    bob = await join(server.url, "fb", await server.token("fb", "bob"))
    try:
        (video,) = await alice.publish(("video", "video/VP8", "camera"))
        await wait_until(lambda: len(bob.client.tracks_by_mid) == 1, 10)
        mid = next(iter(bob.client.tracks_by_mid))
        seq = 7
        for i in range(300):
            video.write(make_packet(seq, 3000 * i, vp8_payload(keyframe=(i % 30 == 0)), marker=True))
            seq += 1
            await asyncio.sleep(0.01)
            if len(bob.received[mid]) > 30:
                break
        assert len(bob.received[mid]) > 30
        # PLI from the subscriber becomes a keyframe request at the publisher.
        await asyncio.sleep(0.6)  # past the per-track throttle of the subscribe-time request
        before = video.keyframe_requests
        assert bob.subscriber.request_keyframe(mid)
        await wait_until(lambda: video.keyframe_requests > before, 5)
        # A NACK for a packet bob already has is answered by the server (not the publisher) via RTX.
        target = bob.received[mid][-10]
        count_before = len(bob.received[mid])
        nacked_upstream = len(video.nacked)
        bob.subscriber.send_nack(mid, [target.sequence_number])
        await wait_until(lambda: any(p.sequence_number == target.sequence_number
                                     for p in bob.received[mid][count_before:]), 5)
        resent = next(p for p in bob.received[mid][count_before:] if p.sequence_number == target.sequence_number)
        assert resent.payload == target.payload
        assert len(video.nacked) == nacked_upstream  # the publisher was not asked
        sub_stats = server.app  # the server counted the retransmission
        assert sub_stats is not None
    finally:
        await alice.close()
        await bob.close()


async def test_third_joiner_gets_every_track_of_two_earlier_publishers(server: RunningServer) -> None:
    # Regression: a first subscriber offer with audio, video, audio, video m-lines. With aiortc's
    # default "balanced" bundling the second video m-line kept a transport that bundling discarded.
    early = [await join(server.url, "three", await server.token("three", name)) for name in ("alice", "bob")]
    writers = [await p.publish(("audio", "audio/opus", "microphone"), ("video", "video/VP8", "camera"))
               for p in early]
    carol = await join(server.url, "three", await server.token("three", "carol"))
    try:
        await wait_until(lambda: len(carol.client.tracks_by_mid) == 4, 10)
        for i in range(300):
            for audio, video in writers:
                video.write(make_packet(i, 3000 * i, vp8_payload(keyframe=(i % 20 == 0)), marker=True))
                audio.write(make_packet(i, 960 * i, opus_payload(), audio_level=40))
            await asyncio.sleep(0.01)
            if all(len(carol.received[mid]) > 10 for mid in carol.client.tracks_by_mid):
                break
        counts = {t["kind"] + "/" + t["participant_id"]: len(carol.received[mid])
                  for mid, t in carol.client.tracks_by_mid.items()}
        assert all(n > 10 for n in counts.values()), counts
    finally:
        for p in [*early, carol]:
            await p.close()


async def test_reused_m_line_continues_the_stream_of_its_ssrc(server: RunningServer) -> None:
    # A browser discards frames when one SSRC's sequence jumps back: a new track on a reused
    # subscriber m-line must carry on where the previous one stopped.
    alice = await join(server.url, "reuse", await server.token("reuse", "alice"))
    bob = await join(server.url, "reuse", await server.token("reuse", "bob"))
    try:
        async def stream(writer: object, frames: int, base: int) -> None:
            for i in range(frames):
                writer.write(make_packet(base + i, 3000 * (base + i),  # type: ignore[attr-defined]
                                         vp8_payload(keyframe=(i % 10 == 0)), marker=True))
                await asyncio.sleep(0.01)

        (first,) = await alice.publish(("video", "video/VP8", "screen"))
        await wait_until(lambda: len(bob.client.tracks_by_mid) == 1, 10)
        mid = next(iter(bob.client.tracks_by_mid))
        await stream(first, 60, 40000)
        before = list(bob.received[mid])
        assert len(before) > 20
        track_id = bob.client.tracks_by_mid[mid]["track_id"]
        await alice.client.send({"type": "unpublish", "track_id": track_id})
        await wait_until(lambda: bob.client.tracks_by_mid == {}, 5)
        await asyncio.sleep(0.3)  # bob's answer to the offer that idles the m-line
        (second,) = await alice.publish(("video", "video/VP8", "screen"))
        await wait_until(lambda: len(bob.client.tracks_by_mid) == 1, 10)
        assert next(iter(bob.client.tracks_by_mid)) == mid  # the m-line was reused
        await stream(second, 60, 7)
        after = bob.received[mid][len(before):]
        assert len(after) > 20
        assert after[0].ssrc == before[-1].ssrc
        assert (after[0].sequence_number - before[-1].sequence_number) % 65536 == 1
        assert 0 < (after[0].timestamp - before[-1].timestamp) % (1 << 32) < 90000 * 5
    finally:
        await alice.close()
        await bob.close()
