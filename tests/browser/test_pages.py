"""The pages load and the landing page opens a meeting through the join endpoint."""

from __future__ import annotations

import pytest

from tests.browser.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_index_opens_a_meeting_and_joins(join) -> None:
    alice = await join("pages-room", "Alice")
    state = await alice.state()
    assert state["self"]["name"] == "Alice"
    assert state["self"]["moderator"] is True  # the first joiner of a new room moderates it
    tiles = await alice.tiles()
    assert [(t["name"], t["local"]) for t in tiles] == [("Alice", True)]
    assert await alice.page.is_visible("#end-room")
    published = await wait_for(lambda: _published_ids(alice), what="our own track ids")
    assert {p["source"] for p in published} == {"microphone", "camera"}
    assert not [line for line in alice.console if line.startswith("pageerror")], alice.console


async def _published_ids(person):
    published = (await person.state())["published"]
    return published if published and all(p["track_id"] for p in published) else None


async def test_invite_link_without_token_asks_for_a_name(browser, server) -> None:
    context = await browser.new_context(permissions=["camera", "microphone"])
    try:
        page = await context.new_page()
        await page.goto(f"{server.url}/r/invite-room")
        await page.fill("#prejoin-name-input", "Dana")
        await page.click("#join:not([disabled])")
        await wait_for(lambda: page.evaluate("window.convene.state().joined"), what="Dana to join")
        assert (await page.evaluate("window.convene.state()"))["self"]["name"] == "Dana"
        # The token stays out of the address bar; the tab keeps it, so a reload rejoins as the same person.
        assert "token" not in page.url
        await page.reload()
        await page.wait_for_selector("#prejoin-as:not([hidden])")
        assert await page.text_content("#prejoin-name") == "Dana"
    finally:
        await context.close()


async def test_a_bad_token_ends_on_a_clear_message(browser, server) -> None:
    context = await browser.new_context(permissions=["camera", "microphone"])
    try:
        page = await context.new_page()
        await page.goto(f"{server.url}/r/some-room?token=not-a-token")
        await page.click("#join:not([disabled])")
        await page.wait_for_selector("#ended:not([hidden])")
        assert await page.text_content("#ended-title") == "Could not join the meeting"
        assert await page.text_content("#ended-reason")
        assert await page.is_hidden("#rejoin")
    finally:
        await context.close()
