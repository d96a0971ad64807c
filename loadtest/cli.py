"""`convene loadtest` / `python -m loadtest`: the command line of the load tester."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from loadtest.layout import LAYOUT_NAMES
from loadtest.settings import LoadSettings, RampPlan, ServiceLevel

DESCRIPTION = """Load-test a Convene server with bots that join like browsers (signaling + WebRTC),
publish pre-encoded VP8 (simulcast) and Opus speech, and count what they receive without decoding.
Exit status: 0 when the service level held, 1 when it did not, 2 when the run could not start."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default="http://127.0.0.1:8080", help="server URL (default %(default)s)")
    p.add_argument("--api-key", default=None, help="an admin API key (convene keys create --name loadtest)")
    p.add_argument("--spawn-server", action="store_true",
                   help="run `convene serve` on a free loopback port for this run (server pinned to core 0, "
                        "bots to the others); --url and --api-key are then ignored")
    p.add_argument("--room", default="load")
    p.add_argument("--participants", type=int, default=4, help="bots in the room (with --ramp: the most)")
    p.add_argument("--publishers", type=int, default=None, help="how many of them publish (default: all)")
    p.add_argument("--speakers", type=int, default=3, help="publishers talking at a time")
    p.add_argument("--layout", choices=LAYOUT_NAMES, default="speaker",
                   help="videos each bot asks for: speaker = 1 high + 5 low, gridNxN = N*N tiles")
    p.add_argument("--duration", type=float, default=30.0, help="seconds; every run stops by itself")
    p.add_argument("--video", choices=["360p", "540p", "720p"], default="360p", help="top simulcast layer")
    p.add_argument("--no-simulcast", action="store_true", help="publish the top layer only")
    p.add_argument("--ramp", action="store_true", help="add participants step by step until the level breaks")
    p.add_argument("--ramp-step", type=int, default=5, help="participants added per step")
    p.add_argument("--ramp-interval", type=float, default=10.0, help="seconds per step")
    p.add_argument("--join-rate", type=float, default=10.0, help="bots joining per second (default %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="generator processes")
    p.add_argument("--report", type=Path, default=None, metavar="DIR", help="write report.json and report.html")
    p.add_argument("--max-loss", type=float, default=1.0, help="service level: loss %% (default 1)")
    p.add_argument("--max-latency", type=float, default=400.0, help="service level: latency p95 ms")
    p.add_argument("--max-join", type=float, default=3.0, help="service level: join p95 seconds")
    p.add_argument("--full-sdp", action="store_true",
                   help="answer with aiortc's full SDP (over 64 KiB, refused by the server, past ~20 participants)")
    p.add_argument("--bots-parse-packets", action="store_true",
                   help="bots parse every packet in Python, without the compiled receive route's records "
                        "(to measure what the records save)")
    p.add_argument("--cache-dir", type=Path, default=None, help="where pre-encoded media is kept")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quiet", action="store_true", help="no progress line")


def settings_from_args(args: Any, url: str, api_key: str) -> LoadSettings:
    extra: dict[str, Any] = {}
    if args.cache_dir is not None:
        extra["cache_dir"] = args.cache_dir
    return LoadSettings(
        url=url, api_key=api_key, room=args.room, participants=args.participants,
        publishers=args.publishers, speakers=args.speakers, layout=args.layout, duration=args.duration,
        video=args.video, simulcast=not args.no_simulcast,
        ramp=RampPlan(step=args.ramp_step, interval=args.ramp_interval) if args.ramp else None,
        workers=args.workers, report_dir=args.report, compact_sdp=not args.full_sdp,
        counting_route=not args.bots_parse_packets, join_rate=args.join_rate, seed=args.seed, quiet=args.quiet,
        service_level=ServiceLevel(max_loss=args.max_loss / 100, max_latency_p95_ms=args.max_latency,
                                   max_join_p95_s=args.max_join), **extra)


async def run_and_report(settings: LoadSettings) -> int:
    from loadtest.run import run_load, write_reports
    from loadtest.tables import render

    report = await run_load(settings)
    print(render(report), flush=True)
    if settings.report_dir is not None:
        for path in write_reports(report, settings.report_dir):
            print(f"wrote {path}", flush=True)
    return report.exit_code


def run_from_args(args: Any) -> int:
    try:
        if args.spawn_server:
            from loadtest.local_server import LocalServer

            with LocalServer() as server:
                print(f"started convene serve at {server.url} (pinned: {server.pinning})", file=sys.stderr)
                settings = replace(settings_from_args(args, server.url, server.api_key), server_pid=server.pid)
                return asyncio.run(run_and_report(settings))
        if not args.api_key:
            print("convene loadtest: --api-key is required (or --spawn-server)", file=sys.stderr)
            return 2
        return asyncio.run(run_and_report(settings_from_args(args, args.url, args.api_key)))
    except Exception as exc:  # noqa: BLE001 -- bad settings, a server that does not answer, workers that do not start
        print(f"convene loadtest: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=DESCRIPTION)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
