"""Camera/microphone toggles and moderator controls, seen from the other side."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import BrowserParticipant, wait_for
from tests.browser.test_meeting import media_flowing, self_id

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def bob_tile(alice: BrowserParticipant, bob_id: str) -> dict[str, Any]:
    return next(t for t in await alice.tiles() if t["participant_id"] == bob_id and t["kind"] == "main")


async def test_camera_and_microphone_toggles_show_at_the_other_side(join) -> None:
    alice = await join("toggle-room", "Alice")
    bob = await join("toggle-room", "Bob")
    bob_id = await self_id(bob)
    await wait_for(lambda: media_flowing(alice, bob_id, ("camera",)), what="Bob's camera at Alice")

    await bob.page.click("#toggle-cam")
    await wait_for(lambda: _is(bob_tile(alice, bob_id), showsVideo=False), what="Bob's avatar instead of video")
    await bob.page.click("#toggle-mic")
    await wait_for(lambda: _is(bob_tile(alice, bob_id), micMuted=True), what="Bob's mic-off icon")

    await bob.page.click("#toggle-cam")  # a fresh camera track, same transceiver: no renegotiation
    await wait_for(lambda: _is(bob_tile(alice, bob_id), showsVideo=True), what="Bob's video back")
    await wait_for(lambda: media_flowing(alice, bob_id, ("camera",)), what="Bob's camera flowing again")
    await bob.page.click("#toggle-mic")
    await wait_for(lambda: _is(bob_tile(alice, bob_id), micMuted=False), what="Bob's mic back")


async def test_moderator_mutes_and_removes_a_participant(join) -> None:
    alice = await join("moderated-room", "Alice")  # first in: moderator
    bob = await join("moderated-room", "Bob")
    alice.page.on("dialog", lambda dialog: dialog.accept())
    bob_id = await self_id(bob)
    assert not await bob.page.is_visible("#end-room")  # Bob does not moderate

    await alice.page.click("#open-people")
    await alice.page.click('button[aria-label="Mute Bob"]')
    await wait_for(lambda: _state_is(bob, micOn=False), what="Bob muted by the moderator")
    await wait_for(lambda: _is(bob_tile(alice, bob_id), micMuted=True), what="Bob's mic-off icon at Alice")

    await alice.page.click('button[aria-label="Remove Bob from the meeting"]')
    await bob.page.wait_for_selector("#ended:not([hidden])")
    assert await bob.page.text_content("#ended-title") == "You were removed from the meeting"
    await wait_for(lambda: _no_bob(alice, bob_id), what="Bob gone from Alice's grid")


async def _is(tile_coro: Any, **expected: Any) -> bool:
    tile = await tile_coro
    return all(tile[k] == v for k, v in expected.items())


async def _state_is(person: BrowserParticipant, **expected: Any) -> bool:
    state = await person.state()
    return all(state[k] == v for k, v in expected.items())


async def _no_bob(alice: BrowserParticipant, bob_id: str) -> bool:
    return all(t["participant_id"] != bob_id for t in await alice.tiles())
