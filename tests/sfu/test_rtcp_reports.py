"""The server's RTCP sender reports (#14): packed by us as aiortc packs them, and sent only by a slot that sent media
since the report before last (RFC 3550, 6.4), so the idle slots of a big room do not repeat the same counts every
second. Over real aiortc peers and a real server."""

from __future__ import annotations

import asyncio
import datetime

import pytest
from aiortc.rtp import RtcpSdesPacket, RtcpSenderInfo, RtcpSourceInfo, RtcpSrPacket

from sfu.aiortc_seams import ReportClock, sdes_packet, sr_packet
from tests.conftest import RunningServer
from tests.sfu.peers import Participant, join, make_packet, opus_payload, wait_until
from tests.sfu.test_fast_path import remote_sender_counts

TICK = 0.2  # the report clock's nominal interval in this test (1 s in service)


@pytest.mark.parametrize("cname", ["", "a", "ab", "abc", "abcd", "{8c5c9a6e-0d1f-4f5e-9b43-2d1c6ad5c3a1}", "é" * 9])
def test_sender_report_and_sdes_bytes_are_aiortcs(cname: str) -> None:
    ssrc, ntp, rtp = 0xDEADBEEF, 0xE0000000_80000000, 4_294_967_000
    for packets, octets in ((0, 0), (1234, 56789), (2**32 + 5, 2**33 + 7)):  # the counters wrap at 32 bits
        aiortcs = RtcpSrPacket(ssrc=ssrc, sender_info=RtcpSenderInfo(
            ntp_timestamp=ntp, rtp_timestamp=rtp, packet_count=packets & 0xFFFFFFFF, octet_count=octets & 0xFFFFFFFF))
        assert sr_packet(ssrc, ntp, rtp, packets, octets) == bytes(aiortcs)
    chunk = RtcpSourceInfo(ssrc=ssrc, items=[(1, cname.encode("utf8"))])
    assert sdes_packet(ssrc, cname) == bytes(RtcpSdesPacket(chunks=[chunk]))


async def report_received_at(bob: Participant, mid: str) -> datetime.datetime | None:
    """When bob's receiver on `mid` last got a sender report (aiortc stamps its remote-outbound stats on arrival)."""
    for transceiver in bob.subscriber.pc.getTransceivers():
        if transceiver.mid == mid:
            for stats in (await transceiver.receiver.getStats()).values():
                if stats.type == "remote-outbound-rtp":
                    return stats.timestamp  # type: ignore[no-any-return]
    return None


async def test_a_slot_that_stops_sending_stops_reporting_and_reports_again_when_it_sends(
        server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ReportClock, "interval", TICK)
    room = "idle-reports"
    alice = await join(server.url, room, await server.token(room, "alice"))
    bob = await join(server.url, room, await server.token(room, "bob"))
    try:
        (audio,) = await alice.publish(("audio", "audio/opus", "microphone"))
        await wait_until(lambda: len(bob.client.tracks_by_mid) == 1, 10)
        mid = next(iter(bob.client.tracks_by_mid))
        seq = 0

        async def speak(seconds: float) -> None:
            nonlocal seq
            for _ in range(int(seconds / 0.02)):
                audio.write(make_packet(seq, 960 * seq, opus_payload()))
                seq += 1
                await asyncio.sleep(0.02)

        await speak(1.0)
        await wait_until(lambda: len(bob.received[mid]) > 20, 5)
        # While the slot sends, reports keep coming, with counts that grow.
        first = await report_received_at(bob, mid)
        await speak(1.0)
        assert first is not None and (await report_received_at(bob, mid) or first) > first
        # It stops: the next reports carry the final count (it sent since the report before last), then none
        # comes while the connection's clock goes on ticking (alice's publisher connection is reported on).
        await asyncio.sleep(4 * 1.5 * TICK)
        final = (len(bob.received[mid]), sum(len(p.payload) for p in bob.received[mid]))
        assert await remote_sender_counts(bob, mid) == final
        quiet_since = await report_received_at(bob, mid)
        await asyncio.sleep(10 * TICK)
        assert await report_received_at(bob, mid) == quiet_since
        # It speaks again: reports again, with the counts of everything sent.
        await speak(0.6)
        await wait_until(lambda: len(bob.received[mid]) >= final[0] + 25, 5)
        await asyncio.sleep(3 * 1.5 * TICK)
        assert (await report_received_at(bob, mid) or quiet_since) > quiet_since  # type: ignore[operator]
        assert await remote_sender_counts(bob, mid) == (len(bob.received[mid]),
                                                        sum(len(p.payload) for p in bob.received[mid]))
    finally:
        for participant in (alice, bob):
            await participant.close()

