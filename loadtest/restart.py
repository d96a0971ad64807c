"""`python -m loadtest.restart`: how long media takes to flow again after the server restarts (#12).

A local `convene serve` (loadtest/local_server.py, its own data dir, pinned to core 0) hosts a small meeting
of load bots (in this process) and, with `--browser N`, of two headless Chromium participants. Each trial
kills the server (`--signal kill`: SIGKILL, as a crash; `term`: SIGTERM, which tells clients to reconnect),
starts it again on the same port and data dir at once, and times until every participant receives video
from every other again. Figures: p50 and p95 over the trials, from the kill, and the server's own start time.

    python -m loadtest.restart --trials 20 --bots 3 [--browser 10] [--signal kill|term] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.bot import Bot, BotContext
from loadtest.histogram import Histogram, percentile_of
from loadtest.layout import layout_named
from loadtest.local_server import LocalServer
from loadtest.media import MediaLibrary
from loadtest.messages import BotSpec
from loadtest.server_api import ServerApi
from loadtest.talk import TalkSchedule

PACE = 0.01
MEDIA_LIMIT = 60.0  # a trial whose media is not back by then counts as failed


@dataclass
class Trials:
    """Per trial: seconds from the kill until the server listened again, and until media flowed again."""

    who: str
    server_up: list[float] = field(default_factory=list)
    media_again: list[float] = field(default_factory=list)
    failed: int = 0

    def summary(self) -> dict[str, Any]:
        return {"who": self.who, "trials": len(self.media_again), "failed": self.failed,
                "media_again_p50_s": percentile_of(self.media_again, 50),
                "media_again_p95_s": percentile_of(self.media_again, 95),
                "media_again_max_s": max(self.media_again, default=None),
                "server_up_p50_s": percentile_of(self.server_up, 50),
                # The clients' own part: from the server listening again to media (backoff, join, ICE, keyframe).
                "after_listening_p50_s": percentile_of(self.after_listening, 50),
                "after_listening_p95_s": percentile_of(self.after_listening, 95)}

    @property
    def after_listening(self) -> list[float]:
        return [m - u for m, u in zip(self.media_again, self.server_up)]


async def wait_until(check: Callable[[], Awaitable[bool]], limit: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(interval)
    return False


async def restart(server: LocalServer, how: str) -> float:
    """Takes the server down and starts it again; returns when it listens (seconds since the kill)."""
    killed = time.monotonic()
    if how == "kill":
        server.kill()
    else:
        await asyncio.to_thread(server.terminate)
    await asyncio.to_thread(server.start)
    return time.monotonic() - killed


# -- bots ---------------------------------------------------------------------------------------------


class BotMeeting:
    """A few bots in one room, paced in this process as a load worker paces them."""

    def __init__(self, server: LocalServer, count: int, media: MediaLibrary) -> None:
        self.server = server
        self.count = count
        self.media = media
        self.bots: list[Bot] = []
        self._pacer: asyncio.Task[None] | None = None

    async def join(self, room: str) -> None:
        origin = time.monotonic()
        ctx = BotContext(url=self.server.url, room=room, layout=layout_named("speaker"), media=self.media,
                         simulcast=True, schedule=TalkSchedule(2, 1, lambda t: self.count), origin=origin,
                         run_latency=Histogram())
        async with aiohttp.ClientSession() as session:
            api = ServerApi(self.server.url, self.server.api_key, session)
            await api.create_room(room, 10)
            for i in range(self.count):
                bot = Bot(BotSpec(i, f"bot-{i:03d}", True), ctx)
                await bot.join(await api.token(room, bot.spec.identity, bot.spec.identity))
                self.bots.append(bot)
        self._pacer = asyncio.get_running_loop().create_task(self._pace())

    async def _pace(self) -> None:
        next_layout = 0.0
        while True:
            now = time.monotonic()
            for bot in self.bots:
                bot.tick(now)
            if now >= next_layout:
                next_layout = now + 0.5
                for bot in self.bots:
                    await bot.update_layout()
            await asyncio.sleep(PACE)

    def video_flows(self, since: float) -> bool:
        """Every bot received video after `since` from every other bot's current participant."""
        for bot in self.bots:
            wanted = {other.participant_id for other in self.bots if other is not bot}
            seen = {t.participant_id for t in bot.tracks.values()
                    if t.kind == "video" and t.last_at is not None and t.last_at > since}
            if not wanted <= seen:
                return False
        return True

    async def close(self) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
        await asyncio.gather(*(asyncio.wait_for(b.close(), 10) for b in self.bots), return_exceptions=True)


async def bot_trials(server: LocalServer, trials: int, count: int, how: str, cache_dir: Path,
                     out: Callable[[str], None]) -> Trials:
    media = MediaLibrary.load(await asyncio.to_thread(MediaLibrary.load_or_build, cache_dir, "360p"))
    meeting = BotMeeting(server, count, media)
    result = Trials(f"{count} bots")
    try:
        await meeting.join("restart-bots")
        for n in range(trials):
            if not await wait_until(lambda: _ready(meeting.video_flows(time.monotonic() - 0.5)), 30):
                raise RuntimeError("the bots' media did not flow before a trial")
            await asyncio.sleep(1.0)
            killed = time.monotonic()
            up = await restart(server, how)
            if await wait_until(lambda: _ready(meeting.video_flows(killed)), MEDIA_LIMIT):
                result.media_again.append(time.monotonic() - killed)
                result.server_up.append(up)
                out(f"bots trial {n + 1}: server up {up:.2f} s, media again {result.media_again[-1]:.2f} s")
            else:
                result.failed += 1
                out(f"bots trial {n + 1}: media not back within {MEDIA_LIMIT:.0f} s")
        out(f"bot reconnects {sum(b.reconnects for b in meeting.bots)}, per bot lost -> media p50 "
            f"{percentile_of([s for b in meeting.bots for s in b.recover_seconds], 50)}")
    finally:
        await meeting.close()
    return result


