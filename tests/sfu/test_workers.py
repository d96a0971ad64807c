"""One room spanning two workers: participants on different workers see and hear each other through
a pipe (real TCP between the workers' pipe servers, real aiortc peers on loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from identity.meetings import invite
from signaling.room_directory import StoreRoomDirectory
from store.database import Database
from signaling.appkeys import PIPES
from tests.conftest import free_port, meeting_token, running_server, server_config
from tests.sfu.peers import join, make_packet, opus_payload, vp8_payload, wait_until


@pytest.fixture
async def two_workers(tmp_path: Path) -> AsyncIterator[list[tuple[web.Application, str]]]:
    async with AsyncExitStack() as stack:
        out = []
        for worker_id in ("w1", "w2"):
            config = server_config(tmp_path / "data", worker_id=worker_id, per_worker=1,
                                 media_only=worker_id != "w1")
            running = await stack.enter_async_context(running_server(config))
            out.append((running.app, running.url))
        yield out


async def test_room_spanning_two_workers_delivers_media(two_workers: list[tuple[web.Application, str]]) -> None:
    (app1, url1), (app2, url2) = two_workers
    alice_token = await meeting_token(app1, "span", "alice", name="Alice")
    alice = await join(url1, "span", alice_token)
    # Placement: worker 1 holds its one participant of this room, so the next goes to worker 2.
    async with aiohttp.ClientSession() as http:
        placed = await (await http.get(f"{url1}/v1/rooms/span/placement",
                                       headers={"Authorization": f"Bearer {alice_token}"})).json()
    assert placed["worker"] == "w2" and placed["ws_url"].startswith(url2.replace("http", "ws"))
    bob = await join(url2, "span", await meeting_token(app1, "span", "bob", name="Bob"))
    try:
        await wait_until(lambda: ("span", "w1") in app2[PIPES].links or ("span", "w2") in app1[PIPES].links, 5)
        # Each sees the other, though they are on different workers.
        await alice.client.wait_for("participant_joined", lambda m: m["participant"]["identity"] == "bob")
        joined = bob.client.joined
        assert joined is not None
        if not any(p["identity"] == "alice" for p in joined["room"]["participants"]):
            await bob.client.wait_for("participant_joined", lambda m: m["participant"]["identity"] == "alice")
        video, audio = await alice.publish(("video", "video/VP8", "camera"), ("audio", "audio/opus", "microphone"))
        await wait_until(lambda: len(bob.client.tracks_by_mid) == 2, 10)
        mids = {t["kind"]: mid for mid, t in bob.client.tracks_by_mid.items()}
        sent = []
        for i in range(300):
            payload = vp8_payload(keyframe=(i % 30 == 0))
            sent.append(payload)
            video.write(make_packet(i + 1, 3000 * i, payload, marker=True))
            audio.write(make_packet(i + 1, 960 * i, opus_payload(), audio_level=30))
            await asyncio.sleep(0.01)
            if len(bob.received[mids["video"]]) > 30 and len(bob.received[mids["audio"]]) > 30:
                break
        got = bob.received[mids["video"]]
        assert len(got) > 30 and all(p.payload in sent for p in got)
        assert got[0].payload[1] & 0x01 == 0  # starts on a keyframe, across the pipe too
        # Bob's keyframe request crosses the pipe back to alice.
        await asyncio.sleep(0.6)
        before = video.keyframe_requests
        bob.subscriber.request_keyframe(mids["video"])
        await wait_until(lambda: video.keyframe_requests > before, 5)
        # When alice leaves worker 1, bob on worker 2 is told.
        await alice.client.send({"type": "leave"})
        await bob.client.wait_for("participant_left")
        await wait_until(lambda: bob.client.tracks_by_mid == {}, 5)
    finally:
        await alice.close()
        await bob.close()


@pytest.mark.slow
async def test_convene_serve_with_two_worker_processes(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys


    port = free_port()
    while True:  # the second worker takes the next port
        import socket

        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                break
            except OSError:
                port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "signaling.cli", "serve", "--port", str(port), "--data-dir",
                             str(data), "--workers", "2", "--per-worker", "1"],
                            env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peers = []
    try:
        async with aiohttp.ClientSession() as http:
            async def placement() -> dict[str, str]:
                for _ in range(100):
                    try:
                        r = await http.get(f"http://127.0.0.1:{port}/v1/rooms/big/placement",
                                           headers={"Authorization": f"Bearer {invite(data, 'big', 'asker')}"})
                        body = await r.json()
                        if body["worker"] is not None:
                            return dict(body)
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.2)
                raise TimeoutError("server did not start")

            first = await placement()
            # Wait until both workers are registered (in the store, as the server's processes see it), so
            # placement can spread the room.
            db = Database.for_config(None, data)
            await db.open()
            try:
                for _ in range(100):
                    if len(await StoreRoomDirectory(db).workers()) == 2:
                        break
                    await asyncio.sleep(0.2)
            finally:
                await db.close()
            first = await placement()
            alice = await join(first["ws_url"].replace("ws", "http", 1).split("/v1/")[0], "big",
                               invite(data, "big", "alice"))
            peers.append(alice)
            second = await placement()
            assert second["worker"] != first["worker"]
            bob = await join(second["ws_url"].replace("ws", "http", 1).split("/v1/")[0], "big",
                             invite(data, "big", "bob"))
            peers.append(bob)
            (video,) = await alice.publish(("video", "video/VP8", "camera"))
            await wait_until(lambda: len(bob.client.tracks_by_mid) == 1, 10)
            mid = next(iter(bob.client.tracks_by_mid))
            for i in range(300):
                video.write(make_packet(i + 1, 3000 * i, vp8_payload(keyframe=(i % 30 == 0)), marker=True))
                await asyncio.sleep(0.01)
                if len(bob.received[mid]) > 20:
                    break
            assert len(bob.received[mid]) > 20
    finally:
        for p in peers:
            await p.close()
        proc.terminate()
        proc.wait(10)
