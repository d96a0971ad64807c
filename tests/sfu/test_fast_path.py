"""The send paths of the fan-out (#14) over real aiortc peers and a real server: "aiortc" (RtpPacket bytes,
`Session.protect`, the asyncio transport: the path before #14), "lean" (struct.pack_into a reused buffer,
the transport's own libsrtp session in place, the pair's socket) and "c" (the same in one compiled call).

Subscribers of one room are served by different paths (the send mode is taken when a connection is made)
and each records the plaintext its transport unprotected: the bytes must be the same."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from sfu import aiortc_seams
from sfu.aiortc_seams import (
    check_seams,
    compiled_send,
    connection_rtp_path,
    libsrtp_version,
    offer_payload_type,
    set_send_mode,
    srtp_problems,
    tap_plaintext_rtp,
)
from sfu.fanout import flush_all
from sfu.rtp import RtpPacket, RtpWriter, abs_send_time
from tests.conftest import RunningServer
from tests.sfu.eagain_probe import replace_pair
from tests.sfu.peers import Participant, join, make_packet, opus_payload, wait_until

LAYERS = ["l", "m", "h"]
# The payload types our offers use (the server offers to subscribers).
VP8 = offer_payload_type("video", "video/VP8")
OPUS = offer_payload_type("audio", "audio/opus")


@pytest.fixture(autouse=True)
def default_send_mode() -> Iterator[None]:
    yield
    set_send_mode("batch")


def test_seam_check_covers_the_send_path() -> None:
    # pylibsrtp pinned, libsrtp 2.x inside it (libsrtp 3 changed srtp_protect), the private names we use.
    assert srtp_problems() == []
    assert (libsrtp_version() or "").startswith("2.")
    assert check_seams() == []
    # The compiled send is built at install time (scripts/bootstrap.sh runs sfu/fastpath_build.py).
    assert compiled_send() is not None, "run: python -m sfu.fastpath_build"
    assert aiortc_seams.batch_built(), "the compiled module predates the batched fan-out: python -m sfu.fastpath_build"


@pytest.mark.parametrize("abs_id", [3, 0])  # video negotiates abs-send-time, audio does not
def test_pack_into_writes_what_serialize_writes_across_a_sequence_wrap(abs_id: int) -> None:
    writer = RtpWriter("3", mid_id=1, abs_send_time_id=abs_id, audio_level_id=2, rid_id=0)
    buffer = memoryview(bytearray(1600))
    for seq, level in ((65534, None), (65535, (True, 33)), (0, (False, 127)), (1, None)):
        packet = make_packet(seq, 4_000_000_000, os.urandom(200), marker=seq % 2 == 0)
        if level is not None:
            packet.extensions.audio_level = level
        send_time = abs_send_time(1_700_000_000.25)
        n = writer.pack_into(buffer, packet, 111, seq, 4_294_967_000, 0xDEADBEEF, send_time.to_bytes(3, "big"))
        assert bytes(buffer[:n]) == writer.serialize(packet, 111, seq, 4_294_967_000, 0xDEADBEEF, send_time)
    padded = make_packet(5, 0, b"x" * 10)
    padded.padding_size = 4
    assert writer.pack_into(buffer, padded, 96, 5, 0, 1, b"\0\0\0") == 0  # padding: serialize does it


async def publish_simulcast_and_audio(alice: Participant) -> tuple[object, object, str]:
    video = alice.publisher.add_track("video", "video/VP8", layers=LAYERS)
    audio = alice.publisher.add_track("audio", "audio/opus")
    offer = await alice.publisher.create_offer()
    reply = await alice.client.request({"type": "publish", "sdp": offer, "tracks": [
        {"mid": video.mid, "source": "camera"}, {"mid": audio.mid, "source": "microphone"}]}, "answer")
    await alice.publisher.apply_answer(reply["sdp"])
    published = await alice.client.wait_for("published")
    video_id = next(t["track"]["id"] for t in published["tracks"] if t["track"]["kind"] == "video")
    await wait_until(lambda: video.ready and audio.ready, 10)
    return video, audio, video_id


def tap(participant: Participant) -> list[bytes]:
    packets: list[bytes] = []
    tap_plaintext_rtp(participant.subscriber.pc, packets.append)
    return packets


def by_payload(packets: list[bytes], payload_type: int) -> dict[bytes, bytes]:
    """Plaintext packets of one payload type, keyed by payload (unique per packet sent)."""
    found = {}
    for data in packets:
        packet = RtpPacket.parse(data)
        if packet.payload_type == payload_type:
            found[packet.payload] = data
    return found


def masked(data: bytes, mask_send_time: bool) -> bytes:
    """The bytes a subscriber's stream chooses for itself (sequence number, timestamp, SSRC) blanked; and
    abs-send-time (the one 3-byte element), which the aiortc path computes per subscriber, not per packet."""
    out = bytearray(data)
    out[2:12] = bytes(10)
    if mask_send_time and out[0] & 0x10:
        at, end = 16, 16 + 4 * int.from_bytes(out[14:16], "big")
        while at < end:
            if out[at] == 0:  # padding between elements
                at += 1
                continue
            length = (out[at] & 0x0F) + 1
            if length == 3:
                out[at + 1:at + 4] = bytes(3)
            at += 1 + length
    return bytes(out)


def deltas(packets: list[bytes]) -> list[tuple[int, int]]:
    parsed = [RtpPacket.parse(p) for p in packets]
    return [((b.sequence_number - a.sequence_number) % 65536, (b.timestamp - a.timestamp) % (1 << 32))
            for a, b in zip(parsed, parsed[1:])]


async def test_the_send_paths_deliver_the_same_bytes_across_a_wrap_and_a_layer_switch(
        server: RunningServer) -> None:
    room = "paths"
    alice = await join(server.url, room, await server.token(room, "alice"))
    subscribers: dict[str, Participant] = {}
    for mode in ("aiortc", "lean", "c", "batch"):
        set_send_mode(mode)  # the server's connection for this subscriber is made at its join
        subscribers[mode] = await join(server.url, room, await server.token(room, f"sub-{mode}"))
    set_send_mode("batch")
    stop = asyncio.Event()
    try:
        video, audio, video_id = await publish_simulcast_and_audio(alice)
        for sub in subscribers.values():
            await wait_until(lambda sub=sub: len(sub.client.tracks_by_mid) == 2 and sub.subscriber.pc.getTransceivers(), 10)
        await wait_until(lambda: all(s.subscriber.pc.connectionState == "connected" for s in subscribers.values()), 10)
        plaintext = {mode: tap(sub) for mode, sub in subscribers.items()}
        # Upstream sequence numbers start just below the wrap: every layer and the audio wrap during the run.
        seq = [65400, 65420, 65440]
        audio_seq = 65450
        i = 0

        async def send() -> None:
            nonlocal i, audio_seq
            while not stop.is_set():
                for layer in range(3):
                    key = (i + 3 * layer) % 10 == 0
                    head = bytes([0x10, 0x00 if key else 0x01, layer])
                    video.write(make_packet(seq[layer], 3000 * i, head + os.urandom(300 + 100 * layer),
                                            marker=True), layer=layer)
                    seq[layer] = (seq[layer] + 1) % 65536
                audio.write(make_packet(audio_seq, 960 * i, opus_payload(), audio_level=(i * 7) % 127))
                audio_seq = (audio_seq + 1) % 65536
                i += 1
                await asyncio.sleep(0.02)

        task = asyncio.create_task(send())
        await wait_until(lambda: i > 180 or task.done(), 20)  # past the wrap (~130 packets in)
        assert not task.done(), task.exception()
        for sub in subscribers.values():
            await sub.client.send({"type": "set_subscriptions", "layers": {video_id: "low"}})
        start = i
        await wait_until(lambda: i > start + 60, 10)
        stop.set()
        await task
        await asyncio.sleep(0.3)
        # Which path served whom, on the server side.
        assert flush_all() >= 2  # the batch subscriber's video and audio are in batches at the end
        served = {mode: [p for p in aiortc_seams._paths.values() if p.mode == mode and p.fast_sends + p.queued_sends]
                  for mode in ("lean", "c", "batch")}
        assert served["lean"] and all(p.lean and not p.compiled for p in served["lean"])
        assert served["c"] and all(p.compiled for p in served["c"])
        assert served["batch"] and all(p.compiled for p in served["batch"])
        compared = 0
        for kind_pt in (VP8, OPUS):
            streams = {mode: by_payload(packets, kind_pt) for mode, packets in plaintext.items()}
            common = set(streams["aiortc"]) & set(streams["lean"]) & set(streams["c"]) & set(streams["batch"])
            assert len(common) > 50
            for payload in common:
                lean, fast, old = streams["lean"][payload], streams["c"][payload], streams["aiortc"][payload]
                batched = streams["batch"][payload]
                # One abs-send-time per packet: all equal.
                assert masked(lean, False) == masked(fast, False) == masked(batched, False)
                assert masked(lean, True) == masked(old, True)
                compared += 1
            # Sequence numbers and timestamps run the same on all paths (continuous across the wrap).
            runs = {mode: deltas([d for d in plaintext[mode] if RtpPacket.parse(d).payload in common])
                    for mode in plaintext}
            assert ([d[0] for d in runs["lean"]] == [d[0] for d in runs["c"]] == [d[0] for d in runs["aiortc"]]
                    == [d[0] for d in runs["batch"]])
            # Timestamps too, except at the layer switch: there a forwarder advances by the wall time since its
            # subscriber's last packet (a few ticks apart between subscribers, whatever the path).
            differ = [k for k, (a, b, c, d) in enumerate(zip(runs["lean"], runs["c"], runs["aiortc"], runs["batch"]))
                      if not a[1] == b[1] == c[1] == d[1]]
            assert len(differ) <= 1 and all(abs(runs["lean"][k][1] - runs[m][k][1]) < 90 * 5
                                            for k in differ for m in ("c", "batch"))
        assert compared > 100
        # The layer switch happened on every path, and the sequence numbers stayed continuous across it.
        for mode, packets in plaintext.items():
            video_packets = [RtpPacket.parse(d) for d in packets if RtpPacket.parse(d).payload_type == VP8]
            layers = [p.payload[2] for p in video_packets]
            assert layers[0] == 2 and layers[-1] == 0, mode
            assert {d[0] for d in deltas([d for d in packets if RtpPacket.parse(d).payload_type == VP8])} == {1}, mode
    finally:
        stop.set()
        for participant in (alice, *subscribers.values()):
            await participant.close()


RTX = offer_payload_type("video", "video/rtx")


def server_paths(mode: str, *clients: Participant) -> list[aiortc_seams.RtpPath]:
    """The server's live send paths in `mode` that sent (the clients' own connections left out)."""
    own = {connection_rtp_path(pc) for c in clients for pc in (c.publisher.pc, c.subscriber.pc)}
    return [p for p in list(aiortc_seams._paths.values())
            if p.mode == mode and p not in own and p.fast_sends + p.queued_sends and p.transport.state == "connected"]


async def sender_counts_reach(bob: Participant, mid: str, want: tuple[int, int]) -> tuple[int, int] | None:
    """bob's view of the server's sender reports on `mid` (packets, octets) once it is `want`, or the last one
    within 4 s (a report comes about once a second)."""
    got = None
    for _ in range(40):
        got = await remote_sender_counts(bob, mid)
        if got == want:
            break
        await asyncio.sleep(0.1)
    return got


async def remote_sender_counts(bob: Participant, mid: str) -> tuple[int, int] | None:
    for transceiver in bob.subscriber.pc.getTransceivers():
        if transceiver.mid == mid:
            for stats in (await transceiver.receiver.getStats()).values():
                if stats.type == "remote-outbound-rtp":
                    return int(stats.packetsSent), int(stats.bytesSent)
    return None


@pytest.mark.parametrize("mode", ["lean", "c", "batch"])
async def test_nacks_rtx_sender_reports_and_a_new_pair_on_the_fast_path(server: RunningServer, mode: str) -> None:
    room = f"nack-{mode}"
    alice = await join(server.url, room, await server.token(room, "alice"))
    set_send_mode(mode)
    bob = await join(server.url, room, await server.token(room, "bob"))
    set_send_mode("batch")
    try:
        (video,) = await alice.publish(("video", "video/VP8", "camera"))
        await wait_until(lambda: len(bob.client.tracks_by_mid) == 1, 10)
        await wait_until(lambda: bob.subscriber.pc.connectionState == "connected", 10)
        mid = next(iter(bob.client.tracks_by_mid))
        plaintext = tap(bob)
        seq = 65500  # through the wrap

        async def stream(count: int) -> None:
            nonlocal seq
            for _ in range(count):
                video.write(make_packet(seq, 3000 * seq, bytes([0x10, 0x00 if seq % 30 == 0 else 0x01])
                                        + os.urandom(500), marker=True))
                seq = (seq + 1) % 65536
                await asyncio.sleep(0.01)

        await stream(120)
        await wait_until(lambda: len(bob.received[mid]) > 40, 5)
        flush_all()
        [path] = server_paths(mode, alice, bob)
        assert path.lean and path.compiled == (mode != "lean") and path.fast_sends > 40
        if mode == "batch":
            assert path.watchers  # bob's subscription is in a batched fan-out
        # A NACK is answered from the server's history over RTX, while the fast path carries the media.
        target = bob.received[mid][-10]
        before = len(plaintext)
        bob.subscriber.send_nack(mid, [target.sequence_number])
        await wait_until(lambda: any(RtpPacket.parse(d).payload_type == RTX for d in plaintext[before:]), 5)
        rtx = next(RtpPacket.parse(d) for d in plaintext[before:] if RtpPacket.parse(d).payload_type == RTX)
        assert rtx.payload[:2] == target.sequence_number.to_bytes(2, "big") and rtx.payload[2:] == target.payload
        # Sender reports count exactly the media packets and payload octets bob got on the media SSRC (the RTX
        # packet is on its own SSRC). The stream stops, so the next report holds the final count.
        media = [RtpPacket.parse(d) for d in plaintext]
        ssrc = bob.received[mid][-1].ssrc
        await asyncio.sleep(0.2)
        want = (sum(1 for p in media if p.ssrc == ssrc),
                sum(len(p.payload) for p in media if p.ssrc == ssrc))
        assert await sender_counts_reach(bob, mid, want) == want
        # The nominated pair changes (as after a consent failure and a new nomination): the path resolves the new
        # pair, its own socket with it, and bob keeps receiving.
        new = replace_pair(path)
        old_socket = path._sock
        count = len(bob.received[mid])
        await stream(60)
        await wait_until(lambda: len(bob.received[mid]) > count + 40, 5)
        assert path._pair is new and path._sock is not old_socket and path.lean
        if mode == "batch":
            assert path.watchers  # it left the batch at the new pair and joined again on the new socket
        assert old_socket is not None and old_socket.fileno() == -1  # the old duplicate is closed
    finally:
        await alice.close()
        await bob.close()


# -- cheap joins ---------------------------------------------------------------------------------------


async def test_one_dtls_certificate_per_process_rotated_daily(server: RunningServer) -> None:
    room = "cert"
    alice = await join(server.url, room, await server.token(room, "alice"))
    bob = await join(server.url, room, await server.token(room, "bob"))
    try:
        await alice.publish(("audio", "audio/opus", "microphone"))
        await wait_until(lambda: bob.subscriber.pc.remoteDescription is not None, 10)
        # The server's offer to bob and its answer to alice name the same certificate; media flows (DTLS is up).
        answer_sdp = alice.publisher.pc.remoteDescription.sdp
        offer_sdp = bob.subscriber.pc.remoteDescription.sdp
        fingerprints = {line for line in answer_sdp.splitlines() if line.startswith("a=fingerprint:")}
        assert len(fingerprints) == 1 and next(iter(fingerprints)).startswith("a=fingerprint:sha-256 ")
        assert fingerprints == {line for line in offer_sdp.splitlines() if line.startswith("a=fingerprint:")}
    finally:
        await alice.close()
        await bob.close()
    first = aiortc_seams.SharedCertificate.generateCertificate()
    assert aiortc_seams.SharedCertificate.generateCertificate() is first
    aiortc_seams.SharedCertificate._made_at -= aiortc_seams.CERTIFICATE_LIFETIME + 1  # a day later
    second = aiortc_seams.SharedCertificate.generateCertificate()
    assert second is not first
    assert second.getFingerprints() != first.getFingerprints()


def test_a_checked_sdp_is_parsed_once_and_handed_over_once() -> None:
    from aiortc import sdp

    offer = asyncio.run(offer_text())
    aiortc_seams.parse_media_lines(offer)
    handed = sdp.SessionDescription.parse(offer)  # what setRemoteDescription would call
    again = sdp.SessionDescription.parse(offer)
    assert handed is not again and str(handed) == str(again)  # the checked parse is given once only


async def offer_text() -> str:
    from loadtest.peers import PacketPublisherPeer

    peer = PacketPublisherPeer()
    peer.add_track("audio", "audio/opus")
    peer.add_track("video", "video/VP8")
    try:
        return await peer.create_offer()
    finally:
        await peer.close()


def test_negotiated_codecs_are_deep_copies() -> None:
    import copy

    from aiortc.codecs import CODECS

    for codec in [*CODECS["audio"], *CODECS["video"]]:
        copied = copy.deepcopy(codec)
        assert copied == codec and copied is not codec
        copied.parameters["x"] = 1
        if copied.rtcpFeedback:
            copied.rtcpFeedback[0].type = "changed"
        assert "x" not in codec.parameters and all(f.type != "changed" for f in codec.rtcpFeedback)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lean", "c", "batch"])
def test_a_full_socket_buffer_hands_over_to_the_transport_in_order(mode: str) -> None:
    """In a namespace of the test's own whose loopback queues packets (tbf, 8 Mbit/s), 12 bursts of 300 packets
    on a socket with the smallest send buffer each meet EAGAIN: the asyncio transport takes over, every packet
    arrives, in order, and once its queue drained the path sends on its own socket again. In every other
    burst the nominated pair is replaced (same socket) while the transport still holds packets: later packets
    must still wait behind them (they overtook them when the path remembered the backlog in a flag).

    Order is checked twice: on the wire (the order datagrams left the namespace's `lo`, which is the order
    the socket took them: the send path's own doing) and at the receiving peer. Loopback delivers a datagram
    on the CPU that dequeued it, so with two CPUs the kernel itself can swap two neighbours now and then
    (seen here: the wire in order, the receiver not); the test steers all of `lo`'s receive work to one CPU
    (RPS) so that what the receiver sees is what the sender did."""
    import json
    import subprocess

    from tests.network.netns import PYTHON, ROOT, lab_or_skip

    episodes = 12
    with lab_or_skip(("ip", "tc")) as lab:
        lab.add("burst")
        lab.exec("burst", "ip", "link", "set", "lo", "mtu", "1500")
        lab.exec("burst", "tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "8mbit", "burst", "3000",
                 "limit", "4000000")
        # `ip netns exec` mounts the namespace's own /sys: this is the namespace's lo.
        steer = 'echo 1 2>/dev/null > /sys/class/net/lo/queues/rx-0/rps_cpus; exec "$0" "$@"'
        done = subprocess.run(["ip", "netns", "exec", lab.ns("burst"), "sh", "-c", steer, PYTHON, "-m",
                               "tests.sfu.eagain_probe", mode, str(episodes)],
                              cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["compiled"] == (mode != "lean")
    assert len(result["episodes"]) == episodes
    for episode in result["episodes"]:
        assert episode["queued_in_burst"] > 100  # EAGAIN came early in each burst
        assert episode["fast_after_drain"] == 3  # and the path took its own socket again after the drain
        if mode == "batch":  # the batch sent until EAGAIN, left at the backlog and joined again after the drain
            assert 0 < episode["batched_in_burst"] < 300 - 100 and episode["batched_after_drain"]
            # Its transport was watched: the backlog was seen without asking each member, and forgotten after.
            assert episode["backlog_in_burst"] and not episode["backlog_after_drain"]
    everything = list(range(1, result["sent"] + 1))
    assert result["wire"] == everything  # left the socket in order
    if result["steered"]:
        assert result["received"] == everything  # all of them arrived, in order
    else:  # a kernel without RPS: loopback may swap neighbours on its own (the wire above is the send path's)
        assert sorted(result["received"]) == everything
    assert result["dropped"] == 0


def test_the_compiled_path_is_the_default_and_an_environment_variable_turns_it_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(aiortc_seams.SEND_PATH_ENV, raising=False)
    assert aiortc_seams.send_mode_from_env() == "batch"
    monkeypatch.setenv(aiortc_seams.SEND_PATH_ENV, "lean")
    assert aiortc_seams.send_mode_from_env() == "lean"
    monkeypatch.setenv(aiortc_seams.SEND_PATH_ENV, " AIORTC ")
    assert aiortc_seams.send_mode_from_env() == "aiortc"
    monkeypatch.setenv(aiortc_seams.SEND_PATH_ENV, "turbo")  # a typo keeps the default, logged
    assert aiortc_seams.send_mode_from_env() == "batch"
    monkeypatch.setenv(aiortc_seams.SEND_PATH_ENV, "c")  # compiled, one call per subscriber
    assert aiortc_seams.send_mode_from_env() == "c"
