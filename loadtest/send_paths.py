"""CPU per subscriber of each fan-out send path (#14), over real connected aiortc peers on 127.0.0.1, in one run:

    python -m loadtest.send_paths [--packets 20000]

For each path (aiortc: RtpPacket bytes, Session.protect and the asyncio transport, the path before #14; lean:
struct.pack_into, libsrtp in place, the pair's socket; c: the compiled call) a sender connection is made in
that mode and one video packet (~1,100 bytes of payload, MID + abs-send-time) is written to it `--packets`
times without yielding: CPU µs per `ForwardingSender.write`, the kernel's send included. Then the same for the
whole per-subscriber step of the fan-out (`Subscription.forward`-like: Forwarder.accept + write). Rounds
alternate the paths so that a busy machine slows them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from aiortc import RTCSessionDescription

from loadtest.encode import pre_encode_vp8
from loadtest.peers import PacketPublisherPeer, PacketSubscriberPeer
from sfu.aiortc_seams import compiled_send, connection_rtp_path, offer_payload_type, set_send_mode
from sfu.forwarder import Forwarder
from sfu.rtp import RtpPacket
from sfu.webrtc import configure_ice

MODES = ("aiortc", "lean", "c")


async def connected_writer(mode: str) -> tuple[PacketPublisherPeer, PacketSubscriberPeer, object]:
    set_send_mode(mode)
    sender = PacketPublisherPeer()
    set_send_mode("c")
    receiver = PacketSubscriberPeer(lambda mid, packet: None)
    writer = sender.add_track("video", "video/VP8")
    offer = await sender.create_offer()
    answer = await receiver.answer(offer)
    await sender.apply_answer(answer)
    deadline = time.monotonic() + 15
    while not writer.ready:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{mode}: no connection")
        await asyncio.sleep(0.02)
    return sender, receiver, writer


# Sequence numbers go on across rounds, per sender: libsrtp refuses to protect one twice (replay check).
_next_seq: dict[int, int] = {}


def time_writes(writer: object, packet: RtpPacket, count: int, with_forwarder: bool) -> float:
    sender = writer.sender  # type: ignore[attr-defined]
    pt = offer_payload_type("video", "video/VP8")
    first = _next_seq.get(id(sender), 1)
    _next_seq[id(sender)] = first + count
    forwarder = Forwarder(90000, needs_keyframe=False, continue_from=((first - 1) & 0xFFFF, 0, time.monotonic()))
    start = time.process_time()
    if with_forwarder:
        for i in range(first, first + count):
            out = forwarder.accept(i & 0xFFFF, i * 3000, True, 1)
            if out is not None:
                sender.write(packet, pt, out[0], out[1])
    else:
        for i in range(first, first + count):
            sender.write(packet, pt, i & 0xFFFF, i * 3000)
    return (time.process_time() - start) / count * 1e6


async def run(count: int, rounds: int) -> dict[tuple[str, bool], list[float]]:
    configure_ice(include_loopback=True)
    payload = pre_encode_vp8(3)[0].payloads[0]
    packet = RtpPacket(payload_type=96, marker=1, sequence_number=1, timestamp=1, ssrc=1, payload=payload)
    modes = [m for m in MODES if m != "c" or compiled_send() is not None]
    peers = {mode: await connected_writer(mode) for mode in modes}
    for mode, (sender, _, _) in peers.items():
        path = connection_rtp_path(sender.pc)
        writer = peers[mode][2]
        writer.sender.write(packet, offer_payload_type("video", "video/VP8"), 0, 0)  # type: ignore[attr-defined]
        _next_seq[id(writer.sender)] = 1  # type: ignore[attr-defined]
        path = connection_rtp_path(sender.pc)
        assert path is not None and path.mode == mode
    results: dict[tuple[str, bool], list[float]] = {}
    for _ in range(rounds):
        for with_forwarder in (False, True):
            for mode in modes:
                results.setdefault((mode, with_forwarder), []).append(
                    time_writes(peers[mode][2], packet, count, with_forwarder))
                await asyncio.sleep(0.05)  # let the receivers drain
    for sender, receiver, _ in peers.values():
        await sender.close()
        await receiver.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = asyncio.run(run(args.packets, args.rounds))
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"cores: {os.cpu_count()}; load average {load}; {args.rounds} rounds of {args.packets} packets; "
          "best round (median in brackets), CPU µs per subscriber\n")
    print("| path | write (rewrite + protect + send) | Forwarder.accept + write |")
    print("|---|---|---|")
    for mode in MODES:
        cells = []
        for with_forwarder in (False, True):
            values = sorted(results.get((mode, with_forwarder), []))
            cells.append(f"{values[0]:.2f} ({values[len(values) // 2]:.2f})" if values else "not built")
        print(f"| {mode} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
