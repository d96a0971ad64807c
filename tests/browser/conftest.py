"""Real-browser fixtures: one headless Chromium per session, one context per participant, and the
real Convene server in-process on the same event loop (everything on the session loop)."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import RunningServer, running_server, server_config

try:
    from playwright.async_api import Browser, BrowserContext, Page, async_playwright
except ImportError:  # pragma: no cover - the test extra is not installed
    async_playwright = None

CHROMIUM = os.environ.get("CONVENE_TEST_CHROMIUM", "/usr/lib/chromium/chromium")

# Ours; merged with Playwright's own list below (Chromium honours only the LAST --disable-features).
OUR_DISABLED_FEATURES = ["WebRtcHideLocalIpsWithMdns"]

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--auto-select-desktop-capture-source=Entire screen",
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
]


def playwright_disabled_features() -> list[str]:
    """The features Playwright itself disables, read from its driver bundle (it passes them as one
    --disable-features flag that ours would otherwise silently replace)."""
    import playwright

    lib = Path(playwright.__file__).parent / "driver" / "package" / "lib"
    for candidate in (lib / "coreBundle.js", lib / "server" / "chromium" / "chromiumSwitches.js"):
        if not candidate.exists():
            continue
        source = candidate.read_text(encoding="utf-8", errors="replace")
        match = re.search(r"disabledFeatures = \[(.*?)\]", source, re.S)
        if match:
            body = re.sub(r"//[^\n]*", "", match.group(1))
            return re.findall(r'"([A-Za-z0-9_]+)"', body)
    return []


def chromium_args() -> list[str]:
    features = playwright_disabled_features() + OUR_DISABLED_FEATURES
    return CHROMIUM_FLAGS + ["--disable-features=" + ",".join(dict.fromkeys(features))]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if async_playwright is None or not Path(CHROMIUM).exists():
        pytest.skip("needs Playwright and Chromium at " + CHROMIUM)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args())
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """The real server, in-process on the session loop (the browser fixture's loop)."""
    async with running_server(server_config(tmp_path / "data")) as running:
        yield running


@dataclass
class BrowserParticipant:
    """One person in the meeting: their own browser context (own fake camera and microphone)."""

    name: str
    context: BrowserContext
    page: Page
    console: list[str] = field(default_factory=list)

    async def state(self) -> dict[str, Any]:
        return await self.page.evaluate("window.convene.state()")

    async def stats(self) -> dict[str, Any]:
        return await self.page.evaluate("window.convene.stats()")

    async def tiles(self) -> list[dict[str, Any]]:
        return await self.page.evaluate("window.convene.tiles()")

    async def close(self) -> None:
        await self.context.close()


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float = 15.0, interval: float = 0.25,
                   what: str = "condition") -> Any:
    """Polls an async check until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


@pytest_asyncio.fixture(loop_scope="session")
async def join(browser: Browser, server: RunningServer) -> AsyncIterator[Callable[..., Awaitable[BrowserParticipant]]]:
    """join(room, name): a participant who opened `/`, typed the room and their name, and joined."""
    people: list[BrowserParticipant] = []

    async def _join(room: str, name: str, viewport: dict[str, int] | None = None) -> BrowserParticipant:
        context = await browser.new_context(viewport=viewport or {"width": 1280, "height": 720},
                                            permissions=["camera", "microphone"])
        page = await context.new_page()
        person = BrowserParticipant(name, context, page)
        page.on("console", lambda msg: person.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: person.console.append(f"pageerror: {err}"))
        people.append(person)
        await page.goto(f"{server.url}/?room={room}")
        await page.fill("#name", name)
        await page.click("#open")
        await page.wait_for_url(re.compile(r"/r/[^/?#]+$"))
        await page.click("#join:not([disabled])")
        try:
            await wait_for(lambda: page.evaluate("window.convene.state().joined"), what=f"{name} to join")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nconsole of {name}:\n" + "\n".join(person.console)) from None
        return person

    yield _join
    for person in people:
        await person.context.close()
