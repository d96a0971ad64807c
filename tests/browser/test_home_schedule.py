"""Scheduling from the home page, in a real Chromium: Ann (signed in, Berlin time) fills the small Schedule form
for a meeting five minutes ahead with Ben invited; it shows under her Upcoming. Ben, signed in in another browser
in Chinese and Shanghai time, finds it under his Upcoming with its time in his language and zone and a Join
button (it starts within 10 minutes), has Ann's chat message about it, and joins the room as himself. No address
either browser visited carries a token."""

from __future__ import annotations

import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser

from tests.browser.test_home import Visits, people, sign_in
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def test_schedule_from_home_and_the_invitee_sees_it_under_upcoming(browser: Browser,
                                                                         server: RunningServer) -> None:
    await people(server)
    visits = Visits()
    ann = await sign_in(browser, server, "ann", visits, timezone_id="Europe/Berlin", locale="en-GB")
    try:
        assert await ann.is_visible("#upcoming-empty")
        await ann.click("#schedule summary")
        start = datetime.fromtimestamp(time.time() + 5 * 60, ZoneInfo("Europe/Berlin"))
        await ann.fill("#schedule-title", "Launch review")
        await ann.fill("#schedule-when", start.strftime("%Y-%m-%dT%H:%M"))
        await ann.select_option("#schedule-duration", "45")
        await ann.fill("#schedule-invitees", "ben")
        await ann.click("#schedule-submit")
        mine = ann.locator("#upcoming-meetings li[data-scheduled]")
        await mine.first.wait_for()
        assert "Launch review" in await ann.inner_text("#schedule-status")
        assert "Launch review" in await mine.first.inner_text()
        assert await mine.first.locator("button[data-join]").count() == 1  # within 10 minutes of the start
        plan_id = await mine.first.get_attribute("data-scheduled")
        assert plan_id and plan_id.startswith("sm_")
    finally:
        await ann.context.close()

    ben = await sign_in(browser, server, "ben", visits, timezone_id="Asia/Shanghai", locale="zh-CN")
    try:
        item = ben.locator(f'#upcoming-meetings li[data-scheduled="{plan_id}"]')
        await item.wait_for()
        text = await item.inner_text()
        assert "Launch review" in text and "ann" in text
        # The start in Ben's zone (Shanghai), written the Chinese way (Intl, zh-CN).
        there = datetime.fromtimestamp(start.timestamp(), ZoneInfo("Asia/Shanghai"))
        assert f"{there.hour}:{there.minute:02d}" in text and "年" in text, text
        assert await item.locator("a[download]").get_attribute("href") == f"/v1/meetings/scheduled/{plan_id}.ics"
        # Ann's direct message about it is unread on Ben's home page.
        direct = ben.locator("#home-direct li").filter(has_text="ann")
        assert int(await direct.get_attribute("data-unread") or "0") >= 1
        join = item.locator("button[data-join]")
        room = await join.get_attribute("data-join")
        assert room and re.fullmatch(r"[a-z]{3}-[a-z]{4}-[a-z]{3}", room)
        await join.click()
        await ben.wait_for_url(f"{server.url}/r/{room}")
        await ben.wait_for_selector("#prejoin-as:not([hidden])")
        assert await ben.inner_text("#prejoin-name") == "Ben Wu"
        visits.assert_no_tokens()
    finally:
        await ben.context.close()
