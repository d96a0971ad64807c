"""The outcome of a load run as data: summary, per-track rows, timeline, ramp steps, verdict; and
the JSON file written to --report DIR."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadtest.histogram import Histogram, percentile_of
from loadtest.messages import PublisherSummary, TrackSummary
from loadtest.ramp import RampResult
from loadtest.timeline import WindowStats, loss_of


@dataclass(frozen=True)
class TrackRow:
    """One published track as all subscribing bots received it."""

    track_id: str
    publisher: str  # bot identity
    kind: str
    subscriptions: int
    receiving: int
    packets: int
    bitrate_kbps: float | None  # mean per receiving subscriber
    loss: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    jitter_p50_ms: float | None
    first_frame_p50_s: float | None


@dataclass(frozen=True)
class Summary:
    participants: int
    publishers: int
    layout: str
    tracks_video: int
    tracks_audio: int
    subscriptions_receiving: int
    packets_received: int
    packets_sent: int
    received_mbps: float
    loss: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    audio_latency_p95_ms: float | None
    video_latency_p95_ms: float | None
    join_p50_s: float | None
    join_p95_s: float | None
    first_frame_p95_s: float | None
    server_cpu: float | None  # mean fraction of one core over the judged window
    server_cpu_max: float | None
    server_rss_mb: float | None
    generator_cpu: float  # fraction of one core, all workers
    generator_cores: int
    keyframe_requests: int
    nacks: int
    window_seconds: float
    reconnects: int = 0  # bots that lost their connection (socket or ICE) and got back in
    recover_p50_s: float | None = None  # connection lost -> media received again
    recover_p95_s: float | None = None
    # The seconds in which bots joined (#14's line: the server below ~70 % of its core while a hundred join).
    # The bots' CPU rises and falls with the server's on a shared host: their ratio reads the host's speed out.
    joining_server_cpu: float | None = None  # mean fraction of one core
    joining_server_cpu_max: float | None = None  # the busiest second
    joining_generator_cpu: float | None = None


@dataclass
class Report:
    settings: dict[str, Any]
    summary: Summary
    tracks: list[TrackRow]
    timeline: list[dict[str, Any]]
    held: bool
    breaches: list[str]
    notes: list[str] = field(default_factory=list)
    ramp: RampResult | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.held else 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_json(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "report.json"
        path.write_text(json.dumps(self.to_dict(), indent=1, default=str))
        return path


def track_rows(tracks: list[TrackSummary], names: dict[str, str]) -> list[TrackRow]:
    merged: dict[str, TrackSummary] = {}
    for t in tracks:
        if t.track_id in merged:
            merged[t.track_id].merge(t)
        else:
            merged[t.track_id] = TrackSummary(t.track_id, t.participant_id, t.kind)
            merged[t.track_id].merge(t)
    rows = []
    for t in sorted(merged.values(), key=lambda t: (names.get(t.participant_id, t.participant_id), t.kind)):
        bitrate = t.bytes * 8 / t.active_seconds / 1000 if t.active_seconds > 0 else None
        rows.append(TrackRow(
            track_id=t.track_id, publisher=names.get(t.participant_id, t.participant_id), kind=t.kind,
            subscriptions=t.subscriptions, receiving=t.receiving, packets=t.packets,
            bitrate_kbps=bitrate,
            loss=loss_of(t.expected, t.unique), latency_p50_ms=t.latency.percentile(50),
            latency_p95_ms=t.latency.percentile(95), jitter_p50_ms=percentile_of(t.jitter_ms, 50),
            first_frame_p50_s=percentile_of(t.first_frame_s, 50)))
    return rows


def summarize(tracks: list[TrackSummary], publishers: list[PublisherSummary], window: WindowStats,
              join_seconds: list[float], participants: int, layout: str, cores: int, reconnects: int = 0,
              recover_seconds: list[float] | None = None, joining: WindowStats | None = None) -> Summary:
    def latency_of(kind: str) -> float | None:
        h = Histogram()
        for t in tracks:
            if t.kind == kind:
                h.merge(t.latency)
        return h.percentile(95)

    kinds = {t.track_id: t.kind for t in tracks}
    video_first = [s for t in tracks if t.kind == "video" for s in t.first_frame_s]
    return Summary(
        participants=participants, publishers=len(publishers), layout=layout,
        tracks_video=sum(1 for k in kinds.values() if k == "video"),
        tracks_audio=sum(1 for k in kinds.values() if k == "audio"),
        subscriptions_receiving=sum(t.receiving for t in tracks),
        packets_received=sum(t.packets for t in tracks), packets_sent=sum(p.packets_sent for p in publishers),
        received_mbps=window.bytes * 8 / window.seconds / 1e6, loss=window.loss,
        latency_p50_ms=window.latency_p50_ms, latency_p95_ms=window.latency_p95_ms,
        audio_latency_p95_ms=latency_of("audio"), video_latency_p95_ms=latency_of("video"),
        join_p50_s=percentile_of(join_seconds, 50), join_p95_s=percentile_of(join_seconds, 95),
        first_frame_p95_s=percentile_of(video_first, 95),
        server_cpu=window.server_cpu, server_cpu_max=window.server_cpu_max,
        server_rss_mb=window.server_rss_max / 2**20 if window.server_rss_max is not None else None,
        generator_cpu=window.generator_cpu, generator_cores=cores,
        keyframe_requests=sum(p.keyframe_requests for p in publishers), nacks=sum(p.nacked for p in publishers),
        window_seconds=window.seconds, reconnects=reconnects,
        recover_p50_s=percentile_of(recover_seconds or [], 50), recover_p95_s=percentile_of(recover_seconds or [], 95),
        joining_server_cpu=joining.server_cpu if joining else None,
        joining_server_cpu_max=joining.server_cpu_max if joining else None,
        joining_generator_cpu=joining.generator_cpu if joining else None)
