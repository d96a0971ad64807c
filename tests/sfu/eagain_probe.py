"""Run by test_fast_path.py inside a network namespace whose loopback holds packets in a slow tbf queue: two
aiortc peers over loopback, the sender on the lean or compiled path with the smallest socket send buffer, so
each burst fills it (EAGAIN) and the asyncio transport takes over until its queue drains. Many such episodes;
in some the nominated pair is replaced (same socket) while the transport still holds packets.

Two witnesses of order: what the receiving peer got (after SRTP unprotect), and the wire: an AF_PACKET socket
on the namespace's `lo` sees every datagram as it leaves the tbf queue (a FIFO: the order the socket handed
them to the kernel), with the RTP sequence number in clear. Prints the result as JSON.

Usage: python -m tests.sfu.eagain_probe MODE [EPISODES]
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from typing import Any

import aioice.ice

from loadtest.peers import PacketPublisherPeer, PacketSubscriberPeer
from sfu.aiortc_seams import RtpPath, any_backlog, connection_rtp_path, set_send_mode
from sfu.fanout import flush_all
from sfu.publication import Codec, Publication
from sfu.rtp import RtpPacket
from sfu.webrtc import RtcDownTrack, configure_ice

BURST = 300
AFTER = 3  # packets sent one by one once the transport's queue drained: they take our socket again
OPUS = 111
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_RCVBUFFORCE = 33  # Linux; the socket module does not name it


def wire_tap() -> socket.socket:
    tap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    tap.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)  # past rmem_max: root in the namespace
    tap.bind(("lo", 0))
    tap.setblocking(False)
    return tap


def wire_sequence(tap: socket.socket, dst_port: int) -> list[int]:
    """RTP sequence numbers of the datagrams to `dst_port` that left `lo`, in order."""
    seqs = []
    while True:
        try:
            frame, address = tap.recvfrom(4096)
        except BlockingIOError:
            return seqs
        if address[2] != PACKET_OUTGOING:
            continue
        ethertype = int.from_bytes(frame[12:14], "big")
        if ethertype == 0x0800:
            udp = 14 + (frame[14] & 0x0F) * 4
            if frame[14 + 9] != socket.IPPROTO_UDP:
                continue
        elif ethertype == 0x86DD:
            udp = 14 + 40
            if frame[14 + 6] != socket.IPPROTO_UDP:
                continue
        else:
            continue
        if int.from_bytes(frame[udp + 2:udp + 4], "big") != dst_port:
            continue
        rtp = frame[udp + 8:]
        if len(rtp) >= 12 and rtp[0] >> 6 == 2 and not 192 <= rtp[1] <= 223:  # RTP, not RTCP (RFC 5761)
            seqs.append(int.from_bytes(rtp[2:4], "big"))


def receive_steered_to_one_cpu() -> bool:
    """Whether `lo`'s receive work goes to a single CPU (RPS): then the receiver sees the order of the wire."""
    try:
        with open("/sys/class/net/lo/queues/rx-0/rps_cpus", encoding="ascii") as mask:
            return bin(int(mask.read().strip().replace(",", ""), 16)).count("1") == 1
    except (OSError, ValueError):
        return False


def replace_pair(path: RtpPath) -> aioice.ice.CandidatePair:
    """A new nominated pair on the same socket (as after ICE nominates again), which the path resolves; returned."""
    connection = path.transport.transport._connection
    old = connection._nominated[1]
    new = aioice.ice.CandidatePair(old.protocol, old.remote_candidate)
    new.nominated = True
    new.state = aioice.ice.CandidatePair.State.SUCCEEDED
    connection._nominated[1] = new
    return new


def packet(seq: int, size: int) -> RtpPacket:
    return RtpPacket(payload_type=OPUS, sequence_number=seq & 0xFFFF, timestamp=960 * seq, ssrc=0,
                     payload=b"\x78" + bytes(size))


class OneSlot:
    """The room's Down for the probe's own sendonly transceiver: mode "batch" sends through a real publication and
    subscription, so its steady packets go through the batched fan-out (sfu/fanout.py)."""

    kinds = frozenset({"audio"})

    def __init__(self, transceiver: Any) -> None:
        self.transceiver = transceiver

    def add_track(self, kind: str, track_id: str, participant_id: str, source: str) -> RtcDownTrack:
        return RtcDownTrack(self.transceiver, kind, track_id, participant_id, source)

    def remove_track(self, track: RtcDownTrack) -> None:
        track.close()


class NoKeyframes:
    """The publication's source side: audio never asks for keyframes."""

    def request_keyframe(self, ssrc: int | None = None) -> None:
        return None


async def main(mode: str, episodes: int) -> dict[str, Any]:
    configure_ice(include_loopback=True)
    set_send_mode(mode)
    sender = PacketPublisherPeer()
    received: list[int] = []
    receiver = PacketSubscriberPeer(lambda mid, p: received.append(p.sequence_number))
    writer = sender.add_track("audio", "audio/opus")
    await sender.apply_answer(await receiver.answer(await sender.create_offer()))
    deadline = time.monotonic() + 20
    while not writer.ready:
        if time.monotonic() > deadline:
            return {"error": "no connection"}
        await asyncio.sleep(0.02)
    writer.write(packet(0, 100))
    send: Any = writer.write
    if mode == "batch":  # the forwarder continues the sender's sequence numbers from packet 0: 1, 2, ...
        publication = Publication("probe", "probe", "microphone", NoKeyframes(), {OPUS: Codec("audio/opus", 48000)})
        subscription = publication.subscribe(OneSlot(writer.transceiver), "receiver")
        assert subscription.activate()
        send = publication.on_rtp
    path = connection_rtp_path(sender.pc)
    assert path is not None and path._sock is not None
    # The duplicate shares the socket: the smallest send buffer the kernel allows (a few packets).
    path._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
    tap = wire_tap()
    await asyncio.sleep(0.3)
    first = len(received)
    seq = 0
    episode_stats = []
    wire: list[int] = []
    for episode in range(episodes):
        flush_all()
        queued, fast = path.queued_sends, path.fast_sends
        batched = 0
        for k in range(BURST):  # without yielding: the socket buffer fills
            seq += 1
            send(packet(seq, 1000))
            batched += bool(path.watchers)
            if episode % 2 == 1 and k == BURST // 2:
                replace_pair(path)  # while the transport holds packets
        backlog_in_burst = any_backlog()  # the batch's transports are watched (batch mode)
        want = first + seq
        deadline = time.monotonic() + 20
        while len(received) < want and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        flush_all()
        backlog_after_drain = any_backlog()
        after = path.fast_sends
        for _ in range(AFTER):
            seq += 1
            send(packet(seq, 100))
            await asyncio.sleep(0.02)
        flush_all()
        wire += wire_sequence(tap, path._addr[1])
        episode_stats.append({"queued_in_burst": path.queued_sends - queued, "fast_in_burst": after - fast,
                              "fast_after_drain": path.fast_sends - after, "batched_in_burst": batched,
                              "batched_after_drain": bool(path.watchers), "backlog_in_burst": backlog_in_burst,
                              "backlog_after_drain": backlog_after_drain})
    deadline = time.monotonic() + 5
    while len(received) < first + seq and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    wire += wire_sequence(tap, path._addr[1])
    tap.close()
    result = {"mode": mode, "compiled": path.compiled, "sent": seq, "episodes": episode_stats,
              "received": received[first:], "wire": wire, "dropped": path.dropped,
              "steered": receive_steered_to_one_cpu()}
    await sender.close()
    await receiver.close()
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1))))
