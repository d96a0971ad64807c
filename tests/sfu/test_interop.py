"""Interop with a real WebRTC stack that encodes and decodes: stock aiortc peers (not our forwarding
classes) publish camera, screen and microphone through the server and decode what they receive.
Also covers publishing and unpublishing mid-call."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack, VideoStreamTrack

from signaling.client import SignalingClient
from tests.conftest import RunningServer
from tests.sfu.peers import wait_until

pytestmark = pytest.mark.slow


class StockPeer:
    """A participant built only from aiortc's public API, as any third-party client would be."""

    def __init__(self, url: str, room: str, token: str) -> None:
        self.pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames: dict[str, int] = defaultdict(int)  # by subscriber mid
        self._readers: list[asyncio.Task[None]] = []
        self.sub.on("track", self._on_track)
        self.client = SignalingClient(url, room, token, on_offer=self._answer)
        self.track_ids: dict[str, str] = {}  # our mid -> server track id

    async def _answer(self, sdp: str, tracks: dict[str, Any]) -> str:
        await self.sub.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await self.sub.setLocalDescription(await self.sub.createAnswer())
        return str(self.sub.localDescription.sdp)

    def _on_track(self, track: MediaStreamTrack) -> None:
        mid = next(t.mid for t in self.sub.getTransceivers() if t.receiver.track is track)

        async def read() -> None:
            try:
                while True:
                    await track.recv()
                    self.frames[mid] += 1
            except MediaStreamError:
                pass

        self._readers.append(asyncio.create_task(read()))

    async def publish(self, *tracks: tuple[MediaStreamTrack, str]) -> None:
        added = [(self.pub.addTransceiver(track, direction="sendonly"), source) for track, source in tracks]
        await self.pub.setLocalDescription(await self.pub.createOffer())
        announce = [{"mid": t.mid, "source": source} for t, source in added]
        start = len(self.client.messages)
        await self.client.send({"type": "publish", "sdp": self.pub.localDescription.sdp, "tracks": announce})
        answer = await self.client.wait_for("answer", start=start, error_ok=False)
        await self.pub.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        published = await self.client.wait_for("published", start=start)
        for entry in published["tracks"]:
            self.track_ids[entry["mid"]] = entry["track"]["id"]

    async def unpublish(self, mid: str) -> None:
        transceiver = next(t for t in self.pub.getTransceivers() if t.mid == mid)
        transceiver.direction = "inactive"
        await self.pub.setLocalDescription(await self.pub.createOffer())
        start = len(self.client.messages)
        await self.client.send({"type": "unpublish", "track_id": self.track_ids[mid],
                                "sdp": self.pub.localDescription.sdp})
        answer = await self.client.wait_for("answer", start=start, error_ok=False)
        await self.pub.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    def frames_from(self, participant_id: str, source: str) -> int:
        mids = [mid for mid, t in self.client.tracks_by_mid.items()
                if t["participant_id"] == participant_id and t["source"] == source]
        return sum(self.frames[m] for m in mids)

    async def close(self) -> None:
        await self.client.close()
        for task in self._readers:
            task.cancel()
        await self.pub.close()
        await self.sub.close()


async def test_stock_webrtc_peers_decode_forwarded_media_and_renegotiate(server: RunningServer) -> None:
    alice = StockPeer(server.url, "interop", await server.token("interop", "alice"))
    bob = StockPeer(server.url, "interop", await server.token("interop", "bob"))
    await alice.client.connect()
    await bob.client.connect()
    try:
        alice_id = alice.client.joined["participant"]["id"]  # type: ignore[index]
        await alice.publish((VideoStreamTrack(), "camera"), (AudioStreamTrack(), "microphone"))
        await wait_until(lambda: bob.frames_from(alice_id, "camera") > 10 and
                         bob.frames_from(alice_id, "microphone") > 50, 20)

        # Mid-call: start a screen share (a new m-line on the publisher connection).
        await alice.publish((VideoStreamTrack(), "screen"))
        await bob.client.wait_for("track_published", lambda m: m["track"]["source"] == "screen")
        await wait_until(lambda: bob.frames_from(alice_id, "screen") > 10, 20)

        # Stop the camera: bob is told, the m-line leaves bob's table, screen and audio go on.
        camera_mid = next(mid for mid, tid in alice.track_ids.items()
                          if any(t["id"] == tid and t["source"] == "camera"
                                 for m in bob.client.messages if m["type"] == "track_published"
                                 for t in [m["track"]]))
        await alice.unpublish(camera_mid)
        await bob.client.wait_for("track_unpublished", lambda m: m["track_id"] == alice.track_ids[camera_mid])
        await wait_until(lambda: all(t["source"] != "camera" for t in bob.client.tracks_by_mid.values()), 10)
        screen_before = bob.frames_from(alice_id, "screen")
        await wait_until(lambda: bob.frames_from(alice_id, "screen") > screen_before + 10, 15)
    finally:
        await alice.close()
        await bob.close()