async def _ready(value: bool) -> bool:
    return value


# -- browsers -----------------------------------------------------------------------------------------


async def browser_trials(server: LocalServer, trials: int, how: str, out: Callable[[str], None],
                         time_budget: float) -> Trials:
    from playwright.async_api import async_playwright

    from tests.browser.conftest import CHROMIUM, chromium_args  # the flags the browser tests use

    result = Trials("2 Chromium participants")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args())
        try:
            pages = [await _browser_join(browser, server.url, "restart-web", name) for name in ("Alice", "Bob")]
            started = time.monotonic()
            for n in range(trials):
                if time.monotonic() - started > time_budget:
                    out(f"browser: stopped after {n} trials (time budget {time_budget:.0f} s)")
                    break
                if not await wait_until(lambda: _both_see_video(pages), 30, interval=0.1):
                    raise RuntimeError("the browsers' media did not flow before a trial")
                await asyncio.sleep(1.0)
                killed = time.monotonic()
                up = await restart(server, how)
                if await wait_until(lambda: _both_see_video(pages, after_reconnects=n + 1), MEDIA_LIMIT,
                                    interval=0.05):
                    result.media_again.append(time.monotonic() - killed)
                    result.server_up.append(up)
                    joined = [await p.evaluate("() => window.convene.state().lastReconnect?.seconds") for p in pages]
                    out(f"browser trial {n + 1}: server up {up:.2f} s, video again {result.media_again[-1]:.2f} s "
                        f"(pages joined again {', '.join(f'{j:.2f}' for j in joined if j is not None)} s after the loss)")
                else:
                    result.failed += 1
                    out(f"browser trial {n + 1}: video not back within {MEDIA_LIMIT:.0f} s")
        finally:
            await browser.close()
    return result


async def _browser_join(browser: Any, url: str, room: str, name: str) -> Any:
    context = await browser.new_context(viewport={"width": 960, "height": 540}, permissions=["camera", "microphone"])
    page = await context.new_page()
    await page.goto(f"{url}/?room={room}")
    await page.fill("#name", name)
    await page.click("#open")
    await page.click("#join:not([disabled])")
    if not await wait_until(lambda: page.evaluate("() => Boolean(window.convene?.state().joined)"), 20, 0.1):
        raise RuntimeError(f"{name} did not join")
    return page


VIDEO_SEEN = """async () => {
  const state = window.convene.state();
  if (!state.joined || state.reconnecting) return null;
  const stats = await window.convene.stats();
  const ids = new Set(state.participants.filter((p) => !p.isSelf && !p.away).map((p) => p.id));
  const frames = stats.tracks.filter((t) => ids.has(t.participant_id) && t.source === "camera")
    .reduce((sum, t) => sum + (t.framesDecoded || 0), 0);
  return {frames, others: ids.size, reconnects: state.reconnects};
}"""


async def _both_see_video(pages: list[Any], after_reconnects: int = 0) -> bool:
    """Each page receives decoded camera frames (that advance) from the other, after that many reconnects."""
    first = [await p.evaluate(VIDEO_SEEN) for p in pages]
    if any(s is None or s["others"] != 1 or s["reconnects"] < after_reconnects for s in first):
        return False
    await asyncio.sleep(0.1)
    second = [await p.evaluate(VIDEO_SEEN) for p in pages]
    return all(b is not None and b["frames"] > a["frames"] > 0 for a, b in zip(first, second))


# -- command line -------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    from sfu.webrtc import configure_ice

    configure_ice(include_loopback=True)  # the server is on loopback, as in the load workers
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)
    results = []
    with LocalServer(extra_args=("--no-captions",)) as server:
        say(f"convene serve at {server.url} (pinned: {server.pinning}); restart by {args.signal}")
        if args.trials > 0:
            results.append(await bot_trials(server, args.trials, args.bots, args.signal, args.cache_dir, say))
        if args.browser > 0:
            results.append(await browser_trials(server, args.browser, args.signal, say, args.browser_budget))
    return [r.summary() for r in results]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.restart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="bot trials (0: none)")
    parser.add_argument("--bots", type=int, default=3)
    parser.add_argument("--browser", type=int, default=0, help="browser trials (needs Playwright and Chromium)")
    parser.add_argument("--browser-budget", type=float, default=300.0, help="seconds of browser trials at most")
    parser.add_argument("--signal", choices=["kill", "term"], default="kill")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "convene" / "loadtest")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    random.seed(1)
    summaries = asyncio.run(main_async(args))
    for s in summaries:
        print(f"{s['who']}: {s['trials']} trials ({s['failed']} failed); media again after the kill: "
              f"p50 {_s(s['media_again_p50_s'])}, p95 {_s(s['media_again_p95_s'])}, max {_s(s['media_again_max_s'])}; "
              f"server listening again p50 {_s(s['server_up_p50_s'])}; from then to media p50 "
              f"{_s(s['after_listening_p50_s'])}, p95 {_s(s['after_listening_p95_s'])}")
    if args.json is not None:
        args.json.write_text(json.dumps(summaries, indent=1))
    return 0 if all(s["failed"] == 0 and s["trials"] for s in summaries) else 1


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
