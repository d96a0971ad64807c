"""No secrets in URLs or logs (issue #8), in real Chromium: a whole session — landing page, a meeting with
camera and microphone, a chat message, a file uploaded and downloaded in the meeting's chat panel, an
invite link, a reload, the /chat page opened with a user link — while every access-log line and every
`convene.*` record is captured. Afterwards the log holds no token (`eyJ…`) and no API key (`cvk_…`),
and no page's address bar ever kept a token after load."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from chat.web import CHAT_API
from tests.browser.conftest import wait_for
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
SECRET = re.compile(r"eyJ|cvk_")


@pytest.fixture
def server_log() -> Iterator[list[str]]:
    """Every record the server writes: the access log and all of convene.*, at every level."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"{record.name}: {record.getMessage()}")
            if record.exc_text:
                lines.append(record.exc_text)

    root = logging.getLogger()
    handler = Keep(level=logging.DEBUG)
    levels = {name: logging.getLogger(name).level for name in ("aiohttp.access", "convene")}
    root.addHandler(handler)
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)
    logging.getLogger("convene").setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def assert_no_token_in(page: Page) -> None:
    assert "token" not in page.url and not SECRET.search(page.url), page.url


async def test_a_whole_session_leaves_no_secret_in_logs_or_address_bars(
        browser: Browser, server: RunningServer, server_log: list[str], tmp_path: Path) -> None:
    room = "no-secrets"
    # Ann opens / and starts a meeting: camera and microphone on (fake devices).
    ann_ctx = await browser.new_context(permissions=["camera", "microphone"], accept_downloads=True)
    ann = await ann_ctx.new_page()
    await ann.goto(f"{server.url}/?room={room}")
    await ann.fill("#name", "Ann")
    await ann.click("#open")
    await ann.wait_for_url(re.compile(rf"/r/{room}$"))  # the #token= fragment is wiped at once
    assert_no_token_in(ann)
    await ann.click("#join:not([disabled])")
    await wait_for(lambda: ann.evaluate("window.convene.state().joined"), what="Ann to join")
    assert_no_token_in(ann)

    # The meeting chat panel: a message, then a file uploaded and downloaded intact.
    await ann.click("#open-chat")
    await ann.wait_for_selector(".cv-chat[data-ready=true]")
    await ann.fill(".cv-composer textarea", "agenda in the chart")
    await ann.press(".cv-composer textarea", "Enter")
    await expect(ann.locator(".cv-msg", has_text="agenda in the chart")).to_have_count(1)
    await ann.set_input_files(".cv-composer input[type=file]",
                              files=[{"name": "chart.png", "mimeType": "image/png", "buffer": PNG}])
    await ann.wait_for_selector(".cv-pending[data-ready=true]")
    await ann.click(".cv-send")
    link = ann.locator("a.cv-file", has_text="chart.png")
    await expect(link).to_have_count(1)
    assert "token" not in (await link.get_attribute("href") or "")
    async with ann.expect_download() as info:
        await link.click()
    download = await info.value
    assert "sig=" in download.url and "token" not in download.url
    await download.save_as(tmp_path / "got.png")
    assert (tmp_path / "got.png").read_bytes() == PNG
    assert_no_token_in(ann)

    # Bob follows an invite link with the token in its fragment; a reload rejoins him from this tab's
    # storage (the address bar has no token to give).
    bob_ctx = await browser.new_context(permissions=["camera", "microphone"])
    bob = await bob_ctx.new_page()
    await bob.goto(f"{server.url}/r/{room}#token={await server.token(room, 'bob', 'Bob')}")
    await expect(bob.locator("#prejoin-name")).to_have_text("Bob")
    assert_no_token_in(bob)
    await bob.reload()
    await expect(bob.locator("#prejoin-name")).to_have_text("Bob")
    assert_no_token_in(bob)
    await bob.click("#join:not([disabled])")
    await wait_for(lambda: bob.evaluate("window.convene.state().joined"), what="Bob to join")
    await wait_for(lambda: ann.evaluate("window.convene.state().participants.length === 2"), what="Ann to see Bob")

    # A legacy ?token= link still works once, and leaves the address bar too.
    carol_ctx = await browser.new_context(permissions=["camera", "microphone"])
    carol = await carol_ctx.new_page()
    await carol.goto(f"{server.url}/r/{room}?token={await server.token(room, 'carol', 'Carol')}")
    await expect(carol.locator("#prejoin-name")).to_have_text("Carol")
    assert_no_token_in(carol)

    # The /chat page from a user link made through the API (the link's token is in its fragment).
    api = server.app[CHAT_API]
    await api.service.add_user(None, "dana", "member")
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.url}/v1/users/dana/tokens", json={"ttl": 3600},
                                headers={"Authorization": f"Bearer {server.api_key}"}) as r:
            made = await r.json()
    assert made["url"].startswith("/chat#token=")
    dana_ctx = await browser.new_context()
    dana = await dana_ctx.new_page()
    await dana.goto(server.url + made["url"])
    await dana.wait_for_selector("body[data-ready=true]")
    assert_no_token_in(dana)
    await dana.reload()
    await dana.wait_for_selector("body[data-ready=true]")  # still signed in: the tab kept the token
    await expect(dana.locator("#me")).to_have_text("dana")
    assert_no_token_in(dana)

    for ctx in (ann_ctx, bob_ctx, carol_ctx, dana_ctx):
        await ctx.close()

    text = "\n".join(server_log)
    # The log really saw the session: the page loads, both sockets, the link and the download.
    for seen in (f"/r/{room}", "/v1/chat/ws", f"/v1/rooms/{room}/ws", "/link", "sig=[redacted]", "/chat "):
        assert seen in text, f"{seen!r} missing from the captured log"
    leaks = [line for line in server_log if SECRET.search(line)]
    assert not leaks, "secrets in the server log:\n" + "\n".join(leaks[:10])
