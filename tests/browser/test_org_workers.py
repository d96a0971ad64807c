"""A browser meeting of an organisation on a media worker (#10): `convene serve --workers 2 --per-worker 1` as a
real process, organisations made with the CLI, Chromium resolving their Hosts to loopback. With someone already in
w0, globex's guest opens globex's meeting page at globex's Host (served by w0), is placed on w1 at globex's Host
and w1's port, and joins there: the page's Content-Security-Policy lets it reach that worker's socket, the worker
accepts the page's Origin and knows the organisation by the Host."""

from __future__ import annotations

import pytest
from playwright.async_api import async_playwright

from tests.browser.conftest import CHROMIUM, chromium_args, wait_for
from tests.identity.test_orgs_workers import (ACME, GLOBEX, Http, Keys, served,  # noqa: F401 - the fixture
                                             someone_in_w0, standup_invites)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def browser_args(port: int) -> list[str]:
    """Ours, with the organisations' names on loopback, and their http pages counting as secure (a camera needs a
    secure context; only localhost and 127.0.0.1 are by themselves)."""
    pages = ",".join(f"http://{host}:{p}" for host in (ACME, GLOBEX) for p in (port, port + 1))
    rules = f"--host-resolver-rules=MAP {ACME} 127.0.0.1, MAP {GLOBEX} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
    return [rules if a.startswith("--host-resolver-rules") else a for a in chromium_args()] + [
        f"--unsafely-treat-insecure-origin-as-secure={pages}"]


async def test_an_organisations_browser_meeting_runs_on_the_media_worker(served: tuple[Http, Keys]) -> None:
    http, keys = served
    w0 = http.w0
    port = int(w0.rsplit(":", 1)[1])
    tokens = await standup_invites(http, keys)
    async with someone_in_w0(http, tokens[ACME]):  # w0 is full
        status, placed = await http.call(w0, "GET", "/v1/rooms/standup/placement", f"{GLOBEX}:{port}", tokens[GLOBEX])
        assert placed == {"worker": "w1", "ws_url": f"ws://{GLOBEX}:{port + 1}/v1/rooms/standup/ws"}, placed
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=browser_args(port))
            try:
                context = await browser.new_context(permissions=["camera", "microphone"])
                page = await context.new_page()
                console: list[str] = []
                page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
                response = await page.goto(f"http://{GLOBEX}:{port}/r/standup#token={tokens[GLOBEX]}")
                assert response is not None and response.ok
                policy = await response.header_value("content-security-policy") or ""
                assert f"ws://{GLOBEX}:{port + 1}" in policy, policy
                await page.click("#join:not([disabled])")
                try:
                    await wait_for(lambda: page.evaluate("window.convene.state().joined"), timeout=30,
                                   what="globex's guest to join on w1")
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\nconsole:\n" + "\n".join(console)) from None
                assert not [line for line in console if "Content Security Policy" in line], console
                # The guest is in w1's room (w1 had no room of globex's before), not in w0's.
                status, room = await http.call(http.w1, "GET", "/v1/rooms/standup", GLOBEX, keys.globex)
                assert status == 200 and [p["identity"] for p in room["participants"]] == ["guest-1"], room
            finally:
                await browser.close()
