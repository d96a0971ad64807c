"""The end-of-run tables, as plain text (Markdown-compatible)."""

from __future__ import annotations

from loadtest.report import Report, Summary, TrackRow

MAX_TRACK_ROWS = 60


def fmt(value: float | None, spec: str = ".0f", suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:{spec}}{suffix}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join(lines)


def track_table(tracks: list[TrackRow]) -> str:
    rows = [[t.publisher, t.kind, f"{t.receiving}/{t.subscriptions}", str(t.packets), fmt(t.bitrate_kbps),
             pct(t.loss), fmt(t.latency_p50_ms), fmt(t.latency_p95_ms), fmt(t.jitter_p50_ms, ".1f"),
             fmt(t.first_frame_p50_s, ".2f")] for t in tracks[:MAX_TRACK_ROWS]]
    text = table(["publisher", "kind", "receiving", "packets", "kbit/s", "loss", "lat p50 ms", "lat p95 ms",
                  "jitter ms", "first frame s"], rows)
    if len(tracks) > MAX_TRACK_ROWS:
        text += f"\n({len(tracks) - MAX_TRACK_ROWS} more tracks in report.json)"
    return text


def summary_table(report: Report) -> str:
    s = report.summary
    rows = [
        ["participants (publishers)", f"{s.participants} ({s.publishers})"],
        ["layout", s.layout],
        ["tracks (video / audio)", f"{s.tracks_video} / {s.tracks_audio}"],
        ["subscriptions receiving", str(s.subscriptions_receiving)],
        ["packets received / sent", f"{s.packets_received:,} / {s.packets_sent:,}"],
        ["received bitrate", f"{s.received_mbps:.1f} Mbit/s"],
        ["loss", pct(s.loss)],
        ["latency p50 / p95", f"{fmt(s.latency_p50_ms)} / {fmt(s.latency_p95_ms)} ms"],
        ["latency p95 audio / video", f"{fmt(s.audio_latency_p95_ms)} / {fmt(s.video_latency_p95_ms)} ms"],
        ["join p50 / p95", f"{fmt(s.join_p50_s, '.2f')} / {fmt(s.join_p95_s, '.2f')} s"],
        ["first video frame p95", f"{fmt(s.first_frame_p95_s, '.2f')} s"],
        ["server CPU mean / max", f"{fmt(_p(s.server_cpu))} / {fmt(_p(s.server_cpu_max))} % of a core"],
        ["server CPU while joining: mean / busiest second (÷ generator)", _joining(s)],
        ["server memory", f"{fmt(s.server_rss_mb)} MB"],
        ["generator CPU", f"{s.generator_cpu:.0%} of a core ({s.generator_cores} cores available)"],
        ["keyframe requests / NACKed packets (publishers)", f"{s.keyframe_requests} / {s.nacks}"],
        ["judged window", f"{s.window_seconds:.0f} s"],
        ["reconnects (media again p50 / p95)",
         f"{s.reconnects} ({fmt(s.recover_p50_s, '.2f')} / {fmt(s.recover_p95_s, '.2f')} s)"],
    ]
    return table(["", "value"], rows)


def _joining(s: Summary) -> str:
    ratio = (s.joining_server_cpu / s.joining_generator_cpu
             if s.joining_server_cpu is not None and s.joining_generator_cpu else None)
    return (f"{fmt(_p(s.joining_server_cpu))} / {fmt(_p(s.joining_server_cpu_max))} % of a core "
            f"({fmt(ratio, '.2f')})")


def ramp_table(report: Report) -> str:
    if report.ramp is None:
        return ""
    rows = [[f"{st.participants}{' again' if st.retry else ''}", pct(st.window.loss), fmt(st.window.latency_p95_ms),
             fmt(st.join_p95_s, ".2f"), fmt(_p(st.window.server_cpu)), fmt(_p(st.window.server_wait)),
             f"{st.window.generator_cpu:.0%}", f"{st.window.generator_wait:.0%}",
             "held" if st.held else "; ".join(st.breaches)] for st in report.ramp.steps]
    return table(["participants", "loss", "lat p95 ms", "join p95 s", "server CPU %", "server CPU wait %",
                  "generator CPU", "generator wait", "verdict"], rows)


def _p(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100


def render(report: Report) -> str:
    parts = ["Per track (all subscribing bots)", track_table(report.tracks), "", "Summary", summary_table(report)]
    if report.ramp is not None:
        parts += ["", "Ramp", ramp_table(report)]
        found = (f"capacity: {report.ramp.capacity} participants" if report.ramp.broke else
                 f"capacity: at least {report.ramp.capacity} participants (the service level never broke)")
        parts.append(found)
    parts += [f"note: {n}" for n in report.notes]
    verdict = "service level held" if report.held else "service level NOT held: " + "; ".join(report.breaches)
    parts += ["", verdict]
    return "\n".join(parts)
