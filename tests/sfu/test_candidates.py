"""Remote ICE candidates over a real server and real aiortc peers: at most 20 per peer connection
(trickled and in SDP together), no link-local/unspecified/multicast/broadcast addresses unless allowed,
mDNS names dropped; a refused trickled candidate gets `candidate_refused` and the session goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from signaling.cli import build_parser
from signaling.client import SignalingClient
from signaling.workers_cli import worker_command
from signaling.ws import SESSIONS
from sfu.webrtc import MAX_REMOTE_CANDIDATES
from tests.conftest import RunningServer, running_server, server_config
from tests.sfu.peers import Participant, join, make_packet, opus_payload, wait_until


def host_candidate(address: str, port: int, transport: str = "udp") -> dict[str, Any]:
    return {"candidate": f"candidate:{port} 1 {transport} 2122260223 {address} {port} typ host",
            "sdpMid": "0", "sdpMLineIndex": 0}


async def trickle(client: SignalingClient, candidate: dict[str, Any],
                  target: str = "publisher") -> dict[str, Any] | None:
    """Sends one candidate; returns the error it got, or None (a ping after it came back clean)."""
    start = len(client.messages)
    await client.send({"type": "candidate", "target": target, "candidate": candidate})
    await client.send({"type": "ping", "id": start})
    pong = await client.wait_for("pong", lambda m: m.get("id") == start, start=start)
    errors = [m for m in client.messages[start:client.messages.index(pong)] if m.get("type") == "error"]
    assert len(errors) <= 1, errors
    return errors[0] if errors else None


def accepted(server: RunningServer, who: Participant, target: str = "publisher") -> set[tuple[str, int, int, str]]:
    session = server.app[SESSIONS][who.id]
    connection = session.publisher if target == "publisher" else session.subscriber
    assert connection is not None
    return connection.remote_candidates.accepted


async def test_the_21st_candidate_is_refused_and_the_session_goes_on(server: RunningServer) -> None:
    alice = await join(server.url, "cands", await server.token("cands", "alice"))
    try:
        await alice.publish(("audio", "audio/opus", "microphone"))  # its offer's own candidates count too
        from_sdp = len(accepted(server, alice))
        assert from_sdp >= 1
        for i in range(MAX_REMOTE_CANDIDATES - from_sdp):
            assert await trickle(alice.client, host_candidate("127.0.0.1", 41000 + i)) is None
        assert len(accepted(server, alice)) == MAX_REMOTE_CANDIDATES
        error = await trickle(alice.client, host_candidate("127.0.0.1", 42000))
        assert error is not None and error["code"] == "candidate_refused", error
        assert error["ref"] == "candidate" and error["details"]["target"] == "publisher"
        assert len(accepted(server, alice)) == MAX_REMOTE_CANDIDATES  # nothing changed
        # One already taken may come again (renegotiation repeats them); end-of-candidates is fine.
        assert await trickle(alice.client, host_candidate("127.0.0.1", 41000)) is None
        assert await trickle(alice.client, {"candidate": ""}) is None
        # The subscriber connection has its own budget.
        assert await trickle(alice.client, host_candidate("127.0.0.1", 42000), target="subscriber") is None
        # Still a working session: another track publishes and connects.
        await alice.publish(("video", "video/VP8", "camera"))
    finally:
        await alice.close()


async def test_addresses_the_server_must_not_probe_are_refused(server: RunningServer) -> None:
    alice = await join(server.url, "lan", await server.token("lan", "alice"))
    try:
        await alice.publish(("audio", "audio/opus", "microphone"))
        before = set(accepted(server, alice))
        refused = {
            "169.254.169.254": "link-local address",  # cloud metadata
            "169.254.10.20": "link-local address",
            "fe80::1": "link-local address",
            "::ffff:169.254.1.1": "link-local address",
            "0.0.0.0": "not a unicast address",
            "::": "not a unicast address",
            "224.0.0.251": "not a unicast address",
            "ff02::1": "not a unicast address",
            "255.255.255.255": "not a unicast address",
            "metadata.google.internal": "not an IP address",
        }
        for address, reason in refused.items():
            error = await trickle(alice.client, host_candidate(address, 50000))
            assert error is not None and error["code"] == "candidate_refused", (address, error)
            assert error["details"]["reason"] == reason and error["details"]["address"] == address
        # A browser hiding its address behind an mDNS name: dropped quietly, the server cannot use it.
        assert await trickle(alice.client, host_candidate("0c5fb1c6-2f0e-4a36-9d5e-2b3f6b4a1c2d.local", 50000)) is None
        # TCP: aiortc speaks ICE over UDP only (dropped as before).
        assert await trickle(alice.client, host_candidate("127.0.0.1", 9, "tcp")) is None
        # Malformed: its own code, and nothing counted.
        error = await trickle(alice.client, {"candidate": "candidate:1 1 udp 1 127.0.0.1 50000 typ host"})
        assert error is not None and error["code"] == "malformed_sdp"
        assert accepted(server, alice) == before
        # An ordinary LAN address is taken.
        assert await trickle(alice.client, host_candidate("192.168.1.20", 50000)) is None
        assert ("192.168.1.20", 50000, 1, "udp") in accepted(server, alice)
    finally:
        await alice.close()


async def test_an_offer_sdp_is_filtered_silently_and_media_still_flows(server: RunningServer) -> None:
    """Candidates inside an offer go by the same rules without an error: link-local and mDNS lines are
    left out, the budget caps the rest; the real candidates before them connect and media arrives."""
    alice = await join(server.url, "sdp", await server.token("sdp", "alice"))
    bob = await join(server.url, "sdp", await server.token("sdp", "bob"))
    try:
        writer = alice.publisher.add_track("audio", "audio/opus")
        offer = await alice.publisher.create_offer()
        extra = ["a=candidate:9 1 udp 100 169.254.169.254 50000 typ host",
                 "a=candidate:8 1 udp 100 fe80::1 50000 typ host",
                 "a=candidate:7 1 udp 100 1f0e2d3c-aaaa-bbbb-cccc-111122223333.local 50000 typ host",
                 *[f"a=candidate:{100 + i} 1 udp 100 10.9.8.{i} 50000 typ host" for i in range(30)]]
        lines = offer.split("\r\n")
        last_candidate = max(i for i, line in enumerate(lines) if line.startswith("a=candidate:"))
        own = sum(1 for line in lines if line.startswith("a=candidate:") and " udp " in line.lower())
        lines[last_candidate + 1:last_candidate + 1] = extra
        reply = await alice.client.request({"type": "publish", "sdp": "\r\n".join(lines),
                                            "tracks": [{"mid": writer.mid, "source": "microphone"}]}, "answer")
        assert not [m for m in alice.client.messages if m.get("type") == "error"]
        taken = accepted(server, alice)
        assert len(taken) == MAX_REMOTE_CANDIDATES
        assert not [key for key in taken if key[0].startswith(("169.254.", "fe80")) or key[0].endswith(".local")]
        assert sum(1 for key in taken if key[0].startswith("10.9.8.")) == MAX_REMOTE_CANDIDATES - own
        await alice.publisher.apply_answer(reply["sdp"])
        await wait_until(lambda: writer.ready, 10)
        await bob.client.wait_for("track_published")
        for i in range(500):  # 10 s of 20 ms Opus packets at most
            writer.write(make_packet(i, i * 960, opus_payload(), audio_level=30))
            if any(bob.received.values()):
                break
            await asyncio.sleep(0.02)
        assert any(bob.received.values()), "no audio reached bob"
    finally:
        await alice.close()
        await bob.close()


async def test_link_local_is_taken_when_the_server_allows_it(tmp_path: Path) -> None:
    async with running_server(server_config(tmp_path / "data", ice_allow_link_local=True)) as server:
        alice = await join(server.url, "ll", await server.token("ll", "alice"))
        try:
            assert await trickle(alice.client, host_candidate("169.254.10.20", 50000)) is None
            assert await trickle(alice.client, host_candidate("fe80::1", 50000)) is None
            assert ("169.254.10.20", 50000, 1, "udp") in accepted(server, alice)
            # Never a unicast destination, allowed or not.
            error = await trickle(alice.client, host_candidate("224.0.0.251", 50000))
            assert error is not None and error["details"]["reason"] == "not a unicast address"
        finally:
            await alice.close()


def test_the_flag_reaches_the_cli_and_spawned_workers(tmp_path: Path) -> None:
    args = build_parser().parse_args(["serve", "--ice-allow-link-local"])
    assert args.ice_allow_link_local is True
    assert build_parser().parse_args(["serve"]).ice_allow_link_local is False
    allowing = server_config(tmp_path, ice_allow_link_local=True, workers=2)
    assert "--ice-allow-link-local" in worker_command(allowing, 1)
    assert "--ice-allow-link-local" not in worker_command(server_config(tmp_path, workers=2), 1)
