"""Firefox (Debian's firefox-esr, over WebDriver BiDi) in a meeting with a Chromium peer: it joins from
the landing page, sends and receives audio and video, shares its screen, and chats."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.browser import firefox as ff
from tests.browser.conftest import BrowserParticipant, wait_for
from tests.browser.test_meeting import media_flowing, received, self_id

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def firefox_flowing(page: ff.FirefoxPage, sender_id: str, sources: tuple[str, ...]) -> dict[str, Any]:
    """As media_flowing, read from Firefox's getStats: every source from the sender advances in 1 s."""
    before = await page.evaluate("window.convene.stats()")
    await asyncio.sleep(1.0)
    after = await page.evaluate("window.convene.stats()")
    progress: dict[str, Any] = {}
    for source in sources:
        old, new = received(before, sender_id, source), received(after, sender_id, source)
        if not old or not new or not (new.get("bytesReceived") or 0) > (old.get("bytesReceived") or 0):
            return {}
        if new["kind"] == "video" and not (new.get("framesDecoded") or 0) > (old.get("framesDecoded") or 0):
            return {}
        progress[source] = new
    return progress


async def test_firefox_meets_chromium(join, server) -> None:
    if not ff.available():
        pytest.skip("needs firefox-esr and Xvfb (scripts/bootstrap.sh --test)")
    room = "firefox-room"
    async with ff.firefox() as fox:
        try:
            await _meet(fox, join, server, room)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nFirefox console:\n" + "\n".join(fox.console[-40:])) from None


async def _meet(fox: ff.FirefoxPage, join, server, room: str) -> None:
    # Firefox opens the meeting from the landing page, as a person would.
    await fox.goto(f"{server.url}/?room={room}")
    await fox.fill("#name", "Fiona")
    await fox.click("#open")
    await wait_for(lambda: _at_meeting(fox), what="Firefox on the meeting page")
    await wait_for(lambda: fox.evaluate("!document.getElementById('join').disabled"), what="Firefox's devices open")
    # Firefox's pickers list its fake devices, and its level meter hears the fake microphone's tone.
    assert await fox.evaluate("document.querySelectorAll('#prejoin-camera option').length") >= 1
    await wait_for(lambda: fox.evaluate("Number(document.getElementById('prejoin-level').dataset.level) > 0.2"),
                   what="Firefox's level meter to move")
    await fox.click("#join")
    await wait_for(lambda: fox.evaluate("window.convene.state().joined"), what="Firefox to join")
    fiona_id = (await fox.evaluate("window.convene.state()"))["self"]["id"]

    chrome = await join(room, "Chris")
    chris_id = await self_id(chrome)
    # Audio and video both ways.
    got = await wait_for(lambda: media_flowing(chrome, fiona_id, ("camera", "microphone")), timeout=25,
                         what="Firefox's camera and microphone at Chromium")
    assert got["camera"]["frameWidth"] > 0 and got["microphone"]["totalAudioEnergy"] > 0, got
    await wait_for(lambda: firefox_flowing(fox, chris_id, ("camera", "microphone")), timeout=25,
                   what="Chromium's camera and microphone at Firefox")
    tiles = await fox.evaluate("window.convene.tiles()")
    assert sorted(t["name"] for t in tiles) == ["Chris", "Fiona"] and all(t["showsVideo"] for t in tiles), tiles

    # Firefox shares its (virtual X) screen; Chromium shows it on the stage.
    await fox.click("#toggle-screen")
    await wait_for(lambda: fox.evaluate("window.convene.state().sharingScreen"), what="Firefox sharing")
    await wait_for(lambda: media_flowing(chrome, fiona_id, ("screen",)), timeout=25, what="Firefox's screen at Chromium")
    await wait_for(lambda: _screen_tile_shows(chrome, fiona_id), what="the screen tile at Chromium")

    # Chat both ways through the meeting's chat panel.
    await wait_for(lambda: fox.evaluate("!document.getElementById('open-chat').hidden"), what="Firefox's chat button")
    await fox.click("#open-chat")
    await wait_for(lambda: fox.evaluate("Boolean(document.querySelector('.cv-chat[data-ready=true]'))"),
                   what="Firefox's chat panel")
    await chrome.page.click("#open-chat")
    await chrome.page.wait_for_selector(".cv-chat[data-ready=true]")
    await fox.fill(".cv-composer textarea", "hello from Firefox")
    await fox.click(".cv-send")
    await chrome.page.wait_for_selector(".cv-msg:has-text('hello from Firefox')")
    await chrome.page.fill(".cv-composer textarea", "hello from Chromium")
    await chrome.page.click(".cv-send")
    await wait_for(lambda: fox.evaluate(
        "[...document.querySelectorAll('.cv-msg .cv-text')].some((e) => e.textContent === 'hello from Chromium')"),
        what="Chromium's message in Firefox")


async def _at_meeting(fox: ff.FirefoxPage) -> bool:
    return bool(re.search(r"/r/[^/?#]+$", await fox.evaluate("location.href")))


async def _screen_tile_shows(person: BrowserParticipant, participant_id: str) -> bool:
    return any(t["participant_id"] == participant_id and t["kind"] == "screen" and t["showsVideo"]
               for t in await person.tiles())


