"""The chat page offers only what the person may do (#10): "new group", "new channel" and attaching files follow
GET /v1/me's permissions when the page opens, and the organisation's table as an admin changes it (the socket's
`permissions` frame), without a reload. Real server, headless Chromium."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page

from chat.web import CHAT, CHAT_API
from tests.browser.conftest import wait_for
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def put_permissions(server: RunningServer, body: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.put(server.url + "/v1/admin/permissions", json=body,
                            headers={"Authorization": f"Bearer {server.api_key}"}) as r:
            assert r.status == 200, await r.text()


async def offered(page: Page) -> dict[str, bool]:
    shown: dict[str, bool] = await page.evaluate("""() => ({
        group: getComputedStyle(document.getElementById("new-group")).display !== "none",
        channel: getComputedStyle(document.getElementById("new-channel")).display !== "none",
        direct: getComputedStyle(document.getElementById("new-direct")).display !== "none",
    })""")
    return shown


async def test_the_chat_page_hides_what_the_member_may_not_do(browser: Browser, server: RunningServer) -> None:
    await server.app[CHAT].add_user(None, "mia", "member", name="Mia")
    token = server.app[CHAT_API].auth.mint_user_token("mia", 3600)
    await put_permissions(server, {"create_group": ["owner", "admin"]})
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(f"{server.url}/chat#token={token}")
        await page.wait_for_selector("body[data-ready='true']", timeout=15000)
        assert await offered(page) == {"group": False, "channel": True, "direct": True}
        # The admin takes team channels and uploads from members, gives groups back: the open page follows.
        await put_permissions(server, {"create_group": None, "create_team_channel": ["owner", "admin"],
                                       "upload_files": ["owner", "admin", "bot", "guest"]})

        async def followed() -> bool:
            return await offered(page) == {"group": True, "channel": False, "direct": True}
        await wait_for(followed, what="the page to follow the new table")
        assert await page.evaluate("document.body.classList.contains('cv-lacks-upload_files')")
        # And the group the page now offers is made.
        await server.app[CHAT].add_user(None, "noah", "member", name="Noah")
        await page.fill("#new-group input[name=members]", "noah")
        await page.click("#new-group button")
        await page.wait_for_selector("#other li", timeout=5000)
    finally:
        await context.close()
