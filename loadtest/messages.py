"""What the coordinator and its worker processes tell each other over a pipe (pickled dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field

from loadtest.histogram import Histogram

# -- coordinator -> worker ----------------------------------------------------------------------


@dataclass(frozen=True)
class BotSpec:
    index: int
    identity: str
    publishes: bool


@dataclass(frozen=True)
class Start:
    origin: float  # the run's t = 0, time.monotonic() (one clock for every process on the machine)
    deadline: float  # stop by then whatever happens


@dataclass(frozen=True)
class AddBots:
    bots: list[BotSpec]
    population: int  # participants the run (or the ramp step) is heading for: who may talk


@dataclass(frozen=True)
class Stop:
    reason: str = "done"


# -- worker -> coordinator ----------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    worker: int


@dataclass(frozen=True)
class Joined:
    index: int
    seconds: float  # socket opened -> joined and (if publishing) media flowing up
    participant_id: str
    track_ids: list[str]


@dataclass(frozen=True)
class Tick:
    """One worker's interval report: counters since the last tick, CPU so far."""

    worker: int
    at: float  # time.monotonic()
    bots: int  # joined and alive
    packets: int
    bytes: int
    expected: int
    unique: int
    latency: Histogram
    sent_packets: int
    cpu_seconds: float  # the worker process, cumulative
    wait_seconds: float  # cumulative time it was runnable but waited for a CPU (another process had it)
    pacer_late_ms: float  # the worst delay of its 10 ms pacing loop in the interval
    joins: list[Joined] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class TrackSummary:
    """One published track as the subscribing bots of one worker received it."""

    track_id: str
    participant_id: str
    kind: str
    subscriptions: int = 0  # bots whose subscriber connection carried it
    receiving: int = 0  # of those, how many got at least one packet
    packets: int = 0
    bytes: int = 0
    expected: int = 0
    unique: int = 0
    recovered: int = 0
    active_seconds: float = 0.0  # summed over subscriptions, first to last packet
    jitter_ms: list[float] = field(default_factory=list)
    first_frame_s: list[float] = field(default_factory=list)
    latency: Histogram = field(default_factory=Histogram)

    def merge(self, other: TrackSummary) -> None:
        self.subscriptions += other.subscriptions
        self.receiving += other.receiving
        self.packets += other.packets
        self.bytes += other.bytes
        self.expected += other.expected
        self.unique += other.unique
        self.recovered += other.recovered
        self.active_seconds += other.active_seconds
        self.jitter_ms.extend(other.jitter_ms)
        self.first_frame_s.extend(other.first_frame_s)
        self.latency.merge(other.latency)


@dataclass(frozen=True)
class PublisherSummary:
    index: int
    participant_id: str
    packets_sent: int
    keyframe_requests: int
    nacked: int
    resent: int
    late_frames: int


@dataclass(frozen=True)
class WorkerResult:
    worker: int
    tracks: list[TrackSummary]
    publishers: list[PublisherSummary]
    errors: list[str]
    reconnects: int = 0  # times its bots got back in after losing their connection
    recover_seconds: list[float] = field(default_factory=list)  # per reconnect: lost -> media received again
    names: dict[str, str] = field(default_factory=dict)  # every participant id its bots had -> bot identity
