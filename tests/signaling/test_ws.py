"""Signaling over a real WebSocket: errors on the wire, membership, moderation, speakers."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from signaling.appkeys import ROOMS
from signaling.client import SignalingClient, SignalingError
from tests.conftest import RunningServer, meeting_token
from tests.sfu.peers import join, make_packet, opus_payload, wait_until


async def test_join_errors_close_the_socket_with_a_code(server: RunningServer) -> None:
    cases = [
        ("not-a-token", "invalid_token", 4401),
        (await server.token("other-room", "alice"), "wrong_room", 4403),
    ]
    for token, code, close_code in cases:
        client = SignalingClient(server.url, "lobby", token)
        with pytest.raises(SignalingError) as info:
            await client.connect()
        assert info.value.code == code
        await asyncio.wait_for(client.closed.wait(), 5)
        assert client.close_code == close_code
        await client.close()


async def test_join_with_bad_subscriptions_is_refused_and_the_socket_kept(server: RunningServer) -> None:
    """`subscriptions` in `join` is checked like `set_subscriptions`: a bad value joins nobody, says why,
    and the same socket can then join with good ones (whose last-N the server applies)."""
    client = SignalingClient(server.url, "lobby", await server.token("lobby", "alice"))
    with pytest.raises(SignalingError) as info:
        await client.connect(subscriptions={"max_video": 500})
    assert info.value.code == "invalid_field" and not client.closed.is_set()
    start = len(client.messages)
    await client.send({"type": "join", "token": client.token, "subscriptions": {"max_video": 2}})
    joined = await client.wait_for("joined", error_ok=False, start=start)
    participant = server.app[ROOMS].get("lobby").participants[joined["participant"]["id"]]
    assert participant.video_preferences.max_video == 2
    await client.close()


async def test_expired_token_is_refused(server: RunningServer) -> None:
    from signaling.appkeys import TOKENS
    import time

    token = await meeting_token(server.app, "lobby", "old", ttl_seconds=10, now=time.time() - 60)
    client = SignalingClient(server.url, "lobby", token)
    with pytest.raises(SignalingError) as info:
        await client.connect()
    assert info.value.code == "token_expired"
    await client.close()


async def test_malformed_messages_get_errors_and_keep_the_socket(server: RunningServer) -> None:
    client = SignalingClient(server.url, "lobby", await server.token("lobby", "alice"))
    await client.connect()
    try:
        async def error_for(raw: str) -> str:
            start = len(client.messages)
            await client.send_raw(raw)
            msg = await client.wait_for("error", start=start)
            return str(msg["code"])

        assert await error_for("{nope") == "malformed_json"
        assert await error_for("[1, 2]") == "malformed_json"
        assert await error_for(json.dumps({"type": "teleport"})) == "unknown_message_type"
        assert await error_for(json.dumps({"type": "publish", "sdp": 5, "tracks": []})) == "invalid_field"
        assert await error_for(json.dumps({"type": "publish", "sdp": "v=0\r\ngarbage", "tracks": [
            {"mid": "0", "source": "camera"}]})) == "malformed_sdp"
        assert await error_for(json.dumps({"type": "mute", "track_id": "TR_nope", "muted": True})) == "not_found"
        assert await error_for(json.dumps({"type": "answer", "target": "subscriber", "sdp": "v=0"})) in (
            "invalid_state", "malformed_sdp")
        assert await error_for(json.dumps({"type": "end_room"})) == "missing_grant"
        assert await error_for(json.dumps({"type": "ping", "pad": "x" * 70_000})) == "message_too_large"
        # SDP-carrying messages may be larger (big rooms), up to 1 MiB.
        assert await error_for(json.dumps({"type": "answer", "target": "subscriber", "sdp": "v=0" + "x" * 70_000})) in (
            "invalid_state", "malformed_sdp")
        assert await error_for(json.dumps({"type": "answer", "sdp": "x" * 1_100_000})) == "message_too_large"
        # Still joined and answering.
        reply = await client.request({"type": "ping", "id": 7}, "pong")
        assert reply["id"] == 7
    finally:
        await client.close()


async def test_room_events_are_not_compressed_per_socket(server: RunningServer) -> None:
    """Browsers offer per-message deflate; the server declines it, so a room event is one encoding for all."""
    alice = SignalingClient(server.url, "deflate", await server.token("deflate", "alice"))
    bob = SignalingClient(server.url, "deflate", await server.token("deflate", "bob"))
    await alice.connect()
    try:
        await bob.connect()
        assert alice.compression == bob.compression == 0
        joined = await alice.wait_for("participant_joined")
        assert joined["participant"]["identity"] == "bob"
    finally:
        await bob.close()
        await alice.close()


async def test_flood_is_rate_limited(server: RunningServer) -> None:
    client = SignalingClient(server.url, "lobby", await server.token("lobby", "flood"))
    await client.connect()
    try:
        for i in range(400):
            await client.send({"type": "ping", "id": i})
        await client.wait_for("error", lambda m: m["code"] == "rate_limited")
        limited = [m for m in client.messages if m.get("code") == "rate_limited"]
        assert limited[0]["details"]["retry_after"] > 0
        # Every ping was answered or refused, none lost; the burst (200, less the join) went through.
        await wait_until(lambda: client.count("pong") + len(
            [m for m in client.messages if m.get("code") == "rate_limited"]) == 400, 5)
        assert client.count("pong") >= 195
    finally:
        await client.close()


async def test_viewer_without_publish_grant_cannot_publish(server: RunningServer) -> None:
    viewer = await join(server.url, "talk", await server.token("talk", "viewer", publish=False))
    try:
        with pytest.raises(SignalingError) as info:
            await viewer.publish(("audio", "audio/opus", "microphone"))
        assert info.value.code == "missing_grant"
    finally:
        await viewer.close()
    noscreen = await join(server.url, "talk", await server.token("talk", "ns", screen_share=False))
    try:
        with pytest.raises(SignalingError) as info:
            await noscreen.publish(("video", "video/VP8", "screen"))
        assert info.value.code == "missing_grant"
    finally:
        await noscreen.close()


async def test_leaving_removes_tracks_from_others(server: RunningServer) -> None:
    alice = await join(server.url, "bye", await server.token("bye", "alice"))
    bob = await join(server.url, "bye", await server.token("bye", "bob"))
    try:
        await bob.client.wait_for("participant_joined", timeout=5) if False else None
        await alice.client.wait_for("participant_joined", lambda m: m["participant"]["identity"] == "bob")
        await alice.publish(("audio", "audio/opus", "microphone"), ("video", "video/VP8", "camera"))
        published = await bob.client.wait_for("track_published")
        assert published["participant_id"] == alice.id
        await alice.client.send({"type": "leave"})
        left = await bob.client.wait_for("participant_left")
        assert left["participant_id"] == alice.id
        unpublished = [m for m in bob.client.messages if m["type"] == "track_unpublished"]
        assert len(unpublished) == 2
        async with aiohttp.ClientSession() as http:
            r = await http.get(f"{server.url}/v1/rooms/bye", headers={"Authorization": f"Bearer {server.api_key}"})
            room = await r.json()
        assert [p["identity"] for p in room["participants"]] == ["bob"]
        # Bob's subscriber connection was renegotiated: the m-lines are no longer announced.
        await wait_until(lambda: bob.client.tracks_by_mid == {}, 5)
    finally:
        await alice.close()
        await bob.close()


async def test_moderator_mutes_removes_and_ends(server: RunningServer) -> None:
    mod = await join(server.url, "mod", await server.token("mod", "boss", moderator=True))
    alice = await join(server.url, "mod", await server.token("mod", "alice"))
    carol = await join(server.url, "mod", await server.token("mod", "carol"))
    try:
        (mic,) = await alice.publish(("audio", "audio/opus", "microphone"))
        await mod.client.send({"type": "mute_participant", "participant_id": alice.id})
        muted = await alice.client.wait_for("track_muted")
        assert muted["muted"] is True and muted["by"] == mod.id
        await mod.client.send({"type": "remove_participant", "participant_id": carol.id})
        removed = await carol.client.wait_for("removed")
        assert removed["reason"]
        await asyncio.wait_for(carol.client.closed.wait(), 5)
        await mod.client.wait_for("participant_left", lambda m: m["participant_id"] == carol.id)
        # A non-moderator cannot end the room; the moderator can, and everyone is told.
        start = len(alice.client.messages)
        await alice.client.send({"type": "end_room"})
        assert (await alice.client.wait_for("error", start=start))["code"] == "missing_grant"
        await mod.client.send({"type": "end_room"})
        await alice.client.wait_for("room_ended")
        await asyncio.wait_for(alice.client.closed.wait(), 5)
    finally:
        for p in (mod, alice, carol):
            await p.close()


async def test_active_speakers_follow_audio_levels(server: RunningServer) -> None:
    alice = await join(server.url, "spk", await server.token("spk", "alice"))
    bob = await join(server.url, "spk", await server.token("spk", "bob"))
    try:
        (a_mic,) = await alice.publish(("audio", "audio/opus", "microphone"))
        (b_mic,) = await bob.publish(("audio", "audio/opus", "microphone"))
        seq = {"a": 0, "b": 0}

        async def talk(writer: object, key: str, level: int, seconds: float) -> None:
            for _ in range(int(seconds / 0.02)):
                writer.write(make_packet(seq[key], seq[key] * 960, opus_payload(), audio_level=level))  # type: ignore[attr-defined]
                seq[key] += 1
                await asyncio.sleep(0.02)

        # Alice talks, Bob is silent (level 127 = digital silence).
        await asyncio.gather(talk(a_mic, "a", 25, 1.2), talk(b_mic, "b", 127, 1.2))
        msg = await bob.client.wait_for("active_speakers", lambda m: bool(m["speakers"]))
        assert [s["participant_id"] for s in msg["speakers"]] == [alice.id]
        # Then Bob talks loudly, Alice goes quiet: Bob comes first.
        start = len(bob.client.messages)
        await asyncio.gather(talk(a_mic, "a", 127, 2.0), talk(b_mic, "b", 10, 2.0))
        msg = await bob.client.wait_for("active_speakers", lambda m: [s["participant_id"] for s in m["speakers"]][:1] == [bob.id], start=start)
        assert msg["speakers"][0]["participant_id"] == bob.id
    finally:
        await alice.close()
        await bob.close()
