"""Simulcast through the server with real peers: a publisher sends three layers (rid), a subscriber
gets the layer it prefers, and switches happen only on keyframes with continuous sequence numbers."""

from __future__ import annotations

import asyncio
from typing import Any

from loadtest.peers import PacketWriter
from tests.conftest import RunningServer
from tests.sfu.peers import Participant, join, make_packet, vp8_payload, wait_until

LAYERS = ["l", "m", "h"]


async def send_layers(writer: PacketWriter, stop: asyncio.Event) -> None:
    seq = [1000, 2000, 3000]
    i = 0
    while not stop.is_set():
        for layer in range(3):
            # Keyframes every 10 frames, staggered per layer; the layer is readable in the payload.
            key = (i + 3 * layer) % 10 == 0
            payload = vp8_payload(key, 100 * (layer + 1))[:2] + bytes([layer]) * (100 * (layer + 1))
            writer.write(make_packet(seq[layer], 3000 * i, payload, marker=True), layer=layer)
            seq[layer] += 1
        i += 1
        await asyncio.sleep(0.02)


async def publish_simulcast(alice: Participant, bob: Participant) -> tuple[PacketWriter, dict[str, Any], str]:
    """Alice publishes a three-layer camera (the simulcast offer and answer checked); returns its writer, the
    track as published and the mid it reaches Bob on."""
    writer = alice.publisher.add_track("video", "video/VP8", layers=LAYERS)
    offer = await alice.publisher.create_offer()
    assert "a=simulcast:send l;m;h" in offer
    reply = await alice.client.request({"type": "publish", "sdp": offer,
                                        "tracks": [{"mid": writer.mid, "source": "camera"}]}, "answer")
    assert "a=simulcast:recv l;m;h" in reply["sdp"] and "a=rid:h recv" in reply["sdp"]
    await alice.publisher.apply_answer(reply["sdp"])
    published = await alice.client.wait_for("published")
    track: dict[str, Any] = published["tracks"][0]["track"]
    assert track["layers"] == LAYERS
    await wait_until(lambda: writer.ready and len(bob.client.tracks_by_mid) == 1, 10)
    return writer, track, next(iter(bob.client.tracks_by_mid))


async def test_subscriber_switches_layers_on_keyframes_only(server: RunningServer) -> None:
    alice = await join(server.url, "sim", await server.token("sim", "alice"))
    bob = await join(server.url, "sim", await server.token("sim", "bob"))
    stop = asyncio.Event()
    try:
        writer, track, mid = await publish_simulcast(alice, bob)
        task = asyncio.create_task(send_layers(writer, stop))

        def layers_seen(start: int = 0) -> list[int]:
            return [p.payload[2] for p in bob.received[mid][start:]]

        # Default preference: the high layer.
        await wait_until(lambda: len(bob.received[mid]) > 20, 10)
        assert set(layers_seen()) == {2}
        # Ask for the low layer (a small tile): the switch waits for a low-layer keyframe.
        start = len(bob.received[mid])
        await bob.client.send({"type": "set_subscriptions", "layers": {track["id"]: "low"}})
        await wait_until(lambda: 0 in layers_seen(start), 5)
        seen = bob.received[mid][start:]
        first_low = next(i for i, p in enumerate(seen) if p.payload[2] == 0)
        assert seen[first_low].payload[1] & 0x01 == 0  # the switch happened on a keyframe
        await asyncio.sleep(0.5)
        assert set(layers_seen(start + first_low)) == {0}  # no going back and forth
        # Sequence numbers stay continuous across the switch.
        all_packets = bob.received[mid]
        gaps = {(b.sequence_number - a.sequence_number) % 65536 for a, b in zip(all_packets, all_packets[1:])}
        assert gaps == {1}
        # Keyframe requests for a layer reach the simulcast publisher (RTCP routed by the layer's SSRC).
        await asyncio.sleep(0.6)
        before = writer.keyframe_requests
        assert bob.subscriber.request_keyframe(mid)
        await wait_until(lambda: writer.keyframe_requests > before, 5)
        assert writer.sender.feedback_ssrc == writer.layer_ssrcs[0]
        # Nobody receives the mid and high layers any more: after a quiet spell Alice is told to pause them.
        demand = await alice.client.wait_for("track_demand", timeout=5)
        assert demand == {"type": "track_demand", "track_id": track["id"], "active": True, "layers": ["l"]}
        # Back to high: asked for at once.
        start = len(bob.received[mid])
        demands = alice.client.count("track_demand")
        await bob.client.send({"type": "set_subscriptions", "layers": {track["id"]: "high"}})
        await wait_until(lambda: alice.client.count("track_demand") > demands, 2)
        assert [m for m in alice.client.messages if m.get("type") == "track_demand"][-1]["layers"] == ["l", "h"]
        await wait_until(lambda: 2 in layers_seen(start), 5)
        # Bob shows no video at all: Alice's camera is not needed by anyone.
        await bob.client.send({"type": "set_subscriptions", "max_video": 0})
        await alice.client.wait_for("track_demand", lambda m: m["active"] is False and m["layers"] == [],
                                    timeout=5)
        stop.set()
        await task
    finally:
        stop.set()
        await alice.close()
        await bob.close()


async def test_default_layer_holds_for_cameras_that_appear_later(server: RunningServer) -> None:
    """`default_layer` is the layer of every video not named in `layers`, including one published after it was
    sent: its first packets are already on that layer. Naming a track overrides it; unnaming it restores it."""
    alice = await join(server.url, "simdef", await server.token("simdef", "alice"))
    bob = await join(server.url, "simdef", await server.token("simdef", "bob"))
    stop = asyncio.Event()
    try:
        await bob.client.send({"type": "set_subscriptions", "default_layer": "low"})
        await bob.client.request({"type": "ping", "id": "after-default"}, "pong")
        writer, track, mid = await publish_simulcast(alice, bob)
        task = asyncio.create_task(send_layers(writer, stop))

        def layers_seen(start: int = 0) -> set[int]:
            return {p.payload[2] for p in bob.received[mid][start:]}

        await wait_until(lambda: len(bob.received[mid]) > 20, 10)
        assert layers_seen() == {0}  # low from the first packet: no high keyframe and switch first
        start = len(bob.received[mid])
        await bob.client.send({"type": "set_subscriptions", "layers": {track["id"]: "high"}})
        await wait_until(lambda: 2 in layers_seen(start), 5)
        start = len(bob.received[mid])
        await bob.client.send({"type": "set_subscriptions", "layers": {}})  # unnamed again: the default
        await wait_until(lambda: 0 in layers_seen(start), 5)
        await bob.client.send({"type": "set_subscriptions", "default_layer": "bogus"})
        error = await bob.client.wait_for("error")
        assert error["code"] == "invalid_field" and error["details"]["field"] == "default_layer"
        stop.set()
        await task
    finally:
        stop.set()
        await alice.close()
        await bob.close()
