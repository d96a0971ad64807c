"""Run by test_fast_path.py inside a network namespace whose loopback holds packets in a slow tbf queue: two
aiortc peers over 127.0.0.1, the sender on the lean or compiled path with a tiny socket send buffer, so a
burst fills it (EAGAIN). Prints what the path did and what the receiver got, as JSON."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time

from loadtest.peers import PacketPublisherPeer, PacketSubscriberPeer
from sfu.aiortc_seams import connection_rtp_path, set_send_mode
from sfu.rtp import RtpPacket
from sfu.webrtc import configure_ice

BURST = 400


async def main(mode: str) -> dict[str, object]:
    configure_ice(include_loopback=True)
    set_send_mode(mode)
    sender = PacketPublisherPeer()
    received: list[int] = []
    receiver = PacketSubscriberPeer(lambda mid, packet: received.append(packet.sequence_number))
    writer = sender.add_track("audio", "audio/opus")
    await sender.apply_answer(await receiver.answer(await sender.create_offer()))
    deadline = time.monotonic() + 20
    while not writer.ready:
        if time.monotonic() > deadline:
            return {"error": "no connection"}
        await asyncio.sleep(0.02)
    writer.write(RtpPacket(payload_type=111, sequence_number=0, timestamp=0, ssrc=0, payload=b"\x78" * 100))
    path = connection_rtp_path(sender.pc)
    assert path is not None and path._sock is not None
    # The duplicate shares the socket: the smallest send buffer the kernel allows (a few packets).
    path._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
    await asyncio.sleep(0.5)
    first = len(received)
    for seq in range(1, BURST + 1):  # without yielding: the socket buffer fills
        writer.write(RtpPacket(payload_type=111, sequence_number=seq, timestamp=960 * seq, ssrc=0,
                               payload=b"\x78" + bytes(1000)))
    queued_in_burst = path.queued_sends
    deadline = time.monotonic() + 20
    while len(received) < first + BURST and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    # The transport's queue drained: the next packets take our socket again.
    fast_before = path.fast_sends
    for seq in range(BURST + 1, BURST + 4):
        writer.write(RtpPacket(payload_type=111, sequence_number=seq, timestamp=960 * seq, ssrc=0,
                               payload=b"\x78" + bytes(100)))
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    result = {"mode": mode, "compiled": path.compiled, "queued_in_burst": queued_in_burst,
              "fast_after_drain": path.fast_sends - fast_before, "received": received[first:],
              "dropped": path.dropped}
    await sender.close()
    await receiver.close()
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
