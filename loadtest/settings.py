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
    counting_route: bool = True  # bots count steady packets from the compiled route's records (CountingTarget)
    server_pid: int | None = None  # a server on this machine: also read how long it waited for a CPU

    @property
    def publisher_count(self) -> int:
        return self.participants if self.publishers is None else min(self.publishers, self.participants)

    def target_at(self, t: float) -> int:
        """How many bots a fixed run should have told to join `t` seconds in (at `join_rate` a second);
        a ramp keeps its own count (loadtest/ramp.py)."""
        return 0 if t < 0 else min(self.participants, 1 + int(t * self.join_rate))
