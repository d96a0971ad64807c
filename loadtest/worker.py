"""A generator process: runs its share of the bots in one asyncio loop, paces their senders every
10 ms, and reports to the coordinator over a pipe once a second (and a summary at the end)."""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp

from loadtest.bot import Bot, BotContext
from loadtest.histogram import Histogram
from loadtest.layout import layout_named
from loadtest.media import MediaLibrary
from loadtest.messages import (
    AddBots,
    BotSpec,
    Joined,
    Ready,
    Start,
    Stop,
    Tick,
    TrackSummary,
    WorkerResult,
)
from loadtest.server_api import ServerApi
from loadtest.settings import LoadSettings
from loadtest.talk import TalkSchedule

log = logging.getLogger("convene.loadtest.worker")

PACE = 0.01
REPORT_EVERY = 1.0


@dataclass(frozen=True)
class WorkerConfig:
    worker: int
    settings: LoadSettings
    media_path: Path
    deadline: float  # time.monotonic() by which the worker stops by itself, even if never told


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    """Entry point of the worker process."""
    logging.basicConfig(level=logging.WARNING)
    try:
        asyncio.run(Worker(conn, config).run())
    finally:
        conn.close()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_queue_seconds(pid: int | str = "self") -> float:
    """Seconds the (main thread of the) process waited for a CPU while runnable (Linux schedstat)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class Worker:
    def __init__(self, conn: Connection, config: WorkerConfig) -> None:
        self.conn = conn
        self.config = config
        self.bots: list[Bot] = []
        self.joining: set[asyncio.Task[None]] = set()
        self.run_latency = Histogram()
        self.pending_joins: list[Joined] = []
        self.errors: list[str] = []
        self._reported_errors = 0
        self._last = (0, 0, 0, 0, 0)  # packets, bytes, expected, unique, sent
        self._late_ms = 0.0
        self.stopping = False
        self._early: list[object] = []
        self.population = 0  # participants the run is heading for (talkers are chosen among them)

    async def run(self) -> None:
        from sfu.webrtc import configure_ice

        configure_ice(include_loopback=True)
        s = self.config.settings
        media = MediaLibrary.load(self.config.media_path)
        self._send(Ready(self.config.worker))
        start = await self._wait_for_start()
        if start is None:
            return
        schedule = TalkSchedule(s.speakers, s.seed, lambda t: min(s.publisher_count, self.population))
        ctx = BotContext(url=s.url, room=s.room, layout=layout_named(s.layout), media=media,
                         simulcast=s.simulcast, schedule=schedule, origin=start.origin,
                         run_latency=self.run_latency, compact_sdp=s.compact_sdp, counting_route=s.counting_route)
        deadline = min(self.config.deadline, start.deadline)
        limit = asyncio.Semaphore(max(1, s.join_concurrency))
        async with aiohttp.ClientSession() as session:
            api = ServerApi(s.url, s.api_key, session)
            next_report = time.monotonic() + REPORT_EVERY
            while time.monotonic() < deadline and not self.stopping:
                for command in self._commands():
                    if isinstance(command, AddBots):
                        self.population = max(self.population, command.population)
                        for spec in command.bots:
                            task = asyncio.create_task(self._join(spec, ctx, api, limit))
                            self.joining.add(task)
                            task.add_done_callback(self.joining.discard)
                    elif isinstance(command, Stop):
                        self.stopping = True
                before = time.monotonic()
                for bot in self.bots:
                    bot.tick(before)
                await asyncio.sleep(PACE)
                self._late_ms = max(self._late_ms, (time.monotonic() - before - PACE) * 1000)
                if time.monotonic() >= next_report:
                    next_report += REPORT_EVERY
                    self._report()
                    for bot in self.bots:
                        await bot.update_layout()
            await self._finish()

    async def _wait_for_start(self) -> Start | None:
        while time.monotonic() < self.config.deadline:
            commands = self._commands()
            for n, command in enumerate(commands):
                if isinstance(command, Start):
                    self._early = commands[n + 1:]  # bots may come in the same read as Start
                    return command
                if isinstance(command, Stop):
                    return None
            await asyncio.sleep(0.05)
        return None

    def _commands(self) -> list[object]:
        out, self._early = self._early, []
        for _ in range(100):
            if not self.conn.poll():
                break
            try:
                out.append(self.conn.recv())
            except EOFError:  # the coordinator is gone: stop
                out.append(Stop("coordinator gone"))
                break
        return out

    async def _join(self, spec: BotSpec, ctx: BotContext, api: ServerApi, limit: asyncio.Semaphore) -> None:
        bot = Bot(spec, ctx)
        async with limit:
            if self.stopping:
                return
            try:
                token = await api.token(ctx.room, spec.identity, spec.identity)
                await bot.join(token)
            except Exception as exc:  # noqa: BLE001 -- any failure of a join is reported, not fatal
                self.errors.append(f"{spec.identity}: join failed: {type(exc).__name__}: {exc}")
                await self._close(bot)
                return
        if self.stopping:
            await self._close(bot)
            return
        self.bots.append(bot)
        # What a join made (peer connections, SDP, DTLS state) lives as long as the bot: keep it out of later
        # full collections, whose pauses grow with the bots and stall every bot's pacing and receiving at once.
        gc.freeze()
        assert bot.join_seconds is not None
        self.pending_joins.append(Joined(spec.index, bot.join_seconds, bot.participant_id, bot.track_ids))

    def _report(self) -> None:
        tracks = [t for bot in self.bots for t in bot.all_tracks()]
        now = (sum(t.packets for t in tracks), sum(t.bytes for t in tracks), sum(t.expected for t in tracks),
               sum(t.unique for t in tracks), sum(b.packets_sent for b in self.bots))
        delta = [a - b for a, b in zip(now, self._last)]
        self._last = now
        alive = sum(1 for b in self.bots if b.client is not None and not b.client.closed.is_set())
        tick = Tick(worker=self.config.worker, at=time.monotonic(), bots=alive, packets=delta[0], bytes=delta[1],
                    expected=delta[2], unique=delta[3], latency=self.run_latency.take(), sent_packets=delta[4],
                    cpu_seconds=cpu_seconds(), wait_seconds=run_queue_seconds(), pacer_late_ms=self._late_ms, joins=self.pending_joins,
                    errors=self.errors[self._reported_errors:])
        self._reported_errors = len(self.errors)
        self.pending_joins = []
        self._late_ms = 0.0
        self._send(tick)

    def _send(self, message: object) -> None:
        try:
            self.conn.send(message)
        except (BrokenPipeError, OSError):
            self.stopping = True

    async def _finish(self) -> None:
        for bot in self.bots:
            bot.freeze()
        self._report()
        self.errors += [f"{b.spec.identity}: {b.failure}" for b in self.bots if b.failure is not None]
        self._send(WorkerResult(self.config.worker, self._track_summaries(),
                                [p for b in self.bots if (p := b.publisher_summary()) is not None], self.errors,
                                reconnects=sum(b.reconnects for b in self.bots),
                                recover_seconds=[s for b in self.bots for s in b.recover_seconds],
                                names={p: b.spec.identity for b in self.bots for p in b.participant_ids}))
        for task in list(self.joining):
            task.cancel()
        await asyncio.gather(*[self._close(b) for b in self.bots], return_exceptions=True)

    async def _close(self, bot: Bot) -> None:
        try:
            await asyncio.wait_for(bot.close(), 10)
        except Exception as exc:  # noqa: BLE001 -- closing is best effort; the server times peers out
            log.debug("closing %s: %s", bot.spec.identity, exc)

    def _track_summaries(self) -> list[TrackSummary]:
        by_track: dict[str, TrackSummary] = {}
        for bot in self.bots:
            for t in bot.all_tracks():
                s = by_track.get(t.track_id)
                if s is None:
                    s = by_track[t.track_id] = TrackSummary(t.track_id, t.participant_id, t.kind)
                s.subscriptions += 1
                s.receiving += int(t.packets > 0)
                s.packets += t.packets
                s.bytes += t.bytes
                s.expected += t.expected
                s.unique += t.unique
                s.recovered += t.recovered
                if t.first_at is not None and t.last_at is not None:
                    s.active_seconds += t.last_at - t.first_at
                if t.packets > 1:
                    s.jitter_ms.append(t.jitter * 1000)
                if t.time_to_first_frame is not None:
                    s.first_frame_s.append(t.time_to_first_frame)
                s.latency.merge(t.latency)
        return list(by_track.values())

