"""Signing in on /signin in a real headless Chromium: a wrong password shows the translated refusal, the right
one opens /chat signed in (the page names the person and lists their channel) with the session cookie set."""

from __future__ import annotations

from typing import Any

import pytest

from chat.web import CHAT_API
from tests.conftest import RunningServer

playwright_api = pytest.importorskip("playwright.async_api")


@pytest.mark.browser
async def test_sign_in_opens_chat(server: RunningServer, browser: Any) -> None:
    api = server.app[CHAT_API]
    user, _ = await api.service.add_user(None, "mona", "member", name="Mona Lisa")
    await api.accounts.set_password("mona", "correct horse battery")
    await api.service.create_channel(user, "atelier", "team", [])
    expect = playwright_api.expect
    ctx = await browser.new_context()
    page = await ctx.new_page()
    problems: list[str] = []  # CSP violations and script errors (no inline script or style is allowed)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    response = await page.goto(f"{server.url}/signin")
    assert response is not None and "script-src" in response.headers["content-security-policy"]
    await page.fill("#login", "mona")
    await page.fill("#password", "wrong password")
    await page.click("#signin-submit")
    await expect(page.locator("#form-error")).to_have_text("Wrong login or password.")
    assert page.url.endswith("/signin")

    assert not [p for p in problems if "401" not in p], problems  # the refused sign-in's 401 is logged
    await page.fill("#password", "correct horse battery")
    await page.click("#signin-submit")
    await page.wait_for_url(f"{server.url}/")  # the home page, which links to chat
    await page.goto(f"{server.url}/chat")
    await page.wait_for_selector("body[data-ready=true]")
    await expect(page.locator("#me")).to_have_text("Mona Lisa")
    await expect(page.locator("li[data-name='atelier']")).to_have_count(1)
    cookies = {c["name"]: c for c in await ctx.cookies()}
    assert cookies["convene_session"]["httpOnly"] and cookies["convene_session"]["sameSite"] == "Lax"

    # A new tab has no token of its own (sessionStorage is per tab): the session cookie signs it in, the live
    # socket opens with it, and a message posted there (a write: it needs the CSRF header) arrives.
    tab = await ctx.new_page()
    await tab.goto(f"{server.url}/chat")
    await tab.wait_for_selector("body[data-ready=true]")
    await expect(tab.locator("#me")).to_have_text("Mona Lisa")
    await tab.click("li[data-name='atelier'] a")
    await tab.wait_for_selector(".cv-chat[data-ready=true]")
    await tab.fill(".cv-composer textarea", "from the cookie tab")
    await tab.press(".cv-composer textarea", "Enter")
    await expect(tab.locator(".cv-msg", has_text="from the cookie tab")).to_have_count(1)
    channel = await api.service.resolve("atelier")
    assert [m.content for m in (await api.store.history(channel.id, None, None, 10))] == ["from the cookie tab"]
    assert not [p for p in problems if "401" not in p], problems
    await ctx.close()
