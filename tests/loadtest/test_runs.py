"""Load runs against a real server (the fixture) with real aiortc bots in worker processes on loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.run import run_load, write_reports
from loadtest.settings import LoadSettings, RampPlan, ServiceLevel
from loadtest.tables import summary_table
from tests.conftest import RunningServer


# These runs check the machinery (bots, workers, reports), not how fast this machine is while the rest of the
# suite shares its two cores: the service level is loose enough that only a broken run breaches it. What a
# room holds is measured by `convene loadtest` runs on an idle machine (README), not asserted here.
LOOSE = ServiceLevel(max_loss=0.05, max_latency_p95_ms=3000.0, max_join_p95_s=15.0)


def settings(server: RunningServer, cache: Path, **kw: object) -> LoadSettings:
    base: dict[str, object] = {"url": server.url, "api_key": server.api_key, "room": "load", "participants": 4,
                               "duration": 8.0, "cache_dir": cache, "quiet": True, "service_level": LOOSE}
    base.update(kw)
    return LoadSettings(**base)  # type: ignore[arg-type]


async def test_small_run_holds_and_writes_reports(server: RunningServer, media_cache: Path, tmp_path: Path) -> None:
    report = await run_load(settings(server, media_cache))
    s = report.summary
    assert s.participants == 4 and s.publishers == 4
    assert s.packets_received > 0 and s.packets_sent > 0
    assert s.loss is not None and s.latency_p95_ms is not None and s.latency_p50_ms is not None
    assert s.join_p95_s is not None
    assert s.server_cpu is not None and s.server_rss_mb
    # The seconds the bots joined in, read apart (#14's line is about them).
    assert s.joining_generator_cpu is not None and s.joining_generator_cpu > 0
    assert s.joining_server_cpu is not None and s.joining_server_cpu_max is not None
    assert 0 < s.joining_server_cpu <= s.joining_server_cpu_max
    assert "server CPU while joining" in summary_table(report)
    videos = [t for t in report.tracks if t.kind == "video"]
    assert len(videos) == 4 and all(t.receiving == 3 for t in videos)  # each bot sees the three others
    assert report.held and report.exit_code == 0, report.breaches
    written = write_reports(report, tmp_path / "report")
    data = json.loads(written[0].read_text())
    assert data["held"] is True and data["summary"]["packets_received"] == s.packets_received
    assert "api_key" not in data["settings"]
    html = written[1].read_text()
    assert html.count("<svg") == 3 and "Server CPU" in html


async def test_impossible_service_level_exits_non_zero(server: RunningServer, media_cache: Path,
                                                       tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling.cli", "loadtest", "--url", server.url, "--api-key", server.api_key, "--participants", "2",
        "--duration", "5", "--max-latency", "0.001", "--quiet", "--cache-dir", str(media_cache),
        "--report", str(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2])
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    text = out.decode()
    assert process.returncode == 1, text
    assert "service level NOT held: latency p95" in text
    assert (tmp_path / "report.json").exists() and (tmp_path / "report.html").exists()


def test_python_m_loadtest_has_the_same_command_line() -> None:
    result = subprocess.run([sys.executable, "-m", "loadtest", "--help"], capture_output=True, text=True,
                            timeout=30, cwd=Path(__file__).resolve().parents[2], check=False)
    assert result.returncode == 0 and "--ramp" in result.stdout and "--workers" in result.stdout


@pytest.mark.slow
async def test_ramp_finds_a_capacity(server: RunningServer, media_cache: Path) -> None:
    plan = RampPlan(step=2, interval=4.0, settle=1.0)
    report = await run_load(settings(server, media_cache, participants=6, duration=14.0, ramp=plan))
    assert report.ramp is not None
    assert report.ramp.steps[0].participants == 2
    assert report.ramp.capacity >= 2 and report.ramp.capacity in {s.participants for s in report.ramp.steps}
    assert report.exit_code == 0


@pytest.mark.slow
async def test_two_workers_share_the_bots(server: RunningServer, media_cache: Path) -> None:
    report = await run_load(settings(server, media_cache, workers=2, duration=7.0))
    assert report.summary.participants == 4
    assert report.summary.packets_received > 0
    assert not any("workers reported" in n for n in report.notes)
    assert {int(w) for row in report.timeline for w in row["worker_cpu"]} == {0, 1}
    assert report.held, report.breaches
