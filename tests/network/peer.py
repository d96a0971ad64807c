"""A meeting client for network tests, run inside a lab namespace:
`python -m tests.network.peer --url http://10.232.x.y:PORT --api-key K --room R [--joins N] [--turn all|udp|tcp|tls|none]`.

Each join: `bob` joins, then `alice` joins and publishes Opus; the join time is from alice opening her
socket to her publisher connection being connected (ICE + DTLS). Media must then flow both ways through
the network under test: alice -> server -> bob, each over its own peer connection with the ICE servers
`joined.ice_servers` handed it (filtered by --turn). Prints one JSON line per join, e.g.
{"connected": true, "join_s": 0.41, "pair": ["relay", "host"], "received": 25, "ice": "completed"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import aiohttp

from sfu.aiortc_seams import connection_rtp_path, nominated_candidate_types
from sfu.rtp import RtpPacket
from loadtest.peers import PacketPublisherPeer, PacketSubscriberPeer
from sfu.webrtc import configure_ice
from signaling.client import SignalingClient


def keep_url(url: str, turn: str) -> bool:
    """Which ICE server URLs the client uses: `all` as handed, `none` no STUN/TURN, else one TURN transport."""
    if turn == "all":
        return True
    if turn == "none":
        return False
    wanted = {"udp": ("turn:", "transport=udp"), "tcp": ("turn:", "transport=tcp"), "tls": ("turns:", "")}[turn]
    return url.startswith(wanted[0]) and wanted[1] in url


def filtered_ice_servers(servers: list[Any], turn: str) -> list[Any]:
    kept: list[Any] = []
    for entry in servers:
        if isinstance(entry, str):
            entry = {"urls": [entry]}
        urls = entry["urls"] if isinstance(entry["urls"], list) else [entry["urls"]]
        urls = [u for u in urls if keep_url(u, turn)]
        if urls:
            kept.append({**entry, "urls": urls})
    return kept


async def mint(session: aiohttp.ClientSession, url: str, api_key: str, room: str, identity: str) -> str:
    headers = {"Authorization": f"Bearer {api_key}"}
    async with session.post(f"{url}/v1/rooms", json={"name": room, "captions": False}, headers=headers) as r:
        assert r.status in (200, 201), await r.text()
    async with session.post(f"{url}/v1/rooms/{room}/tokens", json={"identity": identity}, headers=headers) as r:
        assert r.status in (200, 201), await r.text()
        return str((await r.json())["token"])


async def wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def joined_ice_servers(client: SignalingClient) -> list[Any]:
    # The reader may hand us the server's offer before connect() has stored `joined`: read the queue.
    joined = next(m for m in client.messages if m.get("type") == "joined")
    return list(joined.get("ice_servers", []))


async def one_join(args: argparse.Namespace, session: aiohttp.ClientSession, index: int) -> dict[str, Any]:
    room = args.room
    received: list[RtpPacket] = []
    subscribers: list[PacketSubscriberPeer] = []

    def bob_subscriber() -> PacketSubscriberPeer:
        if not subscribers:
            servers = filtered_ice_servers(joined_ice_servers(bob), args.turn)
            subscribers.append(PacketSubscriberPeer(lambda mid, packet: received.append(packet), servers))
        return subscribers[0]

    async def on_offer(sdp: str, tracks: dict[str, Any]) -> str:
        return await bob_subscriber().answer(sdp)

    bob = SignalingClient(args.url, room, await mint(session, args.url, args.api_key, room, f"bob{index}"),
                          on_offer=on_offer)
    await bob.connect()
    alice_token = await mint(session, args.url, args.api_key, room, f"alice{index}")
    started = time.monotonic()
    alice = SignalingClient(args.url, room, alice_token)
    joined = await alice.connect()
    servers = filtered_ice_servers(list(joined.get("ice_servers", [])), args.turn)
    publisher = PacketPublisherPeer(servers)
    writer = publisher.add_track("audio", "audio/opus")
    result: dict[str, Any] = {"connected": False, "ice_servers": [e["urls"] for e in servers]}
    try:
        offer = await publisher.create_offer()
        reply = await alice.request({"type": "publish", "sdp": offer,
                                     "tracks": [{"mid": writer.mid, "source": "microphone"}]}, "answer")
        await publisher.apply_answer(reply["sdp"])
        connected = await wait_until(lambda: publisher.pc.connectionState == "connected", args.timeout)
        result["join_s"] = round(time.monotonic() - started, 3)
        result["ice"] = publisher.pc.iceConnectionState
        result["connected"] = connected
        if connected:
            result["pair"] = nominated_candidate_types(publisher.pc)
            # Media both ways: alice's packets reach bob through the server, over bob's own connection.
            sequence, timestamp = 1, 0
            deadline = time.monotonic() + args.timeout
            while len(received) < 25 and time.monotonic() < deadline:
                writer.write(RtpPacket(payload_type=0, sequence_number=sequence, timestamp=timestamp, ssrc=0,
                                       payload=b"\x78" + os.urandom(60)))
                sequence, timestamp = sequence + 1, timestamp + 960
                await asyncio.sleep(0.02)
            result["received"] = len(received)
            path = connection_rtp_path(publisher.pc)  # #14: alice's send path (own socket or the transport)
            result["own_socket"] = path.lean if path is not None else None
            if subscribers:
                result["bob_pair"] = nominated_candidate_types(subscribers[0].pc)
            if args.hold:
                print(json.dumps({**result, "holding": args.hold}), flush=True)
            await asyncio.sleep(args.hold)  # connected meanwhile: the test looks at the server's sockets
    finally:
        for closing in (alice.close(), bob.close(), publisher.close(), *(s.close() for s in subscribers)):
            try:
                await asyncio.wait_for(closing, 5)
            except Exception as exc:  # a failed connection may not close cleanly; the result stands
                result.setdefault("close_errors", []).append(repr(exc))
    return result


async def main(args: argparse.Namespace) -> int:
    configure_ice(include_loopback=False)  # a client in a namespace: its veth address only
    async with aiohttp.ClientSession() as session:
        for index in range(args.joins):
            print(json.dumps(await one_join(args, session, index)), flush=True)
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tests.network.peer")
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--room", default="lab")
    parser.add_argument("--joins", type=int, default=1)
    parser.add_argument("--turn", choices=["all", "none", "udp", "tcp", "tls"], default="all")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to connect, and to receive media")
    parser.add_argument("--hold", type=float, default=0.0, help="seconds to stay connected after media flowed")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
