"""What each step of forwarding one packet costs, in µs, measured in one process (no network peer).

    python -m loadtest.packet_steps

Steps: SRTP unprotect + parse (receive), keyframe detection, fan-out bookkeeping (Forwarder.accept),
header rewrite + serialize for one subscriber, SRTP protect, and a loopback sendto.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from pylibsrtp import Policy, Session

from sfu.forwarder import Forwarder
from sfu.rtp import HeaderExtensionsMap, RtpPacket, is_keyframe_start
from loadtest.encode import pre_encode_vp8


def per_call_us(fn: Callable[[], object], n: int = 20000) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

    frames = pre_encode_vp8(10)
    payload = frames[0].payloads[0]
    ext_map = HeaderExtensionsMap()
    ext_map.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
    ]))
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=1, ssrc=1234, payload=payload)
    packet.extensions.mid = "0"
    packet.extensions.abs_send_time = 12345
    raw = packet.serialize(ext_map)
    key = os.urandom(30)
    tx = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    rx = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    protected = [tx.protect(RtpPacket(payload_type=96, sequence_number=i, timestamp=i, ssrc=1234,
                                      payload=payload).serialize(ext_map)) for i in range(20000)]
    it = iter(protected)
    forwarder = Forwarder(90000, needs_keyframe=False)
    seq = [0]

    def accept() -> object:
        seq[0] = (seq[0] + 1) % 65536
        return forwarder.accept(seq[0], seq[0] * 3000, True)

    def rewrite() -> bytes:
        packet.sequence_number = (packet.sequence_number + 1) % 65536
        packet.ssrc = 999
        packet.extensions.mid = "3"
        return packet.serialize(ext_map)

    tx2 = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    out_seq = [0]

    def protect() -> bytes:
        out_seq[0] += 1
        p = RtpPacket(payload_type=96, sequence_number=out_seq[0] % 65536, timestamp=1, ssrc=77, payload=payload)
        return tx2.protect(p.serialize(ext_map))

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    address = sink.getsockname()
    sink.setblocking(False)

    def sendto() -> None:
        sender.sendto(raw, address)
        try:
            sink.recv(2048)
        except BlockingIOError:
            pass

    steps = [
        ("SRTP unprotect (receive)", per_call_us(lambda: rx.unprotect(next(it)), 19000)),
        ("RtpPacket.parse", per_call_us(lambda: RtpPacket.parse(raw, ext_map))),
        ("keyframe detection (VP8)", per_call_us(lambda: is_keyframe_start("video/VP8", payload))),
        ("Forwarder.accept (seq/ts rewrite, NACK history)", per_call_us(accept)),
        ("header rewrite + serialize", per_call_us(rewrite)),
        ("serialize + SRTP protect", per_call_us(protect)),
        ("loopback sendto (+ recv to drain)", per_call_us(sendto)),
    ]
    print(f"payload {len(payload)} bytes; µs per call on this machine ({os.cpu_count()} cores):\n")
    print("| step | µs |")
    print("|---|---|")
    for name, us in steps:
        print(f"| {name} | {us:.2f} |")


if __name__ == "__main__":
    main()
