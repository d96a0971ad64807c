"""The coordinator's side of the generator processes (`--workers N`): start them, hand out bots,
collect their reports without blocking the event loop, and stop them."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from loadtest.messages import AddBots, BotSpec, Ready, Start, Stop, Tick, WorkerResult
from loadtest.settings import LoadSettings
from loadtest.worker import WorkerConfig, worker_main


class WorkerPool:
    def __init__(self, settings: LoadSettings, media_path: Path, deadline: float) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads and a loop
        self.conns: list[Connection] = []
        self.processes: list[BaseProcess] = []
        for n in range(max(1, settings.workers)):
            ours, theirs = context.Pipe()
            config = WorkerConfig(worker=n, settings=settings, media_path=media_path, deadline=deadline)
            process = context.Process(target=worker_main, args=(theirs, config), name=f"loadtest-worker-{n}",
                                      daemon=True)
            process.start()
            theirs.close()
            self.conns.append(ours)
            self.processes.append(process)
        self.ticks: list[Tick] = []
        self.results: dict[int, WorkerResult] = {}
        self.ready: set[int] = set()
        self.lost: set[int] = set()
        self.stopped = False

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def poll(self) -> list[Tick]:
        """Messages that arrived; returns the new ticks."""
        new: list[Tick] = []
        for n, conn in enumerate(self.conns):
            if n in self.lost:
                continue
            for _ in range(1000):
                try:
                    if not conn.poll():
                        break
                    message = conn.recv()
                except (EOFError, OSError):
                    self.lost.add(n)
                    break
                if isinstance(message, Tick):
                    new.append(message)
                elif isinstance(message, Ready):
                    self.ready.add(message.worker)
                elif isinstance(message, WorkerResult):
                    self.results[message.worker] = message
        self.ticks.extend(new)
        return new

    async def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.ready) < len(self.conns):
            self.poll()
            if time.monotonic() > deadline or self.lost or not all(p.is_alive() for p in self.processes):
                raise RuntimeError(f"only {len(self.ready)} of {len(self.conns)} workers started")
            await asyncio.sleep(0.05)

    def start(self, origin: float, deadline: float) -> None:
        for n, conn in enumerate(self.conns):
            if n not in self.lost:
                conn.send(Start(origin, deadline))

    def add(self, bots: list[BotSpec], population: int) -> None:
        """Spreads bots over the workers by index."""
        for n, conn in enumerate(self.conns):
            mine = [b for b in bots if b.index % len(self.conns) == n]
            if mine and n not in self.lost:
                conn.send(AddBots(mine, population))

    async def stop(self, timeout: float = 30.0) -> None:
        if self.stopped:
            return
        self.stopped = True
        for n, conn in enumerate(self.conns):
            if n not in self.lost:
                try:
                    conn.send(Stop())
                except OSError:
                    self.lost.add(n)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if all(not p.is_alive() for p in self.processes):
                break
            await asyncio.sleep(0.05)
        self.poll()
        for process in self.processes:
            if process.is_alive():
                process.terminate()
            process.join(2)
        for conn in self.conns:
            conn.close()
