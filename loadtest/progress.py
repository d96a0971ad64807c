"""The line a run prints while it goes: time, bots, packets, loss, latency, server and generator CPU."""

from __future__ import annotations

import sys
from typing import TextIO

from loadtest.timeline import Timeline


class Progress:
    def __init__(self, duration: float, target: int, out: TextIO | None = None, enabled: bool = True) -> None:
        self.duration = duration
        self.target = target
        self.out = out or sys.stderr
        self.enabled = enabled
        self.tty = self.out.isatty()
        self._printed = -1

    def show(self, timeline: Timeline, t: float, target: int) -> None:
        second = int(t)
        if not self.enabled or second == self._printed or second < 1:
            return
        if not self.tty and second % 5:
            return
        self._printed = second
        w = timeline.window(max(0, second - 3), second)
        width = 20
        done = int(width * min(1.0, t / self.duration))
        bar = "#" * done + "-" * (width - done)
        loss = "-" if w.loss is None else f"{w.loss:.2%}"
        p95 = "-" if w.latency_p95_ms is None else f"{w.latency_p95_ms:.0f}ms"
        cpu = "-" if w.server_cpu is None else f"{w.server_cpu:.0%}"
        rss = "-" if w.server_rss_max is None else f"{w.server_rss_max / 2**20:.0f}MB"
        line = (f"[{bar}] {t:5.0f}/{self.duration:.0f}s bots {timeline.participants}/{target} "
                f"rx {w.packets / w.seconds:,.0f} pkt/s loss {loss} p95 {p95} server {cpu} {rss} "
                f"generator {w.generator_cpu:.0%}")
        if self.tty:
            self.out.write("\r" + line.ljust(110))
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def done(self) -> None:
        if self.enabled and self.tty:
            self.out.write("\n")
            self.out.flush()
