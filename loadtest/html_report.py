"""report.html: the tables and three plots drawn as inline SVG (no JavaScript): server CPU, loss and
latency over time, each against the number of participants in the room."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.report import Report
from loadtest.tables import ramp_table, summary_table, track_table

W, H = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 60, 30, 40


@dataclass(frozen=True)
class Series:
    name: str
    points: list[tuple[float, float]]
    color: str


def _scale(values: list[float], lo: float = 0.0) -> float:
    top = max([lo, *values]) if values else 1.0
    return top * 1.1 if top > 0 else 1.0


def _tick(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _polyline(points: list[tuple[float, float]], x_max: float, y_max: float, color: str, dash: str = "") -> str:
    if not points:
        return ""
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    coords = " ".join(f"{LEFT + x / x_max * pw:.1f},{TOP + ph - min(y, y_max) / y_max * ph:.1f}" for x, y in points)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.8"{extra} points="{coords}"/>'


def chart(title: str, unit: str, series: list[Series], participants: list[tuple[float, float]]) -> str:
    """A time chart of `series` (left axis) with the participant count (right axis, dashed grey)."""
    xs = [x for s in series for x, _ in s.points] + [x for x, _ in participants]
    x_max = max(xs, default=1.0) or 1.0
    y_max = _scale([y for s in series for _, y in s.points])
    p_max = _scale([y for _, y in participants], 1.0)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" '
            f'font-size="11"><title>{html.escape(title)}</title>'),
           f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{html.escape(title)}</text>',
           f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for i in range(5):
        frac = i / 4
        y = TOP + ph - frac * ph
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_tick(y_max * frac)}</text>')
        out.append(f'<text x="{LEFT + pw + 6}" y="{y + 4:.1f}" fill="#777">{p_max * frac:.0f}</text>')
        x = LEFT + frac * pw
        out.append(f'<text x="{x:.1f}" y="{TOP + ph + 16}" text-anchor="middle">{x_max * frac:.0f}s</text>')
    out.append(f'<text x="14" y="{TOP + ph / 2}" transform="rotate(-90 14 {TOP + ph / 2})" '
               f'text-anchor="middle">{html.escape(unit)}</text>')
    out.append(f'<text x="{W - 12}" y="{TOP + ph / 2}" transform="rotate(90 {W - 12} {TOP + ph / 2})" '
               f'text-anchor="middle" fill="#777">participants</text>')
    out.append(_polyline(participants, x_max, p_max, "#888", "5,4"))
    for n, s in enumerate(series):
        out.append(_polyline(s.points, x_max, y_max, s.color))
        out.append(f'<text x="{LEFT + 10 + n * 150}" y="{H - 6}" fill="{s.color}">■ {html.escape(s.name)}</text>')
    out.append(f'<text x="{LEFT + 10 + len(series) * 150}" y="{H - 6}" fill="#888">- - participants</text>')
    out.append("</svg>")
    return "\n".join(out)


def _points(rows: list[dict[str, Any]], key: str, scale: float = 1.0) -> list[tuple[float, float]]:
    return [(float(r["t"]), float(r[key]) * scale) for r in rows if r.get(key) is not None]


def render_html(report: Report) -> str:
    rows = report.timeline
    participants = _points(rows, "participants")
    charts = [
        chart("Server CPU", "% of one core", [
            Series("server", _points(rows, "server_cpu", 100), "#c0392b"),
            Series("load generator", [(float(r["t"]), float(r["generator_cpu"]) * 100) for r in rows], "#2980b9"),
            Series("server waiting for a CPU", _points(rows, "server_wait", 100), "#f39c12"),
        ], participants),
        chart("Packet loss", "% of packets", [Series("loss", _points(rows, "loss", 100), "#8e44ad")], participants),
        chart("End-to-end latency", "ms", [
            Series("p50", _points(rows, "latency_p50_ms"), "#27ae60"),
            Series("p95", _points(rows, "latency_p95_ms"), "#d35400"),
        ], participants),
    ]
    verdict = ("<p class=ok>Service level held.</p>" if report.held else
               "<p class=bad>Service level NOT held: " + html.escape("; ".join(report.breaches)) + "</p>")
    notes = "".join(f"<p class=note>{html.escape(n)}</p>" for n in report.notes)
    settings = html.escape(", ".join(f"{k}={v}" for k, v in report.settings.items() if k != "api_key"))
    ramp = ""
    if report.ramp is not None:
        ramp = (f"<h2>Ramp: capacity {report.ramp.capacity}{'' if report.ramp.broke else '+'} participants</h2>"
                f"<pre>{html.escape(ramp_table(report))}</pre>")
    errors = "".join(f"<li>{html.escape(e)}</li>" for e in report.errors[:50])
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Convene load test</title>
<style>body{{font-family:sans-serif;margin:24px;max-width:1100px}} pre{{font-size:12px;background:#f7f7f7;
padding:8px;overflow-x:auto}} .ok{{color:#1e8449;font-weight:bold}} .bad{{color:#c0392b;font-weight:bold}}
.note{{color:#9a6700}}</style></head><body>
<h1>Convene load test</h1>
<p>{settings}</p>
{verdict}{notes}
{''.join(f'<div>{c}</div>' for c in charts)}
{ramp}
<h2>Summary</h2><pre>{html.escape(summary_table(report))}</pre>
<h2>Per track</h2><pre>{html.escape(track_table(report.tracks))}</pre>
{f'<h2>Errors</h2><ul>{errors}</ul>' if errors else ''}
</body></html>
"""


def write_html(report: Report, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.html"
    path.write_text(render_html(report))
    return path
