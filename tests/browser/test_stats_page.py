"""The usage dashboard (/admin/stats) in a real Chromium: an owner signed in by password sees SVG charts drawn
from the rollups of seeded activity (each mark carries its series, day and value); a member without read_stats
sees the refusal and no charts; the page breaks no Content-Security-Policy rule."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from playwright.async_api import Browser, Page

from identity.appkeys import DATABASE
from stats.job import backfill
from tests.conftest import RunningServer
from tests.stats.seed import PASSWORD, seed

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def signed_in(browser: Browser, server: RunningServer, login: str, csp: list[str]) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 1200})
    page = await context.new_page()
    page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
    await page.goto(f"{server.url}/signin")
    await page.fill("#login", login)
    await page.fill("#password", PASSWORD)
    await page.click("#signin-submit")
    await page.wait_for_selector('body[data-ready="home"]')
    return page


async def test_the_dashboard_draws_charts_of_the_seeded_day(browser: Browser, server: RunningServer) -> None:
    seeded = await seed(server)
    today = datetime.now(timezone.utc).date()
    first = today - timedelta(days=6)
    await backfill(server.app[DATABASE], first, today)
    csp: list[str] = []

    olga = await signed_in(browser, server, "olga", csp)
    try:
        await olga.goto(f"{server.url}/admin/stats?from={first}&to={today}")
        await olga.wait_for_selector('body[data-ready="stats"]')
        charts = await olga.eval_on_selector_all("section[data-chart]", "s => s.map(e => e.dataset.chart)")
        assert charts == ["active", "clients", "kinds", "meetings", "minutes", "participants", "files", "bytes"]
        for chart in charts:
            assert await olga.locator(f'section[data-chart="{chart}"] svg').count() == 1

        async def value(series: str, day: object) -> float:
            return float(await olga.get_attribute(f'svg [data-series="{series}"][data-day="{day}"]', "data-value")
                         or "nan")

        assert await value("messages_by_client.web", today) == seeded.session_posts
        assert await value("messages_by_client.webhook", today) == seeded.hook_posts
        assert await value("messages_by_client.bot", today) == seeded.bot_posts
        assert await value("active_users.dau", today) == 4
        assert await value("active_users.dau", first) == 0  # a quiet day is drawn at 0
        assert await value("meetings", today) == 1
        assert await value("file_bytes", today) == seeded.file_bytes
        # Bars have height; one circle per day per line.
        heights = await olga.eval_on_selector_all('section[data-chart="clients"] rect[data-value]',
                                                  "rs => rs.map(r => Number(r.getAttribute('height')))")
        assert len(heights) == 6 and all(h > 0 for h in heights)  # web, api, bot, webhook, scheduled, system today
        dots = await olga.locator('section[data-chart="active"] circle[data-series="active_users.mau"]').count()
        assert dots == 7
        assert await olga.get_attribute("#stats-csv", "href") == f"/v1/admin/stats?from={first}&to={today}&format=csv"
        # The catalogue's Chinese labels.
        await olga.select_option("select.lang-select", "zh-CN")
        await olga.wait_for_function("document.querySelector('section[data-chart=\"active\"] h2').textContent === '活跃人数'")
    finally:
        await olga.context.close()

    ann = await signed_in(browser, server, "ann", csp)
    try:
        await ann.goto(f"{server.url}/admin/stats")
        await ann.wait_for_selector('body[data-ready="stats"]')
        assert (await ann.text_content("#stats-error") or "").strip()
        assert await ann.locator("section[data-chart]").count() == 0
    finally:
        await ann.context.close()
    assert csp == []
