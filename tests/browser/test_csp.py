"""The pages work under the server's Content-Security-Policy in real Chromium: no violation and no
policy error in the console on the landing page, a joined meeting (two people, media flowing, panels
open) and the chat page; and the policy is really enforced (an injected inline script is refused)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from chat.web import CHAT_API
from tests.browser.conftest import wait_for
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Runs before any page script (Playwright injects it over DevTools, outside the page's CSP).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(
  {directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber,
   sample: e.sample}));
"""

# Console lines that mean a policy got in the way, or that a policy header is malformed.
POLICY_WORDS = re.compile(r"Content Security Policy|Content-Security-Policy|Permissions-Policy|Refused to|"
                          r"Feature-Policy|Referrer Policy|X-Frame-Options", re.I)


@dataclass
class Watched:
    context: BrowserContext
    page: Page
    console: list[str] = field(default_factory=list)

    async def violations(self) -> list[dict[str, Any]]:
        return list(await self.page.evaluate("window.__violations"))

    async def assert_clean(self, where: str) -> None:
        violations = await self.violations()
        problems = [line for line in self.console
                    if line.startswith(("error:", "warning:", "pageerror:")) or POLICY_WORDS.search(line)]
        assert not violations, f"{where}: CSP violations {violations}\nconsole: {self.console}"
        assert not problems, f"{where}: console errors/warnings {problems}\nconsole: {self.console}"

    async def assert_enforced(self, where: str) -> None:
        """An inline script injected into the page must be refused and reported (CSP is on)."""
        before = len(await self.violations())
        await self.page.evaluate("""() => {
          window.__inlineRan = false;
          const s = document.createElement("script");
          s.textContent = "window.__inlineRan = true";
          document.body.append(s);
        }""")
        await wait_for(lambda: self._more_violations(before), timeout=5, what=f"{where}: the violation report")
        assert await self.page.evaluate("window.__inlineRan") is False, f"{where}: inline script ran"
        report = (await self.violations())[before]
        assert report["directive"].startswith("script-src"), report

    async def _more_violations(self, before: int) -> bool:
        return len(await self.violations()) > before


async def watched(browser: Browser, **options: Any) -> Watched:
    context = await browser.new_context(**options)
    await context.add_init_script(RECORD_VIOLATIONS)
    page = await context.new_page()
    w = Watched(context, page)
    page.on("console", lambda msg: w.console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda err: w.console.append(f"pageerror: {err}"))
    # Which resource a "Failed to load resource" line is about (the console line does not say).
    page.on("response", lambda r: w.console.append(f"http {r.status}: {r.url}") if r.status >= 400 else None)
    return w


async def join_meeting(browser: Browser, server: RunningServer, room: str, name: str) -> Watched:
    w = await watched(browser, viewport={"width": 1280, "height": 720}, permissions=["camera", "microphone"])
    await w.page.goto(f"{server.url}/?room={room}")
    await w.page.fill("#name", name)
    await w.page.click("#open")
    await w.page.wait_for_url(re.compile(r"/r/"))
    await w.page.click("#join:not([disabled])")
    await wait_for(lambda: w.page.evaluate("window.convene.state().joined"), what=f"{name} to join")
    return w


async def test_landing_page_runs_clean_under_the_policy(browser: Browser, server: RunningServer) -> None:
    w = await watched(browser)
    try:
        response = await w.page.goto(f"{server.url}/")
        assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
        # The form still works (its script is a module from /static): a bad name shows an error.
        await w.page.fill("#room", "bad room!")
        await w.page.fill("#name", "Ann")
        await w.page.click("#open")
        await w.page.wait_for_selector("#form-error:not(:empty)")
        await w.assert_clean("landing page")
        await w.assert_enforced("landing page")
    finally:
        await w.context.close()


async def test_joined_meeting_runs_clean_under_the_policy(browser: Browser, server: RunningServer) -> None:
    alice = await join_meeting(browser, server, "csp-room", "Alice")
    bob = await join_meeting(browser, server, "csp-room", "Bob")
    try:
        # Bob's camera reaches Alice: signaling (ws: to self), media and tiles all ran under the policy.
        await wait_for(lambda: _remote_video_shown(alice), timeout=20, what="Bob's video at Alice")
        await alice.page.click("#open-people")
        await alice.page.wait_for_selector("#people-list li")
        await alice.page.click("#open-captions")
        await alice.page.wait_for_selector("#panel-captions:not([hidden])")
        if await alice.page.is_visible("#open-chat"):
            await alice.page.click("#open-chat")
        await alice.assert_clean("meeting page (Alice)")
        await bob.assert_clean("meeting page (Bob)")
        await alice.assert_enforced("meeting page")
    finally:
        await alice.context.close()
        await bob.context.close()


async def _remote_video_shown(person: Watched) -> bool:
    tiles = await person.page.evaluate("window.convene.tiles()")
    return any(not t["local"] and t["showsVideo"] for t in tiles)


async def test_chat_page_runs_clean_under_the_policy(browser: Browser, server: RunningServer) -> None:
    api = server.app[CHAT_API]
    for login in ("ann", "bob"):
        await api.service.add_user(None, login, "member")
    ann = await api.store.get_user("ann")
    assert ann is not None
    await api.service.create_channel(ann, "csp", "team", ["bob"])
    w = await watched(browser)
    try:
        await w.page.goto(f"{server.url}/chat?token={api.auth.mint_user_token('ann', 3600)}")
        await w.page.wait_for_selector("body[data-ready=true]")
        await w.page.click("li[data-name='csp'] a")
        await w.page.wait_for_selector(".cv-chat[data-ready=true]")
        await w.page.fill(".cv-composer textarea", "hello under **CSP** https://example.invalid/x")
        await w.page.press(".cv-composer textarea", "Enter")
        await w.page.wait_for_selector(".cv-msg:has-text('hello under')")
        await w.assert_clean("chat page")
        await w.assert_enforced("chat page")
    finally:
        await w.context.close()
