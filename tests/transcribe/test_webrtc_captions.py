"""Captions over the real WebRTC path with the default model (multilingual Whisper base): three stock aiortc
peers speak (espeak-ng and two flite voices, from files, Opus-encoded by aiortc) in turn into a room; a fourth
participant receives the caption events over signaling. Checks word error rate per voice, interim-then-final,
and who said what."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from signaling.client import SignalingClient
from tests.conftest import RunningServer
from tests.sfu.peers import wait_until
from tests.transcribe.speech import make_speech_wav
from transcribe.web import TRANSCRIBE
from transcribe.wer import word_error_rate

pytestmark = pytest.mark.slow

ALICE = "Good morning everyone. Today we review the project plan and the budget for next quarter."
BOB = "Thank you Alice. I will send the final report to the whole team before the weekend."
DAN = "The server room will be closed on Monday for maintenance, so please save your work on Friday evening."


async def speak(server: RunningServer, room: str, identity: str, wav: Path) -> tuple[SignalingClient, RTCPeerConnection]:
    client = SignalingClient(server.url, room, await server.token(room, identity, name=identity.title()))
    await client.connect()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    player = MediaPlayer(str(wav))
    transceiver = pc.addTransceiver(player.audio, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    reply = await client.request({"type": "publish", "sdp": pc.localDescription.sdp,
                                  "tracks": [{"mid": transceiver.mid, "source": "microphone"}]}, "answer")
    await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
    return client, pc


async def test_captions_arrive_over_webrtc_attributed_to_each_speaker(server: RunningServer, tmp_path: Path) -> None:
    alice_clip = make_speech_wav(ALICE, "espeak", tmp_path / "alice.wav", lead_silence=1.0, rate=48000)
    # Bob waits for Alice to finish, Dan for Bob: their files start with the others' duration of silence.
    bob_clip = make_speech_wav(BOB, "flite", tmp_path / "bob.wav", lead_silence=alice_clip.duration + 1.0,
                               rate=48000)
    dan_clip = make_speech_wav(DAN, "flite-awb", tmp_path / "dan.wav", lead_silence=bob_clip.duration + 1.0,
                               rate=48000)
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{server.url}/v1/rooms", json={"name": "standup", "captions": True},
                            headers={"Authorization": f"Bearer {server.api_key}"})
        assert r.status == 201 and (await r.json())["captions"] is True
    listener = SignalingClient(server.url, "standup", await server.token("standup", "carol"))
    await listener.connect()
    speakers = [await speak(server, "standup", who, clip.path)
                for who, clip in (("alice", alice_clip), ("bob", bob_clip), ("dan", dan_clip))]
    ids = {c.joined["participant"]["id"]: name for (c, _), name in zip(speakers, ("alice", "bob", "dan"))}  # type: ignore[index]
    try:
        def finals() -> dict[str, str]:
            text: dict[str, list[str]] = {"alice": [], "bob": [], "dan": []}
            for m in listener.messages:
                if m.get("type") == "caption" and m["final"] and m["participant_id"] in ids:
                    text[ids[m["participant_id"]]].append(m["text"])
            return {k: " ".join(v) for k, v in text.items()}

        deadline = dan_clip.duration + 30
        try:
            await wait_until(lambda: word_error_rate(DAN, finals()["dan"]) < 0.3, deadline, interval=0.5)
        except TimeoutError:
            raise AssertionError(f"captions so far: {finals()}; metrics: "
                                 f"{server.app[TRANSCRIBE].engine.snapshot()}") from None
        await asyncio.sleep(2.0)  # let the last words settle
        got = finals()
        wers = {who: word_error_rate(ref, got[who]) for who, ref in (("alice", ALICE), ("bob", BOB), ("dan", DAN))}
        for who, wer in wers.items():
            print(f"{who} WER {wer:.1%}: {got[who]!r}")
        # Whisper base measured 0 % on these three voices here, 7.4 % on average over four longer scripts
        # (loadtest.captions); tiny.en 11.7 %. A bound between the two: base must not regress to tiny.en's.
        assert all(wer <= 0.15 for wer in wers.values()) and sum(wers.values()) / 3 <= 0.10, wers
        # Each person's words are attributed to them, not to the others.
        assert "budget" in got["alice"].lower() and "budget" not in got["bob"].lower() + got["dan"].lower()
        assert "report" in got["bob"].lower() and "report" not in got["alice"].lower() + got["dan"].lower()
        assert "maintenance" in got["dan"].lower()
        # Interim captions come first and are replaced by a final of the same segment; all English, not beta.
        captions: list[dict[str, Any]] = [m for m in listener.messages if m.get("type") == "caption"]
        interim_ids = {m["segment_id"] for m in captions if not m["final"]}
        final_ids = {m["segment_id"] for m in captions if m["final"]}
        assert interim_ids and interim_ids <= final_ids
        assert all(m["name"] in ("Alice", "Bob", "Dan") for m in captions)
        assert {(m["language"], m["beta"]) for m in captions} == {("en", False)}
    finally:
        await listener.close()
        for client, pc in speakers:
            await client.close()
            await pc.close()
