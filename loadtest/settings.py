"""What a load run is asked to do, and the service level it must hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ServiceLevel:
    """The run fails when any of these is exceeded (defaults after the issue: 1 %, 400 ms, 3 s)."""

    max_loss: float = 0.01  # fraction of packets
    max_latency_p95_ms: float = 400.0
    max_join_p95_s: float = 3.0

    def breaches(self, loss: float | None, latency_p95_ms: float | None, join_p95_s: float | None,
                 packets: int) -> list[str]:
        """What was not held; an empty list means the level was held. No packets at all is a breach."""
        out = []
        if packets <= 0:
            out.append("no media arrived")
        if loss is not None and loss > self.max_loss:
            out.append(f"loss {loss:.2%} > {self.max_loss:.2%}")
        if latency_p95_ms is not None and latency_p95_ms > self.max_latency_p95_ms:
            out.append(f"latency p95 {latency_p95_ms:.0f} ms > {self.max_latency_p95_ms:.0f} ms")
        if join_p95_s is not None and join_p95_s > self.max_join_p95_s:
            out.append(f"join p95 {join_p95_s:.2f} s > {self.max_join_p95_s:.2f} s")
        return out


@dataclass(frozen=True)
class RampPlan:
    """`--ramp`: start with `step` participants, add `step` more every `interval` seconds."""

    step: int = 5
    interval: float = 10.0
    settle: float = 3.0  # seconds after a step's last join before its window is judged

    def target_at(self, t: float, maximum: int) -> int:
        """How many participants should be in the room `t` seconds into the run."""
        if t < 0:
            return 0
        return min(maximum, self.step * (1 + int(t // self.interval)))


@dataclass(frozen=True)
class LoadSettings:
    url: str
    api_key: str
    room: str = "load"
    participants: int = 4
    publishers: int | None = None  # None: everyone publishes
    speakers: int = 3
    layout: str = "speaker"
    duration: float = 30.0
    video: str = "360p"  # the top layer's resolution
    simulcast: bool = True
    ramp: RampPlan | None = None
    workers: int = 1
    report_dir: Path | None = None
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "convene" / "loadtest")
    service_level: ServiceLevel = field(default_factory=ServiceLevel)
    join_concurrency: int = 4  # joins in flight per worker
    join_rate: float = 10.0  # bots told to join per second
    seed: int = 1
    quiet: bool = False
    compact_sdp: bool = True  # subscriber answers as a max-bundle client writes them (loadtest/sdp.py)
    server_pid: int | None = None  # a server on this machine: also read how long it waited for a CPU

    @property
    def publisher_count(self) -> int:
        return self.participants if self.publishers is None else min(self.publishers, self.participants)

    def population_at(self, t: float) -> int:
        """How many participants the run (or the ramp step) holds at `t`, once everyone has joined."""
        return self.participants if self.ramp is None else self.ramp.target_at(t, self.participants)

    def target_at(self, t: float) -> int:
        """How many bots should have been told to join `t` seconds in: the run's (or the ramp step's)
        number, reached at `join_rate` bots a second from the start of the run (or step)."""
        if t < 0:
            return 0
        if self.ramp is None:
            base, goal, since = 0, self.participants, t
        else:
            step = int(t // self.ramp.interval)
            base = self.ramp.target_at(step * self.ramp.interval - self.ramp.interval, self.participants)
            goal = self.ramp.target_at(t, self.participants)
            since = t - step * self.ramp.interval
        return min(goal, base + 1 + int(since * self.join_rate))
