"""Sender reports on the server's clock (lip sync, issue #13): a publisher whose wall clock is 30 s off still
reaches its subscribers with sender reports in the server's time, so slots handed from person to person, or a
pair that briefly carries two people, are never synchronised across two machines' clocks."""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import aiortc.rtcrtpsender
import pytest
from aiortc import clock
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from sfu.webrtc import PublisherClock
from tests.conftest import RunningServer
from tests.sfu.test_interop import StockPeer

NTP_SECOND = 1 << 32
SKEW = 30.0


class SkewedClock:
    """aiortc's clock module for the publisher's own senders, `seconds` ahead."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def current_ntp_time(self) -> int:
        return int(clock.current_ntp_time() + self.seconds * NTP_SECOND) % (1 << 64)

    def __getattr__(self, name: str) -> Any:
        return getattr(clock, name)


def test_publisher_clock_offset_is_the_quickest_report() -> None:
    publisher = PublisherClock()
    now = 1_000 * NTP_SECOND
    ahead = int(SKEW * NTP_SECOND)
    # Reports that took `delay` ms to arrive (at `now` on our clock), stamped on the publisher's clock 30 s ahead:
    # each maps to our time minus how much slower it was than the quickest report so far.
    quickest = None
    for delay_ms in (40, 12, 25):
        sent = now - delay_ms * NTP_SECOND // 1000 + ahead
        quickest = delay_ms if quickest is None else min(quickest, delay_ms)
        lag_ms = (now - publisher.to_server(sent, now=now)) / NTP_SECOND * 1000
        assert abs(lag_ms - (delay_ms - quickest)) < 0.01, (delay_ms, lag_ms)
    # A publisher behind us maps the same way (the offset is negative).
    behind = PublisherClock()
    mapped = behind.to_server(now - ahead, now=now)
    assert mapped == now


@pytest.mark.slow
async def test_a_publisher_with_a_wrong_clock_reaches_subscribers_on_server_time(
        server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc.rtcrtpsender, "clock", SkewedClock(SKEW))
    alice = StockPeer(server.url, "skew", await server.token("skew", "alice"))
    bob = StockPeer(server.url, "skew", await server.token("skew", "bob"))
    await alice.client.connect()
    await bob.client.connect()
    try:
        await alice.publish((VideoStreamTrack(), "camera"), (AudioStreamTrack(), "microphone"))

        async def reports() -> list[Any]:
            stats = await bob.sub.getStats()
            return [s for s in stats.values() if s.type == "remote-outbound-rtp"]

        found: list[Any] = []

        async def both_kinds() -> bool:
            found[:] = await reports()
            return len({s.kind for s in found}) == 2

        await wait_until_async(both_kinds, 20)
        # Until the publisher's first report arrives the server maps its own clock; the publisher reports within
        # 1.5 s, the server forwards about once a second: after 4 s every report carries the publisher's mapping.
        await asyncio.sleep(4)
        found[:] = await reports()
        now = datetime.datetime.now(datetime.timezone.utc)
        for report in found:
            # Reports go out about once a second: the time they map to is at most a few seconds old.
            assert abs((now - report.remoteTimestamp).total_seconds()) < 4, (report.kind, report.remoteTimestamp, now)
    finally:
        await alice.close()
        await bob.close()


async def wait_until_async(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("timed out")
