"""The meeting record page (/m/{id}) and the captions panel's tools in 简体中文 for a zh-CN browser, and the record
page's switch to English without reloading (issue #13: every string from the one message catalogue)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page

from tests.browser.conftest import wait_for
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def text(page: Page, selector: str) -> str:
    return (await page.text_content(selector) or "").strip()


async def test_record_page_and_caption_tools_read_in_chinese(browser: Browser, server: RunningServer) -> None:
    context = await browser.new_context(locale="zh-CN", permissions=["camera", "microphone"])
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        await page.goto(f"{server.url}/?room=zh-record")
        await page.fill("#name", "小红")
        await page.click("#open")
        await page.wait_for_url(re.compile(r"/r/zh-record$"))
        await page.click("#join:not([disabled])")
        await wait_for(lambda: page.evaluate("window.convene.state().joined"), what="joined")

        # The captions panel's size picker and its options.
        await page.click("#open-captions")
        assert await text(page, ".captions__size span") == "字幕大小"
        options = await page.eval_on_selector_all("#caption-size option", "os => os.map(o => o.textContent)")
        assert options == ["小", "中", "大", "特大"]
        assert await text(page, "#captions-latest") == "最新字幕"

        # The meeting's record page, opened with a record token minted with the page's own meeting token.
        minted = await page.evaluate("""async () => {
            const token = sessionStorage.getItem('convene.token.zh-record');
            const r = await fetch('/v1/rooms/zh-record/record-token',
                                  {method: 'POST', headers: {Authorization: 'Bearer ' + token}});
            return await r.json();
        }""")
        record = await context.new_page()
        record.on("pageerror", lambda err: errors.append(str(err)))
        await record.goto(f"{server.url}/m/{minted['meeting_id']}#token={minted['token']}")
        await record.wait_for_selector("body[data-ready=true]")
        assert await record.title() == "会议：zh-record — Convene"
        assert await text(record, "#meeting-title") == "会议：zh-record"
        assert (await text(record, "#meeting-when")).endswith("仍在进行")
        assert await text(record, "#attendance-title") == "出席与发言时长"
        assert await text(record, "#attendance th") == "参会者"
        assert await text(record, "#transcript-title") == "转写"
        assert await record.get_attribute("#transcript-search", "placeholder") == "搜索转写内容"
        assert await text(record, "#mine-title") == "我的会议"
        assert await text(record, "#notes-title") == "会议纪要"
        assert await record.get_attribute('#downloads [data-format="md"]', "aria-label") == "下载 Markdown"
        spoke = await text(record, "#attendance td.num")
        assert re.fullmatch(r"\d+ 秒", spoke), spoke

        # Switched to English: the page is drawn again at once.
        await record.select_option(".lang-select", "en")
        await wait_for(lambda: _has(record, "#meeting-title", "Meeting: zh-record"), what="the title in English")
        assert (await text(record, "#meeting-when")).endswith("still running")
        assert await text(record, "#attendance-title") == "Attendance and speaking time"
        assert re.fullmatch(r"\d+ s", await text(record, "#attendance td.num"))
        assert await record.get_attribute("#transcript-search", "placeholder") == "Search the transcript"
        assert await record.title() == "Meeting: zh-record — Convene"
        assert errors == [], errors
    finally:
        await context.close()


async def _has(page: Page, selector: str, expected: str) -> bool:
    return await text(page, selector) == expected
