"""The run second by second: what the workers received and sent, their CPU, the server's CPU and
memory; and the figures of any window of it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from loadtest.histogram import Histogram
from loadtest.messages import Joined, Tick
from loadtest.server_api import ServerSample


@dataclass
class Second:
    t: int  # seconds since the run's origin
    participants: int = 0
    packets: int = 0
    bytes: int = 0
    expected: int = 0
    unique: int = 0
    sent_packets: int = 0
    latency: Histogram = field(default_factory=Histogram)
    generator_cpu: float = 0.0  # CPU-seconds the workers used in this second
    worker_cpu: dict[int, float] = field(default_factory=dict)
    generator_wait: float = 0.0  # seconds the workers waited for a CPU in this second
    pacer_late_ms: float = 0.0
    server_cpu: float | None = None  # fraction of one core
    server_rss: int | None = None
    server_wait: float | None = None  # fraction of the second the server waited for a CPU

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("latency")
        out["loss"] = loss_of(self.expected, self.unique)
        out["latency_p50_ms"] = self.latency.percentile(50)
        out["latency_p95_ms"] = self.latency.percentile(95)
        return out


def loss_of(expected: int, unique: int) -> float | None:
    return None if expected <= 0 else max(0.0, (expected - unique) / expected)


@dataclass(frozen=True)
class WindowStats:
    start: float
    end: float
    participants: int
    packets: int
    bytes: int
    loss: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    server_cpu: float | None  # mean fraction of one core
    server_cpu_max: float | None
    server_rss_max: int | None
    generator_cpu: float  # mean fraction of one core, all workers
    worker_cpu_max: float  # the busiest worker's mean fraction of one core
    pacer_late_ms: float
    generator_wait: float  # mean fraction of a second the workers waited for a CPU
    server_wait: float | None

    @property
    def seconds(self) -> float:
        return max(1e-9, self.end - self.start)


def _spread(start: float, end: float) -> list[tuple[float, float]]:
    """The seconds [start, end) overlaps, each with its share of the interval (bounded: 60 s)."""
    if end - start <= 0 or end - start > 60:
        return [(end, 1.0)]
    out = []
    at = start
    for _ in range(62):
        if at >= end:
            break
        edge = min(end, float(int(at) + 1))
        out.append((at, (edge - at) / (end - start)))
        at = edge
    return out


class Timeline:
    def __init__(self, origin: float) -> None:
        self.origin = origin
        self.seconds: dict[int, Second] = {}
        self.joins: list[tuple[float, Joined]] = []  # (t, join)
        self.errors: list[str] = []
        self._bots: dict[int, int] = {}
        self._cpu: dict[int, float] = {}
        self._wait: dict[int, float] = {}
        self._last_at: dict[int, float] = {}
        self._server: ServerSample | None = None

    def _second(self, t: float) -> Second:
        key = max(0, int(t))
        second = self.seconds.get(key)
        if second is None:
            second = self.seconds[key] = Second(key)
        return second

    def add_tick(self, tick: Tick) -> None:
        t = tick.at - self.origin
        s = self._second(t)
        self._bots[tick.worker] = tick.bots
        s.participants = max(s.participants, sum(self._bots.values()))
        s.packets += tick.packets
        s.bytes += tick.bytes
        s.expected += tick.expected
        s.unique += tick.unique
        s.sent_packets += tick.sent_packets
        s.latency.merge(tick.latency)
        used = tick.cpu_seconds - self._cpu.get(tick.worker, tick.cpu_seconds)
        waited = tick.wait_seconds - self._wait.get(tick.worker, tick.wait_seconds)
        self._cpu[tick.worker] = tick.cpu_seconds
        self._wait[tick.worker] = tick.wait_seconds
        since = self._last_at.get(tick.worker, t - 1.0)
        self._last_at[tick.worker] = t
        # A late tick covers more than a second: spread its CPU over the seconds it covers.
        for second, share in _spread(since, t):
            bucket = self._second(second)
            bucket.generator_cpu += used * share
            bucket.worker_cpu[tick.worker] = bucket.worker_cpu.get(tick.worker, 0.0) + used * share
            bucket.generator_wait += waited * share
        s.pacer_late_ms = max(s.pacer_late_ms, tick.pacer_late_ms)
        self.joins.extend((t, j) for j in tick.joins)
        self.errors.extend(tick.errors)

    def add_server(self, sample: ServerSample) -> None:
        previous, self._server = self._server, sample
        s = self._second(sample.at - self.origin)
        s.server_rss = sample.rss_bytes
        elapsed = sample.wall_time - previous.wall_time if previous is not None else 0.0
        if previous is not None and elapsed > 0.2:
            s.server_cpu = (sample.cpu_seconds - previous.cpu_seconds) / elapsed
            if sample.wait_seconds is not None and previous.wait_seconds is not None:
                s.server_wait = (sample.wait_seconds - previous.wait_seconds) / max(0.2, sample.at - previous.at)

    def complete_until(self) -> float:
        """Run time before which every second has all its worker reports (ticks arrive late when a
        worker is busy: a second still being filled would show too little CPU and too few packets)."""
        return float(int(min(self._last_at.values(), default=0.0)))

    @property
    def participants(self) -> int:
        return sum(self._bots.values())

    def window(self, start: float, end: float) -> WindowStats:
        chosen = [s for k, s in sorted(self.seconds.items()) if start <= k < end]
        latency = Histogram()
        for s in chosen:
            latency.merge(s.latency)
        cpu = [s.server_cpu for s in chosen if s.server_cpu is not None]
        rss = [s.server_rss for s in chosen if s.server_rss is not None]
        waits = [s.server_wait for s in chosen if s.server_wait is not None]
        n = max(1, len(chosen))
        workers = {w for s in chosen for w in s.worker_cpu}
        worker_max = max((sum(s.worker_cpu.get(w, 0.0) for s in chosen) / n for w in workers), default=0.0)
        expected = sum(s.expected for s in chosen)
        unique = sum(s.unique for s in chosen)
        return WindowStats(
            start=start, end=end, participants=max((s.participants for s in chosen), default=0),
            packets=sum(s.packets for s in chosen), bytes=sum(s.bytes for s in chosen),
            loss=loss_of(expected, unique), latency_p50_ms=latency.percentile(50),
            latency_p95_ms=latency.percentile(95),
            server_cpu=sum(cpu) / len(cpu) if cpu else None, server_cpu_max=max(cpu) if cpu else None,
            server_rss_max=max(rss) if rss else None,
            generator_cpu=sum(s.generator_cpu for s in chosen) / n, worker_cpu_max=worker_max,
            pacer_late_ms=max((s.pacer_late_ms for s in chosen), default=0.0),
            generator_wait=sum(s.generator_wait for s in chosen) / n,
            server_wait=sum(waits) / len(waits) if waits else None)

    def rows(self) -> list[dict[str, Any]]:
        """One row a second; a second without a worker report keeps the previous participant count."""
        rows = []
        participants = 0
        for _, s in sorted(self.seconds.items()):
            row = s.row()
            if s.worker_cpu:
                participants = s.participants
            row["participants"] = participants
            rows.append(row)
        return rows
