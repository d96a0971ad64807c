"""The coordinator of a load run: prepares media, starts the workers, adds bots (all at once, or step
by step with --ramp), follows the server's metrics, and turns it all into a Report."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from loadtest.histogram import percentile_of
from loadtest.layout import layout_named
from loadtest.media import MediaLibrary
from loadtest.messages import BotSpec
from loadtest.progress import Progress
from loadtest.ramp import RampResult, RampState
from loadtest.report import Report, summarize, track_rows
from loadtest.server_api import ApiError, ServerApi
from loadtest.settings import LoadSettings
from loadtest.timeline import Timeline, WindowStats
from loadtest.worker import run_queue_seconds
from loadtest.workers import WorkerPool

SETTLE = 2.0  # seconds after the last join before a fixed run's window is judged
STARTUP_LIMIT = 120.0  # workers must be up by then
SATURATED = 0.9  # a worker at 90 % of its core is the bottleneck


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check(settings: LoadSettings) -> None:
    layout_named(settings.layout)
    if settings.participants < 1 or settings.duration <= 0 or settings.workers < 1:
        raise ValueError("participants, duration and workers must be positive")
    if settings.ramp is not None and (settings.ramp.step < 1 or settings.ramp.interval <= 0):
        raise ValueError("ramp step and interval must be positive")


async def poll_metrics(api: ServerApi, timeline: Timeline, stop: asyncio.Event, failures: list[str],
                       server_pid: int | None) -> None:
    for _ in range(1_000_000):  # bounded; ends with the run
        if stop.is_set():
            break
        try:
            sample = await api.metrics(time.monotonic())
            if server_pid is not None:
                sample = replace(sample, wait_seconds=run_queue_seconds(server_pid))
            timeline.add_server(sample)
        except (TimeoutError, ApiError, aiohttp.ClientError, KeyError, ValueError) as exc:
            if not failures:
                failures.append(f"server metrics unavailable: {exc}")
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


async def run_load(settings: LoadSettings, out: TextIO | None = None) -> Report:
    check(settings)
    out = out or sys.stderr
    media_path = await asyncio.to_thread(MediaLibrary.load_or_build, settings.cache_dir, settings.video)
    async with aiohttp.ClientSession() as session:
        api = ServerApi(settings.url, settings.api_key, session)
        await api.create_room(settings.room, min(1000, settings.participants + 10))
        pool = WorkerPool(settings, media_path, deadline=time.monotonic() + settings.duration + STARTUP_LIMIT + 60)
        try:
            await pool.wait_ready(STARTUP_LIMIT)
            return await _drive(settings, api, pool, out)
        finally:
            await pool.stop()


async def _drive(settings: LoadSettings, api: ServerApi, pool: WorkerPool, out: TextIO) -> Report:
    origin = time.monotonic()
    pool.start(origin, origin + settings.duration + 30)
    timeline = Timeline(origin)
    progress = Progress(settings.duration, settings.participants, out, enabled=not settings.quiet)
    stop_metrics = asyncio.Event()
    metric_failures: list[str] = []
    metrics = asyncio.create_task(poll_metrics(api, timeline, stop_metrics, metric_failures,
                                              settings.server_pid))
    added = 0
    ramp = None if settings.ramp is None else RampState(settings.ramp, settings.participants, settings.join_rate)
    t = 0.0
    for _ in range(int(settings.duration / 0.1) + 10):  # bounded: ten rounds a second for the duration
        t = time.monotonic() - origin
        if t >= settings.duration or (ramp is not None and ramp.done):
            break
        target = settings.target_at(t) if ramp is None else ramp.target(t)
        if target > added:
            population = settings.participants if ramp is None else ramp.goal
            pool.add([BotSpec(i, f"bot-{i:03d}", i < settings.publisher_count) for i in range(added, target)],
                     population)
            added = target
        for tick in pool.poll():
            timeline.add_tick(tick)
        if ramp is not None and ramp.due(t):
            ramp.advance(ramp.judge(settings, timeline, t), t)
        progress.show(timeline, t, target)
        await asyncio.sleep(0.1)
    end = time.monotonic() - origin
    if ramp is not None and not ramp.done and end - ramp.start >= ramp.plan.settle + 2:
        ramp.advance(ramp.judge(settings, timeline, end), end)
    progress.done()
    await pool.stop()
    for tick in pool.poll():
        timeline.add_tick(tick)
    stop_metrics.set()
    await metrics
    return _report(settings, timeline, pool, ramp.result() if ramp is not None else None, added, end,
                   metric_failures)


def _report(settings: LoadSettings, timeline: Timeline, pool: WorkerPool, ramp: RampResult | None, added: int,
            end: float, metric_failures: list[str]) -> Report:
    results = list(pool.results.values())
    tracks = [t for r in results for t in r.tracks]
    publishers = [p for r in results for p in r.publishers]
    joins = [j for _, j in timeline.joins]
    names = {j.participant_id: f"bot-{j.index:03d}" for j in joins}
    for result in results:  # a bot that reconnected published again as a new participant
        names.update(result.names)
    last_join = max((t for t, _ in timeline.joins), default=0.0)
    start = last_join + SETTLE if end - (last_join + SETTLE) >= 3 else 0.0
    window = timeline.window(start, end)
    cores = available_cores()
    first_join = min((t for t, _ in timeline.joins), default=None)
    joining = timeline.window(int(first_join), last_join + 1) if first_join is not None else None
    summary = summarize(tracks, publishers, window, [j.seconds for j in joins], added, settings.layout, cores,
                        reconnects=sum(r.reconnects for r in results),
                        recover_seconds=[s for r in results for s in r.recover_seconds], joining=joining)
    missing = added - len(joins)
    if ramp is not None:
        breaches = [] if ramp.capacity > 0 else (ramp.steps[0].breaches if ramp.steps else ["no step was judged"])
    else:
        breaches = settings.service_level.breaches(window.loss, window.latency_p95_ms,
                                                   percentile_of([j.seconds for j in joins], 95), window.packets)
        if missing:
            breaches.append(f"{missing} of {added} bots did not join")
    notes = list(metric_failures) + _generator_notes(window, cores, len(pool.conns)) + _joining_notes(timeline)
    if len(results) < len(pool.conns):
        notes.append(f"only {len(results)} of {len(pool.conns)} workers reported their results")
    settings_out: dict[str, Any] = {k: v for k, v in asdict(settings).items() if k != "api_key"}
    return Report(settings=settings_out, summary=summary, tracks=track_rows(tracks, names), timeline=timeline.rows(),
                  held=not breaches, breaches=breaches, notes=notes, ramp=ramp,
                  errors=timeline.errors + [e for r in results for e in r.errors if e not in timeline.errors])


def _generator_notes(window: WindowStats, cores: int, workers: int) -> list[str]:
    notes = []
    if window.worker_cpu_max >= SATURATED:
        notes.append(f"the load generator was the bottleneck: its busiest worker used "
                     f"{window.worker_cpu_max:.0%} of a core (try more --workers)")
    if window.generator_cpu >= SATURATED * min(cores, workers):
        notes.append(f"the load generator used {window.generator_cpu:.0%} of a core with {workers} worker(s) "
                     f"on {cores} core(s): its figures understate what the server could do")
    if window.pacer_late_ms > 100:
        notes.append(f"the generator's pacing fell up to {window.pacer_late_ms:.0f} ms behind")
    if window.generator_wait > 0.1:
        notes.append(f"the generator's workers waited for a CPU {window.generator_wait:.0%} of the time (other "
                     "processes had the cores): latency and loss include that wait")
    if window.server_wait is not None and window.server_wait > 0.05:
        notes.append(f"the server waited for a CPU {window.server_wait:.0%} of the time (other processes on its core)")
    return notes


def _joining_notes(timeline: Timeline) -> list[str]:
    """Whether the generator kept up while bots joined: each join makes every bot in the room answer a
    renegotiated subscriber offer, which costs the generator as much as the server."""
    joining = {int(t) + k for t, _ in timeline.joins for k in range(3)}
    seconds = [s for k, s in timeline.seconds.items() if k in joining and s.worker_cpu]
    if not seconds:
        return []
    busiest = max(sum(s.worker_cpu.get(w, 0.0) for s in seconds) / len(seconds)
                  for w in {w for s in seconds for w in s.worker_cpu})
    late = max(s.pacer_late_ms for s in seconds)
    if busiest < SATURATED and late < 300:
        return []
    return [(f"while bots joined, the generator was a bottleneck (busiest worker {busiest:.0%} of a core, pacing "
             f"up to {late:.0f} ms late): join times and latency then include its own delay")]


def write_reports(report: Report, directory: Path) -> list[Path]:
    from loadtest.html_report import write_html

    return [report.write_json(directory), write_html(report, directory)]
