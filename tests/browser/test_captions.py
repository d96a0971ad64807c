"""Captions in the page: interim text is replaced by segment_id, finals are kept, under the tile and in
the panel, where a speaker's consecutive segments grow one paragraph; the reader picks the size (kept in
localStorage) and the list follows the talk unless the reader scrolled up. The events are emitted through the
server's own room (no speech recognition needed here)."""

from __future__ import annotations

import pytest

from signaling.appkeys import ROOMS
from tests.browser.conftest import wait_for
from tests.browser.test_meeting import self_id

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


def caption(segment_id: str, participant_id: str, text: str, final: bool, name: str = "Bob",
            start: float = 0.0) -> dict[str, object]:
    return {"type": "caption", "segment_id": segment_id, "participant_id": participant_id, "name": name,
            "start": start, "end": start + 1.0, "text": text, "final": final}


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
    # One paragraph for Bob's consecutive segments (not an entry per chunk).
    assert await alice.page.locator("#caption-list .caption").all_inner_texts() == ["Bob\nhello everyone let us"]
    bob_tile = alice.page.locator(f'.tile[data-participant-id="{bob_id}"][data-kind="main"] .tile__caption')
    assert await bob_tile.inner_text() == "let us"

    await alice.page.click("#captions-switch")  # the moderator turns captions off for everyone
    await wait_for(lambda: bob.page.evaluate("!window.convene.state().captionsEnabled"), what="captions off at Bob")
    await wait_for(lambda: _status_is(alice, "Live captions are off."), what="the captions panel saying off")


async def _status_is(person, text: str) -> bool:
    return await person.page.inner_text("#captions-status") == text


async def paragraphs(person) -> dict:
    return await person.page.evaluate("window.convene.captionParagraphs()")


async def test_caption_paragraphs_own_captions_size_and_following(join, server) -> None:
    alice = await join("caption-reading", "Alice")
    bob = await join("caption-reading", "Bob")
    alice_id, bob_id = await self_id(alice), await self_id(bob)
    room = server.app[ROOMS].get("caption-reading")
    room.set_captions(True)
    await wait_for(lambda: alice.page.evaluate("window.convene.state().captionsEnabled"), what="captions on")
    await alice.page.click("#open-captions")

    # Turns: Bob twice, Alice (she sees her own words), Bob again; a long pause starts a new paragraph too.
    room.emit(caption("P1", bob_id, "hello", True, start=1))
    room.emit(caption("P2", bob_id, "everyone.", True, start=2))
    room.emit(caption("P3", alice_id, "morning Bob", True, name="Alice", start=3))
    room.emit(caption("P4", bob_id, "the plan", False, start=4))
    room.emit(caption("P5", bob_id, "after a pause", True, start=30))
    want = [{"participant_id": bob_id, "speaker": "Bob", "text": "hello everyone."},
            {"participant_id": alice_id, "speaker": "Alice", "text": "morning Bob"},
            {"participant_id": bob_id, "speaker": "Bob", "text": "the plan"},
            {"participant_id": bob_id, "speaker": "Bob", "text": "after a pause"}]
    await wait_for(lambda: _items_are(alice, want), what="Alice's panel in paragraphs")
    await wait_for(lambda: _items_are(bob, want), what="Bob's panel in paragraphs")
    own = alice.page.locator(f'.tile[data-participant-id="{alice_id}"][data-kind="main"] .tile__caption')
    assert await own.inner_text() == "morning Bob"  # her own words under her own tile
    assert await alice.page.locator(".caption__segment.caption--interim").inner_text() == "the plan"

    # The size the reader picks applies at once and is kept for the next meeting.
    await alice.page.select_option("#caption-size", "x-large")
    assert await alice.page.evaluate("localStorage.getItem('convene.captionSize')") == "x-large"
    assert await alice.page.evaluate("document.body.classList.contains('captions-size-x-large')")
    size = await alice.page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('.caption__text')).fontSize)")
    assert size >= 24
    assert await bob.page.evaluate("localStorage.getItem('convene.captionSize')") is None  # Bob's is his own

    # Many turns: the list follows the talk ...
    for i in range(40):
        who, name = (alice_id, "Alice") if i % 2 else (bob_id, "Bob")
        room.emit(caption(f"F{i}", who, f"turn number {i} " + "words " * 12, True, name=name, start=40 + i))
    await wait_for(lambda: _last_text_has(alice, "turn number 39"), what="all turns shown")
    assert await _at_bottom(alice)
    # ... stops when the reader scrolls up to read ...
    await alice.page.evaluate("document.getElementById('caption-list').scrollTop = 0")
    await wait_for(lambda: alice.page.evaluate("!window.convene.captionParagraphs().following"), what="paused")
    room.emit(caption("G1", bob_id, "said while Alice reads", True, start=90))
    await wait_for(lambda: _last_text_has(alice, "said while Alice reads"), what="the new caption")
    assert await alice.page.evaluate("document.getElementById('caption-list').scrollTop") == 0
    assert await alice.page.locator("#captions-latest").is_visible()
    # ... and resumes at the bottom.
    await alice.page.click("#captions-latest")
    room.emit(caption("G2", alice_id, "back with everyone", True, name="Alice", start=91))
    await wait_for(lambda: _last_text_has(alice, "back with everyone"), what="the next caption")
    await wait_for(lambda: _at_bottom(alice), what="following again")
    assert (await paragraphs(alice))["following"] is True


async def _items_are(person, want: list[dict]) -> bool:
    return (await paragraphs(person))["items"] == want


async def _last_text_has(person, text: str) -> bool:
    items = (await paragraphs(person))["items"]
    return bool(items) and text in items[-1]["text"]


async def _at_bottom(person) -> bool:
    return bool(await person.page.evaluate(
        "(() => { const l = document.getElementById('caption-list');"
        " return l.scrollHeight - l.scrollTop - l.clientHeight < 40 && l.scrollHeight > l.clientHeight; })()"))
