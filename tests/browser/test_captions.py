"""Captions in the page: interim text is replaced by segment_id, finals are kept, under the tile and in
the panel. The events are emitted through the server's own room (no speech recognition needed here)."""

from __future__ import annotations

import pytest

from signaling.appkeys import ROOMS
from tests.browser.conftest import wait_for
from tests.browser.test_meeting import self_id

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


def caption(segment_id: str, participant_id: str, text: str, final: bool) -> dict[str, object]:
    return {"type": "caption", "segment_id": segment_id, "participant_id": participant_id, "name": "Bob",
            "start": 0.0, "end": 1.0, "text": text, "final": final}


async def test_captions_replace_interim_and_keep_finals(join, server) -> None:
    alice = await join("caption-room", "Alice")
    bob = await join("caption-room", "Bob")
    bob_id = await self_id(bob)
    room = server.app[ROOMS].get("caption-room")
    # The test server starts rooms with captions off (no model load per test): switch them on.
    room.set_captions(True)
    await wait_for(lambda: bob.page.evaluate("window.convene.state().captionsEnabled"), what="captions on at Bob")
    await alice.page.click("#open-captions")

    room.emit(caption("S1", bob_id, "hello every", False))
    room.emit(caption("S1", bob_id, "hello everyone", True))
    room.emit(caption("S2", bob_id, "let us", False))
    await wait_for(lambda: alice.page.evaluate("window.convene.captions().length === 2"), what="two segments")
    assert await alice.page.evaluate("window.convene.captions()") == [
        {"segment_id": "S1", "participant_id": bob_id, "text": "hello everyone", "final": True},
        {"segment_id": "S2", "participant_id": bob_id, "text": "let us", "final": False},
    ]
    assert await alice.page.locator("#caption-list .caption").all_inner_texts() == ["Bob\nhello everyone", "Bob\nlet us"]
    bob_tile = alice.page.locator(f'.tile[data-participant-id="{bob_id}"][data-kind="main"] .tile__caption')
    assert await bob_tile.inner_text() == "let us"

    await alice.page.click("#captions-switch")  # the moderator turns captions off for everyone
    await wait_for(lambda: bob.page.evaluate("!window.convene.state().captionsEnabled"), what="captions off at Bob")
    await wait_for(lambda: _status_is(alice, "Live captions are off."), what="the captions panel saying off")


async def _status_is(person, text: str) -> bool:
    return await person.page.inner_text("#captions-status") == text
