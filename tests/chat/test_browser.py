"""Two people in one channel in a real headless Chromium: live messages, unread counts, threads,
recall on both screens, tasks ticked off, a file one uploads the other downloads intact; and the
meeting page's panel with a meeting token."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat.web import CHAT_API
from signaling.appkeys import MEETINGS
from tests.conftest import RunningServer

playwright_api = pytest.importorskip("playwright.async_api")

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64




@pytest.mark.browser
@pytest.mark.slow
async def test_two_people_chat_live(server: RunningServer, browser: object, tmp_path: Path) -> None:
    api = server.app[CHAT_API]
    for login in ("ann", "bob"):
        await api.service.add_user(None, login, "member")
    ann_user = await api.store.get_user("ann")
    assert ann_user is not None
    await api.service.create_channel(ann_user, "proj", "team", ["bob"])
    expect = playwright_api.expect

    async def open_page(login: str):  # type: ignore[no-untyped-def]
        ctx = await browser.new_context(accept_downloads=True)  # type: ignore[attr-defined]
        page = await ctx.new_page()
        await page.goto(f"{server.url}/chat#token={api.auth.mint_user_token(login, 3600)}")
        await page.wait_for_selector("body[data-ready=true]")
        return page

    async def open_channel(page, name: str) -> None:  # type: ignore[no-untyped-def]
        await page.click(f"li[data-name='{name}'] a")
        await page.wait_for_selector(".cv-chat[data-ready=true]")

    async def say(page, text: str) -> None:  # type: ignore[no-untyped-def]
        await page.fill(".cv-composer textarea", text)
        await page.press(".cv-composer textarea", "Enter")

    ann, bob = await open_page("ann"), await open_page("bob")
    await open_channel(ann, "proj")
    await say(ann, "hello from **ann**")
    # Bob has not opened the channel: an unread count appears live.
    await expect(bob.locator("li[data-name='proj'] .cv-unread")).to_have_text("1")
    await open_channel(bob, "proj")
    await expect(bob.locator(".cv-msg", has_text="hello from ann")).to_have_count(1)
    await expect(bob.locator(".cv-msg strong", has_text="ann").first).to_be_visible()

    # Live both ways, and a reply in a thread.
    first = bob.locator(".cv-msg", has_text="hello from ann")
    await first.locator(".cv-reply").click()
    await say(bob, "reply from bob")
    await expect(ann.locator(".cv-thread .cv-msg", has_text="reply from bob")).to_have_count(1)

    # A recall disappears on both screens.
    await say(ann, "secret 42")
    await expect(bob.locator(".cv-msg", has_text="secret 42")).to_have_count(1)
    await ann.locator(".cv-msg", has_text="secret 42").locator(".cv-recall").click()
    for page in (ann, bob):
        await expect(page.locator(".cv-msg", has_text="secret 42")).to_have_count(0)
        await expect(page.locator(".cv-recalled")).to_have_count(1)

    # A task assigned to bob; bob ticks it off; ann sees it done.
    await ann.click(".cv-task-toggle")
    await ann.fill(".cv-task-form input[name=title]", "写周报")
    await ann.select_option(".cv-task-form select[name=assignee]", "bob")
    await ann.click(".cv-task-create")
    await bob.locator(".cv-task", has_text="写周报").locator(".cv-task-done").check()
    await expect(ann.locator(".cv-task--done", has_text="写周报")).to_have_count(1)

    # A file ann uploads, bob downloads intact.
    await ann.set_input_files(".cv-composer input[type=file]",
                              files=[{"name": "chart.png", "mimeType": "image/png", "buffer": PNG}])
    await ann.wait_for_selector(".cv-pending[data-ready=true]")
    await ann.click(".cv-send")
    link = bob.locator("a.cv-file", has_text="chart.png")
    await expect(link).to_have_count(1)
    async with bob.expect_download() as info:
        await link.click()
    download = await info.value
    target = tmp_path / "got.png"
    await download.save_as(target)
    assert target.read_bytes() == PNG

    # Search (CJK) from the panel.
    await bob.fill(".cv-search", "周报")
    await expect(bob.locator(".cv-results .cv-result", has_text="写周报")).to_have_count(1)

    # The meeting page's panel: a meeting token, the room's channel created on first use.
    meeting = await browser.new_context()  # type: ignore[attr-defined]
    page = await meeting.new_page()
    await page.goto(f"{server.url}/chat")
    token = await server.token("standup", "carol")
    await page.evaluate("""async (token) => {
        const { mountChatPanel } = await import('/static/chat/panel.js');
        document.body.innerHTML = '<div id="m" style="height:600px"></div>';
        window.panel = mountChatPanel(document.getElementById('m'), { room: 'standup', token });
    }""", token)
    await page.wait_for_selector(".cv-chat[data-ready=true]")
    await say(page, "carol joined the standup chat")
    await expect(page.locator(".cv-msg", has_text="carol joined")).to_have_count(1)
    meeting = await server.app[MEETINGS].live("standup")
    assert meeting is not None
    channel = await api.store.find_channel(meeting.meeting_id)  # the meeting's own channel
    assert channel is not None and channel.kind == "meeting" and channel.topic == "standup"
    await page.evaluate("window.panel.destroy()")
    assert await page.locator(".cv-chat").count() == 0
