"""The interface in 简体中文 for a browser whose language is zh-CN — landing page, pre-join, meeting,
chat panel, a server error, dates — and the switch back to English, kept for the next page."""

from __future__ import annotations

import re

import pytest
from aiohttp import ClientSession
from playwright.async_api import Browser, Page

from tests.browser.conftest import wait_for
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PREJOIN_SCREENSHOT = "/tmp/convene-zh-prejoin.png"
MEETING_SCREENSHOT = "/tmp/convene-zh-meeting.png"


async def text(page: Page, selector: str) -> str:
    return (await page.text_content(selector) or "").strip()


async def test_chinese_browser_gets_a_chinese_interface_and_can_switch_to_english(
        browser: Browser, server: RunningServer) -> None:
    context = await browser.new_context(locale="zh-CN", permissions=["camera", "microphone"],
                                        viewport={"width": 1280, "height": 720})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        # The landing page, in Chinese from navigator.languages alone.
        await page.goto(f"{server.url}/")
        assert await page.evaluate("document.documentElement.lang") == "zh-CN"
        assert await text(page, "h1") == "发起或加入会议"
        assert await text(page, "label[for=room]") == "会议室名称"
        assert await text(page, "label[for=name]") == "你的名字"
        assert await text(page, "#open") == "进入会议"
        assert await page.title() == "Convene — 发起或加入会议"
        # Checked in the browser, and the server's error code in the reader's language.
        await page.fill("#room", "bad room!")
        await page.fill("#name", "小明")
        await page.click("#open")
        assert (await text(page, "#form-error")).startswith("会议室名称只能使用")
        async with ClientSession(headers={"Authorization": f"Bearer {server.api_key}"}) as http:
            made = await http.post(f"{server.url}/v1/rooms", json={"name": "invited-only"})
            assert made.status in (200, 201), await made.text()
        await page.fill("#room", "invited-only")
        await page.click("#open")
        await wait_for(lambda: text(page, "#form-error"), what="the invite_only error")
        assert await text(page, "#form-error") == "此会议室仅限受邀者加入，请向组织者索取邀请链接。"

        # Pre-join and the meeting.
        await page.fill("#room", "zh-room")
        await page.click("#open")
        await page.wait_for_url(re.compile(r"/r/zh-room$"))
        await page.wait_for_selector("#join:not([disabled])")
        assert await text(page, "#prejoin h1") == "准备好加入了吗？"
        assert await text(page, "#join") == "立即加入"
        assert await text(page, "label[for=prejoin-microphone]") == "麦克风"
        assert await text(page, "label[for=prejoin-camera]") == "摄像头"
        assert await page.get_attribute("#preview-mic", "aria-label") == "关闭麦克风"
        await page.screenshot(path=PREJOIN_SCREENSHOT)
        await page.click("#join")
        await wait_for(lambda: page.evaluate("window.convene.state().joined"), what="joined")
        await wait_for(lambda: _has(page, "#participant-count", "1 人在会议中"), what="the count in Chinese")
        assert await page.title() == "zh-room — Convene"
        assert await page.get_attribute("#leave", "aria-label") == "离开会议"
        assert await page.get_attribute("#toggle-mic", "aria-label") == "关闭麦克风"
        assert await text(page, "#end-room") == "为所有人结束会议"
        assert await text(page, "#copy-link") == "复制邀请链接"
        tile = (await page.evaluate("window.convene.tiles()"))[0]
        assert tile["name"] == "小明"
        assert await page.get_attribute(".tile--local", "aria-label") == "小明（你）"
        await page.click("#open-people")
        assert await text(page, "#people-title") == "参会者"
        assert await text(page, "#people-list small") == "（你）"

        # The chat panel: its own text, a message with its buttons and a time from Intl.
        await page.click("#open-chat")
        await page.wait_for_selector(".cv-chat[data-ready=true]")
        assert await text(page, "#panel-chat h2") == "聊天"
        assert await text(page, ".cv-send") == "发送"
        assert await text(page, ".cv-task-toggle") == "任务"
        assert await page.get_attribute(".cv-composer textarea", "placeholder") == "输入消息（支持 Markdown 和 @提及）"
        await page.fill(".cv-composer textarea", "大家好")
        await page.click(".cv-send")
        await page.wait_for_selector(".cv-msg:has-text('大家好') .cv-reply")
        assert await text(page, ".cv-msg .cv-reply") == "回复"
        assert await text(page, ".cv-msg .cv-recall") == "撤回"
        zh_time = await text(page, ".cv-msg .cv-head time")
        assert not re.search(r"AM|PM", zh_time), zh_time
        await page.screenshot(path=MEETING_SCREENSHOT)
        assert zh_time == await page.evaluate(
            "(t) => new Intl.DateTimeFormat('zh-CN', {hour: '2-digit', minute: '2-digit'}).format(new Date(t))",
            await _message_time_ms(page))

        # Switch to English: everything on the page follows at once, no reload, no rejoin.
        await page.select_option(".topbar .lang-select", "en")
        assert await page.evaluate("document.documentElement.lang") == "en"
        await wait_for(lambda: _has(page, "#participant-count", "1 in call"), what="the count in English")
        assert await page.get_attribute("#leave", "aria-label") == "Leave call"
        assert await page.get_attribute("#toggle-mic", "aria-label") == "Turn off microphone"
        assert await text(page, "#end-room") == "End meeting for all"
        assert await page.get_attribute(".tile--local", "aria-label") == "小明 (you)"
        assert await text(page, ".cv-send") == "Send"
        assert await text(page, ".cv-msg .cv-reply") == "Reply"
        en_time = await text(page, ".cv-msg .cv-head time")
        assert en_time == await page.evaluate(
            "(t) => new Intl.DateTimeFormat('en', {hour: '2-digit', minute: '2-digit'}).format(new Date(t))",
            await _message_time_ms(page))
        assert en_time != zh_time
        assert (await page.evaluate("window.convene.state()"))["joined"]

        # The choice is kept: the landing page opens in English although the browser says zh-CN.
        other = await context.new_page()
        await other.goto(f"{server.url}/")
        assert await text(other, "h1") == "Start or join a meeting"
        assert await other.evaluate("document.querySelector('.lang-select').value") == "en"
        await other.close()

        # Back to Chinese, then leave: the end screen (named by the call in English) reads in Chinese.
        await page.select_option(".topbar .lang-select", "zh-CN")
        await page.click("#leave")
        await page.wait_for_selector("#ended:not([hidden])")
        assert await text(page, "#ended-title") == "你已离开会议"
        assert await text(page, "#rejoin") == "重新加入" and await page.is_visible("#rejoin")
        assert await page.title() == "你已离开会议 — Convene"

        # The one refused request is the invite_only join above (the browser logs every 403).
        assert [e for e in errors if "status of 403" not in e] == [], errors
        assert len(errors) <= 1, errors
    finally:
        await context.close()


async def _has(page: Page, selector: str, expected: str) -> bool:
    return await text(page, selector) == expected


async def _message_time_ms(page: Page) -> float:
    """The first message's created_at, read back from the server through the page's own chat client."""
    return float(await page.evaluate("""async () => {
        const token = sessionStorage.getItem('convene.token.zh-room');
        const headers = {Authorization: 'Bearer ' + token};
        const id = document.querySelector('.cv-chat').dataset.channel;
        const r = await fetch('/v1/channels/' + id + '/messages?limit=1', {headers});
        return (await r.json()).messages[0].created_at * 1000;
    }"""))
