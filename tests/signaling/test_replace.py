"""A client that rejoins as the same identity replaces its old participant; a server that stops tells its
clients to come back (reconnect, 1012) and they do, to the same meeting, when it is up again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from signaling.appkeys import ROOMS
from signaling.client import SignalingClient
from signaling.session import CLOSE_REPLACED, CLOSE_SERVICE_RESTART
from tests.conftest import RunningServer, running_server, server_config
from tests.sfu.peers import join


async def test_joining_twice_as_the_same_identity_leaves_one_participant(server: RunningServer) -> None:
    token = await server.token("twice", "alice")
    alice = await join(server.url, "twice", token)
    bob = await join(server.url, "twice", await server.token("twice", "bob"))
    again = None
    try:
        await alice.publish(("audio", "audio/opus", "microphone"))
        await bob.client.wait_for("track_published")
        first_id = alice.id
        start = len(bob.client.messages)
        again = await join(server.url, "twice", token)
        # The first socket is closed with the replaced code; the new one saw only Bob in the room.
        await asyncio.wait_for(alice.client.closed.wait(), 5)
        assert alice.client.close_code == CLOSE_REPLACED
        assert alice.client.messages[-1]["type"] == "replaced"  # said before the close, which browsers see late
        assert again.id != first_id
        assert [p["identity"] for p in again.client.joined["room"]["participants"]] == ["bob"]  # type: ignore[index]
        # Bob saw the old one leave (with its track) before the new one joined: never two Alices.
        await bob.client.wait_for("participant_joined", start=start)
        seen = [(m["type"], m.get("participant_id") or m.get("participant", {}).get("id"))
                for m in bob.client.messages[start:] if m["type"] in ("participant_left", "participant_joined")]
        assert seen == [("participant_left", first_id), ("participant_joined", again.id)]
        left = next(m for m in bob.client.messages[start:] if m["type"] == "participant_left")
        assert left["reason"] == "replaced"
        assert any(m["type"] == "track_unpublished" for m in bob.client.messages[start:])
        room = server.app[ROOMS].get("twice")
        assert room is not None
        assert sorted(p.identity for p in room.visible) == ["alice", "bob"]
        # The new participant is a full one: it publishes and Bob receives its track.
        await again.publish(("audio", "audio/opus", "microphone"))
        published = await bob.client.wait_for("track_published", lambda m: m["participant_id"] == again.id,
                                              start=start)
        assert published["track"]["source"] == "microphone"
    finally:
        for person in (alice, bob, again):
            if person is not None:
                await person.close()


async def test_other_identities_are_not_replaced(server: RunningServer) -> None:
    alice = await join(server.url, "two", await server.token("two", "alice"))
    bob = await join(server.url, "two", await server.token("two", "bob"))
    try:
        await asyncio.sleep(0.2)
        assert not alice.client.closed.is_set() and not bob.client.closed.is_set()
        assert bob.client.count("participant_left") == 0
    finally:
        await alice.close()
        await bob.close()


async def test_a_stopping_server_says_reconnect_and_the_meeting_goes_on(tmp_path: Path) -> None:
    config = server_config(tmp_path / "data")
    async with running_server(config) as first:
        token = await first.token("standup", "alice")
        client = SignalingClient(first.url, "standup", token)
        await client.connect()
    # Leaving the context stops the server as SIGTERM does (aiohttp's shutdown, then cleanup).
    await asyncio.wait_for(client.closed.wait(), 5)
    assert client.close_code == CLOSE_SERVICE_RESTART
    assert {"type": "reconnect", "reason": "server restart"} in client.messages
    assert client.count("room_ended") == 0
    await client.close()
    # Back on the same data dir, the same token joins the same meeting.
    async with running_server(config) as second:
        back = SignalingClient(second.url, "standup", token)
        try:
            joined = await back.connect()
            assert joined["participant"]["identity"] == "alice"
        finally:
            await back.close()
