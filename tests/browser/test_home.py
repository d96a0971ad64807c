"""Signed in, in a real Chromium: the password sign-in opens the home page (channels and direct messages with
unread counts, my tasks, my meetings), a channel opens in /chat, "Start a meeting" joins a new room as oneself,
and a second signed-in person opens the bare meeting link and joins as themselves. No address any page visited,
nor any request either browser sent, carries a token."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from chat.service import PostRequest
from chat.web import CHAT_API
from tests.browser.conftest import wait_for
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

PASSWORD = "correct horse battery"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.")


class Visits:
    """Every address a page navigated to and every request it sent, to look for tokens in them."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.console: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("framenavigated", lambda frame: self.urls.append(frame.url))
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: self.console.append(f"pageerror: {err}"))

    def assert_no_tokens(self) -> None:
        # A token as a parameter (`?token=`, `#token=`) or any JWT anywhere (a path such as /record-token is fine).
        leaked = [u for u in self.urls if re.search(r"[?#&]token=", u, re.I) or JWT.search(u)]
        assert not leaked, f"tokens in URLs: {leaked}"
        # Under the server's CSP (no inline script or style): no errors, warnings or policy reports on any page.
        problems = [line for line in self.console if line.startswith(("error:", "warning:", "pageerror"))
                    or "Content Security Policy" in line]
        assert not problems, self.console


async def people(server: RunningServer) -> dict[str, Any]:
    api = server.app[CHAT_API]
    assert api.accounts is not None
    for login, name in (("ann", "Ann Lee"), ("ben", "Ben Wu")):
        await api.service.add_user(None, login, "member", "eng/web", name)
        await api.accounts.set_password(login, PASSWORD)
    ann, ben = await api.store.get_user("ann"), await api.store.get_user("ben")
    assert ann is not None and ben is not None
    general, _ = await api.service.create_channel(ann, "general", "team", ["ben"])
    direct, _ = await api.service.direct_channel("ann", "ben")
    return {"api": api, "ann": ann, "ben": ben, "general": general, "direct": direct}


async def sign_in(browser: Browser, server: RunningServer, login: str, visits: Visits, **options: Any) -> Page:
    """A new browser context (`options`: its time zone, locale, …) signed in as `login`, on the home page."""
    context = await browser.new_context(**{"viewport": {"width": 1280, "height": 800},
                                           "permissions": ["camera", "microphone"], **options})
    page = await context.new_page()
    visits.watch(page)
    await page.goto(f"{server.url}/signin")
    await page.fill("#login", login)
    await page.fill("#password", PASSWORD)
    await page.click("#signin-submit")
    await page.wait_for_url(f"{server.url}/")
    await page.wait_for_selector('body[data-ready="home"]')
    return page


async def joined(page: Page, who: str) -> dict[str, Any]:
    state: dict[str, Any] = await wait_for(
        lambda: page.evaluate("window.convene.state().joined && window.convene.state()"), timeout=20,
        what=f"{who} to join")
    return state


async def test_sign_in_home_channel_and_a_meeting_without_tokens_in_links(browser: Browser,
                                                                         server: RunningServer) -> None:
    world = await people(server)
    service, ben = world["api"].service, world["ben"]
    await service.post(ben, PostRequest(to=world["general"].id, content="standup at ten?"))
    await service.post(ben, PostRequest(to=world["direct"].id, content="hi Ann"))
    await service.post(ben, PostRequest(to=world["direct"].id, content="are you there?"))
    await service.post(ben, PostRequest(to=world["general"].id, type="task",
                                        task={"title": "write the release notes", "assignee": "ann"}))
    visits = Visits()
    ann = await sign_in(browser, server, "ann", visits)
    try:
        # The home page: who is signed in, channels and direct messages with unread counts, my tasks.
        assert await ann.is_hidden("#landing") and await ann.is_visible("#home")
        assert "Ann Lee" in await ann.inner_text("#home-me")
        assert await ann.is_hidden("#home-admin")  # a member: no admin link
        general = ann.locator(f'#home-channels li[data-channel="{world["general"].id}"]')
        assert await general.locator("a").inner_text() == "#general"
        assert await general.get_attribute("data-unread") == "2"  # a message and a task from Ben
        assert await general.locator(".home__badge").inner_text() == "2"
        direct = ann.locator(f'#home-direct li[data-channel="{world["direct"].id}"]')
        assert await direct.get_attribute("data-unread") == "2" and "ben" in await direct.inner_text()
        assert "write the release notes" in await ann.inner_text("#home-tasks")
        assert await ann.is_visible("#recent-empty")  # no meetings yet

        # A channel opens in /chat (signed in by the cookie alone).
        await general.locator("a").click()
        await ann.wait_for_url(re.compile(r"/chat#c_"))
        await ann.wait_for_selector('body[data-ready="true"]')
        await ann.wait_for_selector('li.cv-current[data-name="general"]')

        # Start a meeting: a new room, joined as Ann herself (the moderator), its address without a token.
        await ann.goto(f"{server.url}/")
        await ann.wait_for_selector('body[data-ready="home"]')
        await ann.click("#start-meeting")
        await ann.wait_for_url(re.compile(r"/r/[a-z]{3}-[a-z]{4}-[a-z]{3}$"))
        room = ann.url.rsplit("/", 1)[1]
        await ann.wait_for_selector("#prejoin-as:not([hidden])")
        assert await ann.inner_text("#prejoin-name") == "Ann Lee"
        await ann.click("#join:not([disabled])")
        ann_state = await joined(ann, "Ann")
        assert ann_state["self"]["name"] == "Ann Lee" and ann_state["self"]["moderator"] is True

        # Ben, signed in in another browser, opens the bare meeting link and joins as himself.
        ben_page = await sign_in(browser, server, "ben", visits)
        try:
            await ben_page.goto(f"{server.url}/r/{room}")
            await ben_page.wait_for_selector("#prejoin-as:not([hidden])")
            assert await ben_page.is_hidden("#prejoin-name-field")  # no name to type
            await ben_page.click("#join:not([disabled])")
            ben_state = await joined(ben_page, "Ben")
            assert ben_state["self"]["name"] == "Ben Wu" and ben_state["self"]["moderator"] is False
            assert "Ann Lee" in {p["name"] for p in ben_state["participants"]}
            await wait_for(lambda: _sees(ann, "Ben Wu"), what="Ann to see Ben")
            # The meeting is on Ben's home page now, and its tokens name the people, not guests.
            live = await world["api"].auth.meetings.live(room)
            assert live is not None
            await ben_page.goto(f"{server.url}/")
            await ben_page.wait_for_selector(f'#recent-meetings li[data-meeting="{live.meeting_id}"]')
        finally:
            await ben_page.context.close()
        # Ann moderated: her browser holds the meeting's record token, so her home page links its notes page.
        await ann.goto(f"{server.url}/")
        await ann.wait_for_selector(f'#recent-meetings li[data-meeting="{live.meeting_id}"] a[href="/m/{live.meeting_id}"]')
        visits.assert_no_tokens()
        assert any(f"/r/{room}" in u for u in visits.urls)
    finally:
        await ann.context.close()


async def _sees(page: Page, name: str) -> bool:
    state = await page.evaluate("window.convene.state()")
    return name in {p["name"] for p in state.get("participants", [])}
