"""The watermark (#11) in headless Chromium against a real server: with the organisation's setting "all", the chat
page (signed in by password: the text comes from the session) shows the overlay with the viewer's login, clicks go
through it, deleting or restyling it brings it back within a second, and the tampering is in the audit log
(once: a minute per person). The meeting page draws it over the stage: remote video and a screen share."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page

from chat.web import CHAT, CHAT_API
from tests.browser.conftest import wait_for
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

PASSWORD = "correct horse battery"
OVERLAY = ".cv-chat .cv-watermark"


async def admin(server: RunningServer, method: str, path: str, body: Any = None) -> Any:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, server.url + path, json=body,
                                headers={"Authorization": f"Bearer {server.api_key}"}) as r:
            text = await r.text()
            assert r.status in (200, 201), (path, r.status, text)
            return json.loads(text) if r.content_type == "application/json" else text


async def tamper_events(server: RunningServer) -> list[dict[str, Any]]:
    text = await admin(server, "GET", "/v1/audit?event=watermark.tamper")
    return [json.loads(line)["event"] for line in text.splitlines()]


async def overlay(page: Page, selector: str = OVERLAY) -> dict[str, Any] | None:
    found: dict[str, Any] | None = await page.evaluate("""(selector) => {
        const el = document.querySelector(selector);
        if (!el) return null;
        const cs = getComputedStyle(el), r = el.getBoundingClientRect(), host = el.parentElement.getBoundingClientRect();
        return { text: el.dataset.watermarkText, tampered: Number(el.dataset.tampered), pointerEvents: cs.pointerEvents,
                 display: cs.display, opacity: cs.opacity, image: cs.backgroundImage.slice(0, 30),
                 rect: [r.left, r.top, r.width, r.height], host: [host.left, host.top, host.width, host.height],
                 last: el.parentElement.lastElementChild === el };
    }""", selector)
    return found


async def test_chat_overlay_shows_the_session_login_takes_no_clicks_and_comes_back(
        browser: Browser, server: RunningServer) -> None:
    await server.app[CHAT].add_user(None, "wanda", "member", name="Wanda Mark")
    accounts = server.app[CHAT_API].accounts
    assert accounts is not None
    await accounts.set_password("wanda", PASSWORD)
    await admin(server, "PATCH", "/v1/org", {"watermark": "all"})
    channel = await admin(server, "POST", "/v1/channels", {"name": "vault", "kind": "team", "members": ["wanda"]})
    context = await browser.new_context(viewport={"width": 1100, "height": 700})
    try:
        signin = await context.request.post(server.url + "/v1/auth/login",
                                            data={"login": "wanda", "password": PASSWORD})
        assert signin.ok, await signin.text()
        page = await context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        # A page parameter naming someone else changes nothing: the text is the session's.
        await page.goto(f"{server.url}/chat?watermark_text=ceo&login=ceo#{channel['id']}")
        await page.wait_for_selector(".cv-chat[data-ready='true']", timeout=15000)
        await page.wait_for_selector(OVERLAY, state="attached", timeout=5000)
        day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        drawn = await overlay(page)
        assert drawn is not None
        assert drawn["text"] == f"Wanda Mark · wanda · {day}"
        assert drawn["pointerEvents"] == "none" and drawn["display"] == "block" and drawn["opacity"] == "1"
        assert drawn["image"].startswith('url("blob:'), drawn
        assert drawn["rect"] == drawn["host"] and drawn["last"], drawn  # it covers the whole panel, on top
        assert await page.get_attribute(".cv-chat", "data-watermark") == "all"
        await page.wait_for_timeout(1000)
        steady = await overlay(page)
        assert steady is not None and steady["tampered"] == 0, steady  # its own drawing is not tampering

        # A click on a button under the overlay reaches the button.
        box = await page.locator(".cv-task-toggle").bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        under = await page.evaluate("([x, y]) => document.elementFromPoint(x, y)?.className", [x, y])
        assert under == "cv-task-toggle", under
        await page.mouse.click(x, y)
        await page.wait_for_selector(".cv-task-form:not([hidden])", timeout=2000)

        # Deleting the node: it is back within a second.
        started = time.monotonic()
        in_page_ms = await page.evaluate("""async (s) => {
            const t0 = performance.now();
            document.querySelector(s).remove();
            await Promise.resolve();  // the MutationObserver's callback runs at this microtask checkpoint
            while (!document.querySelector(s)) await new Promise((r) => setTimeout(r, 5));
            return performance.now() - t0;
        }""", OVERLAY)
        back_after = time.monotonic() - started
        assert in_page_ms < 1000 and back_after < 1.0, (in_page_ms, back_after)
        again = await overlay(page)
        assert again is not None and again["text"] == drawn["text"] and again["tampered"] == 1
        print(f"overlay redrawn {in_page_ms:.1f} ms after its removal (in the page; {back_after * 1000:.0f} ms "
              "seen from the test)")

        # Restyled (hidden, made transparent, pushed under): put right within a second each time.
        for script in ("el.style.display = 'none'", "el.style.setProperty('opacity', '0', 'important')",
                       "el.style.zIndex = '-1'", "el.hidden = true"):
            await page.evaluate(f"(s) => {{ const el = document.querySelector(s); {script}; }}", OVERLAY)
            await wait_for(lambda: _upright(page), timeout=1.0, interval=0.05, what=f"the overlay after {script}")
        final = await overlay(page)
        assert final is not None and final["tampered"] == 5, final

        # One audit row: the page reports at most once a minute (and the server records at most that).
        events = await wait_for(lambda: tamper_events(server), what="the watermark.tamper event")
        assert len(events) == 1, events
        (event,) = events
        assert event["actor"]["login"] == "wanda" and event["actor"]["credential"] == "session"
        assert event["after"] == {"page": "chat", "what": "removed"}
        assert not [e for e in errors if "Content Security Policy" in e], errors
    finally:
        await context.close()


async def _upright(page: Page) -> bool:
    drawn = await overlay(page)
    return bool(drawn and drawn["display"] == "block" and drawn["opacity"] == "1" and drawn["last"]
                and drawn["rect"] == drawn["host"])


async def test_important_setting_marks_only_flagged_messages(browser: Browser, server: RunningServer) -> None:
    await server.app[CHAT].add_user(None, "ivy", "member", name="Ivy")
    token = server.app[CHAT_API].auth.mint_user_token("ivy", 3600)
    channel = await admin(server, "POST", "/v1/channels", {"name": "board", "kind": "team", "members": ["ivy"]})
    await admin(server, "PATCH", f"/v1/channels/{channel['id']}", {"watermark": "important"})
    await admin(server, "POST", "/v1/messages", {"to": channel["id"], "content": "plain"})
    flagged = await admin(server, "POST", "/v1/messages", {"to": channel["id"], "content": "secret",
                                                            "important": True})
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(f"{server.url}/chat#token={token}")
        await page.wait_for_selector("body[data-ready='true']", timeout=15000)
        await page.click(f"#team li[data-id='{channel['id']}'] a")
        await page.wait_for_selector(".cv-chat[data-ready='true']", timeout=15000)
        selector = f"li.cv-msg[data-id='{flagged['id']}'] > .cv-watermark"
        await page.wait_for_selector(selector, state="attached", timeout=5000)
        assert await page.locator(".cv-watermark").count() == 1  # the flagged message only, not the panel
        assert await page.locator(f"li.cv-msg[data-id='{flagged['id']}'] .cv-important-mark").count() == 1
        drawn = await overlay(page, selector)
        assert drawn is not None and drawn["text"].startswith("Ivy · ivy · ")
        # Ivy posts one flagged herself, with the composer's toggle: it is covered too.
        await page.check("input[name=important]")
        await page.fill(".cv-composer textarea", "mine, important")
        await page.click(".cv-send")
        await wait_for(lambda: page.locator("li.cv-important > .cv-watermark").count(), what="her message")
        await wait_for(lambda: _count(page, "li.cv-important > .cv-watermark", 2), what="two covered messages")
    finally:
        await context.close()


async def _count(page: Page, selector: str, n: int) -> bool:
    return await page.locator(selector).count() == n


# Whether each screen-share and camera video lies inside the stage's watermark, and the watermark's z-index.
COVERAGE = """() => {
        const mark = document.querySelector("#stage > .cv-watermark").getBoundingClientRect();
        const inside = (el) => { const r = el.getBoundingClientRect();
            return r.width > 0 && r.left >= mark.left && r.top >= mark.top && r.right <= mark.right && r.bottom <= mark.bottom; };
        const z = Number(getComputedStyle(document.querySelector("#stage > .cv-watermark")).zIndex);
        return { screens: [...document.querySelectorAll("#stage .stage__screens video")].map(inside),
                 people: [...document.querySelectorAll("#stage .stage__people video")].map(inside), z };
    }"""


async def test_meeting_stage_is_covered_over_remote_video_and_screen_share(join, server: RunningServer) -> None:
    await admin(server, "PATCH", "/v1/org", {"watermark": "all"})
    alice = await join("wm-room", "Alice")
    bob = await join("wm-room", "Bob")
    stage = "#stage > .cv-watermark"
    await bob.page.wait_for_selector(stage, state="attached", timeout=15000)
    drawn = await overlay(bob.page, stage)
    assert drawn is not None and drawn["rect"] == drawn["host"] and drawn["last"], drawn
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert drawn["text"].startswith("Bob · ") and drawn["text"].endswith(day), drawn
    assert await bob.page.get_attribute("#stage", "data-watermark") == "all"

    await alice.page.click("#toggle-screen")
    await bob.page.wait_for_selector("#stage .stage__screens .tile video", timeout=20000)
    # The people strip lays itself out again when the screen share arrives: coverage is read once both tiles are
    # placed (bounded; the same assertions follow).
    async def placed() -> Any:
        got = await bob.page.evaluate(COVERAGE)
        return got if len(got["people"]) >= 2 and all(got["people"]) else None

    covered = await wait_for(placed, timeout=5.0, what="Alice's and Bob's camera tiles placed under the watermark")
    assert covered["screens"] and all(covered["screens"]), covered
    assert len(covered["people"]) >= 2 and all(covered["people"]), covered  # Alice's camera (remote) and Bob's
    assert covered["z"] > 1_000_000
    # Removed on the meeting page: drawn again, and reported as the meeting's.
    await bob.page.evaluate("(s) => document.querySelector(s).remove()", stage)
    await bob.page.wait_for_selector(stage, state="attached", timeout=1000)
    events = await wait_for(lambda: tamper_events(server), what="the meeting's watermark.tamper event")
    assert events[0]["after"]["page"] == "meeting" and events[0]["actor"]["credential"] == "meeting_token"
