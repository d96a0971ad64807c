"""Recovery for bots (#12): the server of a load run is killed (-9) and started again on the same port and
data dir; every bot gets back in by itself, media flows again, and the report counts the reconnects."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from loadtest.local_server import LocalServer
from loadtest.run import run_load
from loadtest.settings import LoadSettings
from loadtest.tables import render


async def participants(url: str, api_key: str, room: str) -> int:
    try:
        async with aiohttp.ClientSession() as http:
            response = await http.get(f"{url}/v1/rooms/{room}", headers={"Authorization": f"Bearer {api_key}"},
                                      timeout=aiohttp.ClientTimeout(total=2))
            return int((await response.json()).get("num_participants", 0)) if response.status == 200 else 0
    except (aiohttp.ClientError, TimeoutError):
        return 0


@pytest.mark.slow
async def test_bots_recover_from_a_killed_server_and_the_report_counts_it(media_cache: Path) -> None:
    with LocalServer(pin=False, extra_args=("--no-captions",)) as server:
        settings = LoadSettings(url=server.url, api_key=server.api_key, room="load", participants=3,
                                duration=14.0, cache_dir=media_cache, quiet=True)
        run = asyncio.create_task(run_load(settings))
        deadline = time.monotonic() + 30
        while await participants(server.url, server.api_key, "load") < 3:
            assert time.monotonic() < deadline and not run.done(), "the bots did not join"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # media flowing
        server.kill()
        await asyncio.to_thread(server.start)
        report = await asyncio.wait_for(run, 120)
    s = report.summary
    print(render(report))
    assert s.reconnects == 3, report.errors
    # Lost -> media again includes the server's own start (seconds on a loaded machine) and the backoff.
    assert s.recover_p50_s is not None and s.recover_p95_s is not None and s.recover_p95_s < 30
    assert not report.errors
    # Each bot published again as a new participant, and the other two received that media.
    videos = [t for t in report.tracks if t.kind == "video"]
    assert len(videos) == 6
    assert sorted(t.publisher for t in videos) == ["bot-000", "bot-000", "bot-001", "bot-001", "bot-002", "bot-002"]
    assert all(t.receiving == 2 and t.packets > 0 for t in videos)
    assert "reconnects (media again p50 / p95)" in render(report)
