"""Real browsers in one meeting: media flows both ways, screen shares show large, leavers vanish."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.browser.conftest import BrowserParticipant, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SCREENSHOT = "/tmp/convene-meeting-2p.png"
SHARE_SCREENSHOT = "/tmp/convene-screen-share.png"


def received(stats: dict[str, Any], participant_id: str, source: str) -> dict[str, Any] | None:
    return next((t for t in stats["tracks"] if t["participant_id"] == participant_id and t["source"] == source), None)


async def media_flowing(viewer: BrowserParticipant, sender_id: str, sources: tuple[str, ...]) -> dict[str, Any]:
    """Samples the viewer's getStats twice, 1 s apart: every source from the sender must advance."""
    before = await viewer.stats()
    await asyncio.sleep(1.0)
    after = await viewer.stats()
    progress: dict[str, Any] = {}
    for source in sources:
        old, new = received(before, sender_id, source), received(after, sender_id, source)
        if not old or not new:
            return {}
        if new["kind"] == "video":
            if not (new["framesDecoded"] or 0) > (old["framesDecoded"] or 0):
                return {}
            progress[source] = {"framesDecoded": new["framesDecoded"], "fps": new["framesDecoded"] - old["framesDecoded"],
                                "frameWidth": new["frameWidth"], "bytesReceived": new["bytesReceived"]}
        else:
            if not (new["totalSamplesReceived"] or 0) > (old["totalSamplesReceived"] or 0):
                return {}
            if not new["bytesReceived"] > old["bytesReceived"]:
                return {}
            progress[source] = {"totalSamplesReceived": new["totalSamplesReceived"],
                                "totalAudioEnergy": new["totalAudioEnergy"], "bytesReceived": new["bytesReceived"]}
    return progress


async def self_id(person: BrowserParticipant) -> str:
    return str((await person.state())["self"]["id"])


@pytest.mark.parametrize("names", [
    ("Alice", "Bob"),
    ("Alice", "Bob", "Carol"),
], ids=["two", "three"])
async def test_participants_receive_each_others_video_and_audio(join, names: tuple[str, ...]) -> None:
    people = [await join(f"media-{len(names)}", name) for name in names]
    ids = {person.name: await self_id(person) for person in people}
    for viewer in people:
        for sender in people:
            if sender is viewer:
                continue
            progress = await wait_for(lambda: media_flowing(viewer, ids[sender.name], ("camera", "microphone")),
                                      timeout=20, what=f"{sender.name}'s media at {viewer.name}")
            print(f"{viewer.name} <- {sender.name}: {progress}")
            assert progress["camera"]["frameWidth"] > 0
            assert progress["microphone"]["totalAudioEnergy"] > 0  # the fake microphone beeps
        tiles = await viewer.tiles()
        assert sorted(t["name"] for t in tiles) == sorted(names)
        assert all(t["showsVideo"] for t in tiles), tiles
    # The fake microphones beep, so the server names speakers and the tiles get the ring.
    await wait_for(lambda: _someone_speaking(people[0]), what="an active speaker ring")


async def test_screen_share_arrives_and_shows_large(join) -> None:
    alice = await join("share-room", "Alice")
    bob = await join("share-room", "Bob")
    alice_id = await self_id(alice)
    await alice.page.click("#toggle-screen")
    await wait_for(lambda: _sharing(alice), what="Alice to be sharing")
    progress = await wait_for(lambda: media_flowing(bob, alice_id, ("screen",)), timeout=20,
                              what="Alice's screen at Bob")
    print(f"Bob <- Alice's screen: {progress}")
    screen = await wait_for(lambda: _tile(bob, alice_id, "screen"), what="the screen tile")
    camera = await _tile(bob, alice_id, "main")
    assert screen["showsVideo"] and screen["name"] == "Alice"
    assert screen["width"] * screen["height"] > 4 * camera["width"] * camera["height"], (screen, camera)
    assert await bob.page.locator("#stage.stage--presenting").count() == 1
    await bob.page.screenshot(path=SHARE_SCREENSHOT)

    await alice.page.click("#toggle-screen")  # stop: unpublish + a new offer mid-call
    await wait_for(lambda: _no_tile(bob, alice_id, "screen"), what="the screen tile to go")
    assert await bob.page.locator("#stage.stage--presenting").count() == 0
    # The camera keeps flowing after the renegotiation.
    await wait_for(lambda: media_flowing(bob, alice_id, ("camera", "microphone")), what="Alice's camera after sharing")


async def test_sharing_again_after_stopping(join) -> None:
    alice = await join("reshare-room", "Alice")
    bob = await join("reshare-room", "Bob")
    alice_id = await self_id(alice)
    await alice.page.click("#toggle-screen")
    await wait_for(lambda: _tile(bob, alice_id, "screen"), what="the first share at Bob")
    await alice.page.click("#toggle-screen")
    await wait_for(lambda: _no_tile(bob, alice_id, "screen"), what="the first share to go")
    # Sharing again: a new m-line at Alice's publisher, a reused (freed) one at Bob's subscriber.
    await alice.page.click("#toggle-screen")
    again = await wait_for(lambda: media_flowing(bob, alice_id, ("screen",)), timeout=20,
                           what="Alice's second screen share at Bob")
    print(f"Bob <- Alice's second share: {again}")


async def test_leaver_disappears_and_the_page_looks_like_a_meeting(join) -> None:
    alice = await join("leave-room", "Alice")
    bob = await join("leave-room", "Bob")
    bob_id = await self_id(bob)
    await wait_for(lambda: media_flowing(alice, bob_id, ("camera",)), what="Bob's camera at Alice")
    await alice.page.screenshot(path=SCREENSHOT)
    await bob.page.click("#leave")
    await wait_for(lambda: _no_tile(alice, bob_id, "main"), what="Bob's tile to go")
    assert [t["name"] for t in await alice.tiles()] == ["Alice"]
    assert await bob.page.is_visible("#ended")
    people = (await alice.state())["participants"]
    assert [p["name"] for p in people] == ["Alice"]


async def _sharing(person: BrowserParticipant) -> bool:
    return bool((await person.state())["sharingScreen"])


async def _tile(person: BrowserParticipant, participant_id: str, kind: str) -> dict[str, Any] | None:
    return next((t for t in await person.tiles() if t["participant_id"] == participant_id and t["kind"] == kind), None)


async def _no_tile(person: BrowserParticipant, participant_id: str, kind: str) -> bool:
    return await _tile(person, participant_id, kind) is None


async def _someone_speaking(person: BrowserParticipant) -> bool:
    return any(t["speaking"] for t in await person.tiles())
