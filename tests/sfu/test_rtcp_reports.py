"""The server's RTCP sender reports (#14): packed by us as aiortc packs them, and sent only by a slot that sent media
since the report before last (RFC 3550, 6.4), so the idle slots of a big room do not repeat the same counts every
second. Over real aiortc peers and a real server."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.rtp import RtcpSdesPacket, RtcpSenderInfo, RtcpSourceInfo, RtcpSrPacket

from sfu.aiortc_seams import ForwardingSender, ReportClock, sdes_packet, send_connection_reports, sr_packet
from sfu.webrtc import RtcDownTrack
from tests.conftest import RunningServer
from tests.sfu.peers import Participant, join, make_packet, opus_payload, wait_until
from tests.sfu.test_fast_path import sender_counts_reach
from tests.sfu.test_receive_route import publication_of


@pytest.mark.parametrize("cname", ["", "a", "ab", "abc", "abcd", "{8c5c9a6e-0d1f-4f5e-9b43-2d1c6ad5c3a1}", "é" * 9])
def test_sender_report_and_sdes_bytes_are_aiortcs(cname: str) -> None:
    ssrc, ntp, rtp = 0xDEADBEEF, 0xE0000000_80000000, 4_294_967_000
    for packets, octets in ((0, 0), (1234, 56789), (2**32 + 5, 2**33 + 7)):  # the counters wrap at 32 bits
        aiortcs = RtcpSrPacket(ssrc=ssrc, sender_info=RtcpSenderInfo(
            ntp_timestamp=ntp, rtp_timestamp=rtp, packet_count=packets & 0xFFFFFFFF, octet_count=octets & 0xFFFFFFFF))
        assert sr_packet(ssrc, ntp, rtp, packets, octets) == bytes(aiortcs)
    chunk = RtcpSourceInfo(ssrc=ssrc, items=[(1, cname.encode("utf8"))])
    assert sdes_packet(ssrc, cname) == bytes(RtcpSdesPacket(chunks=[chunk]))


def server_sender(server: RunningServer, publisher: Participant, subscriber: Participant) -> ForwardingSender:
    """The server's sender that forwards `publisher`'s audio to `subscriber` (its down slot)."""
    publication = publication_of(server, publisher, "audio")
    down = next(s.down for s in publication.receivers if s.subscriber_id == subscriber.id)
    assert isinstance(down, RtcDownTrack)
    return down.sender


async def test_a_slot_reports_until_two_reports_after_its_last_packet_and_again_when_it_sends(
        server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 3550 (6.4): an SR when the sender sent since the report before last. The report clock is held back and
    the connection's reports are made here, one call per tick, so each tick is known."""
    monkeypatch.setattr(ReportClock, "interval", 3600.0)
    room = "idle-reports"
    alice = await join(server.url, room, await server.token(room, "alice"))
    bob = await join(server.url, room, await server.token(room, "bob"))
    try:
        (audio,) = await alice.publish(("audio", "audio/opus", "microphone"))
        await wait_until(lambda: len(bob.client.tracks_by_mid) == 1, 10)
        mid = next(iter(bob.client.tracks_by_mid))
        sender = server_sender(server, alice, bob)
        seq = 0

        async def speak(packets: int) -> None:
            nonlocal seq
            for _ in range(packets):
                audio.write(make_packet(seq, 960 * seq, opus_payload()))
                seq += 1
                await asyncio.sleep(0.02)

        async def received(count: int) -> None:
            await wait_until(lambda: len(bob.received[mid]) >= base + count, 5)

        while not bob.received[mid] and seq < 250:  # until bob's connection is up, packets go nowhere
            await speak(1)
        await asyncio.sleep(0.1)
        base = len(bob.received[mid])
        await speak(10)
        await received(10)
        ticks = [sender.sender_report() is not None]  # sent since the two reports before (none yet)
        await speak(5)
        await received(15)
        ticks.append(sender.sender_report() is not None)  # sent since the last one
        # It stops after the second report: the third still reports (it sent since the first), then none.
        ticks += [sender.sender_report() is not None for _ in range(5)]
        assert ticks == [True, True, True, False, False, False, False]
        # It speaks again: reports at the next two ticks, then none.
        await speak(3)
        await received(18)
        assert [sender.sender_report() is not None for _ in range(4)] == [True, True, False, False]
        # A report sent reaches bob with the true counts (what his receiver got on that SSRC).
        await speak(2)
        await received(20)
        assert send_connection_reports(sender.transport, [sender], []) == 1
        want = (len(bob.received[mid]), sum(len(p.payload) for p in bob.received[mid]))
        assert await sender_counts_reach(bob, mid, want) == want
    finally:
        for participant in (alice, bob):
            await participant.close()
