"""The baseline the forwarding benchmark compares against: aiortc's own way to fan out a track,
`MediaRelay` (decode once, re-encode for every subscriber), behind a minimal subset of our signaling
protocol (join, publish, answer) so the very same load generator drives both.

Run by loadtest.forwarding in its own process: `python -m loadtest.relay_baseline --port P --secret-dir D`.
This is aiortc's public API on purpose: it is what we measure ourselves against, not product code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from sfu.webrtc import configure_ice
from identity.secrets_store import load_or_create_secret
from identity.tokens import TokenIssuer


class RelayRoom:
    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.tracks: list[tuple[str, MediaStreamTrack]] = []  # (source, track)


async def socket(request: web.Request) -> web.WebSocketResponse:
    room: RelayRoom = request.app["room"]
    tokens: TokenIssuer = request.app["tokens"]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sub: RTCPeerConnection | None = None
    pending_sources: list[str] = []

    @pub.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        source = pending_sources.pop(0) if pending_sources else track.kind
        room.tracks.append((source, track))

    async def send(msg: dict[str, Any]) -> None:
        await ws.send_str(json.dumps(msg))

    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            break
        data = json.loads(msg.data)
        kind = data.get("type")
        if kind == "join":
            token = tokens.verify(data["token"])
            await send({"type": "joined", "participant": {"id": token.identity, "identity": token.identity,
                                                          "name": token.name, "grants": {}},
                        "room": {"name": "bench", "captions": False, "participants": []}, "ice_servers": []})
            if room.tracks:
                sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                table = {}
                for source, track in room.tracks:
                    transceiver = sub.addTransceiver(room.relay.subscribe(track, buffered=False), direction="sendonly")
                    table[source] = transceiver
                await sub.setLocalDescription(await sub.createOffer())
                tracks = {str(t.mid): {"track_id": s, "participant_id": "publisher", "kind": t.kind, "source": s}
                          for s, t in table.items()}
                await send({"type": "offer", "target": "subscriber", "sdp": sub.localDescription.sdp,
                            "tracks": tracks})
        elif kind == "publish":
            pending_sources.extend(t["source"] for t in data["tracks"])
            await pub.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
            await pub.setLocalDescription(await pub.createAnswer())
            await send({"type": "answer", "target": "publisher", "sdp": pub.localDescription.sdp})
            await send({"type": "published", "tracks": []})
        elif kind == "answer" and sub is not None:
            await sub.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
    await pub.close()
    if sub is not None:
        await sub.close()
    return ws


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret-dir", required=True)
    args = parser.parse_args()
    configure_ice(include_loopback=True)
    app = web.Application()
    app["room"] = RelayRoom()
    app["tokens"] = TokenIssuer(load_or_create_secret(Path(args.secret_dir)))
    app.router.add_get("/v1/rooms/{room}/ws", socket)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
