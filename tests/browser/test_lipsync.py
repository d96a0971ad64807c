"""Lip sync (issue #13): one person's voice and camera play together in Chromium.

An aiortc peer publishes a clip made here with numpy: a white video frame and a 1 kHz beep at the same instants,
every 1.5 s (black and silence in between), both paced by one clock, so the clip is in sync at its source. Its
video packets reach the network 500 ms after its audio (the sender's RTCP reports still map each frame to when it
was made): a slow encoder or a pacing sender does that. A Chromium participant receives them through the server
and the test measures, on its page, when each flash is shown (requestVideoFrameCallback: the frame's expected
display time) and when each beep is played (the received track's samples in Web Audio, on the audio context's
output clock). The offset is video minus audio per flash.

Chromium synchronises an audio and a video track only when the SDP puts them in one stream (a=msid): the server
pairs a person's voice and camera on an audio slot and a video slot that share one (sfu/webrtc.py). Without it
the 500 ms of the network stay on screen (measured: about 420 ms, and 90 ms with no delay added).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import is_rtcp
from av import AudioFrame, VideoFrame

from signaling.client import SignalingClient
from tests.browser.conftest import BrowserParticipant, wait_for
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

PERIOD = 1.5        # a flash and a beep every PERIOD seconds
PULSE = 0.1         # each lasts this long
FPS = 30
RATE = 48000
WIDTH, HEIGHT = 320, 240
# The publisher's video reaches the network this much after its audio (the environment variable is for
# measuring other cases by hand).
VIDEO_LATE = float(os.environ.get("CONVENE_LIPSYNC_VIDEO_LATE_MS", "500")) / 1000
# Chromium's synchroniser moves a playout delay once a second, by half the (averaged) offset and at most 80 ms,
# and leaves offsets under 30 ms alone (libwebrtc video/stream_synchronization.cc): flashes in the first WARM_UP
# seconds show it converging; the ones after are the figure.
WARM_UP = 9.0
MEASURE = 10.5      # seven flashes after the warm-up
BOUND_MS = 200      # the test's loose bound; the target is 80 ms


class Clip:
    """The clip's one clock: frame i and audio sample n are made for t0 + i / FPS and t0 + n / RATE."""

    def __init__(self) -> None:
        self.t0 = time.time() + 0.3

    @staticmethod
    def pulse(t: np.ndarray) -> np.ndarray:
        return np.mod(t, PERIOD) < PULSE

    async def until(self, t: float) -> None:
        await asyncio.sleep(max(0.0, self.t0 + t - time.time()))


class FlashTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, clip: Clip) -> None:
        super().__init__()
        self.clip = clip
        self.index = 0
        self.white = np.full((HEIGHT * 3 // 2, WIDTH), 128, np.uint8)
        self.white[:HEIGHT] = 235
        self.black = np.full((HEIGHT * 3 // 2, WIDTH), 128, np.uint8)
        self.black[:HEIGHT] = 16

    async def recv(self) -> VideoFrame:
        t = self.index / FPS
        await self.clip.until(t)
        flash = bool(Clip.pulse(np.array([t]))[0])
        frame = VideoFrame.from_ndarray(self.white if flash else self.black, format="yuv420p")
        frame.pts = self.index * (90000 // FPS)
        frame.time_base = Fraction(1, 90000)
        self.index += 1
        return frame


class BeepTrack(MediaStreamTrack):
    kind = "audio"
    SAMPLES = RATE // 50  # 20 ms

    def __init__(self, clip: Clip) -> None:
        super().__init__()
        self.clip = clip
        self.sample = 0

    async def recv(self) -> AudioFrame:
        await self.clip.until(self.sample / RATE)
        t = (self.sample + np.arange(self.SAMPLES)) / RATE
        wave = np.where(Clip.pulse(t), 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)
        frame = AudioFrame.from_ndarray((wave * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self.sample
        frame.time_base = Fraction(1, RATE)
        self.sample += self.SAMPLES
        return frame


class LateTransport:
    """The video sender's transport, holding its RTP back by `delay` (RTCP, its sender reports, goes at once):
    what a slow encoder or a pacer does to a real sender's video."""

    def __init__(self, inner: Any, delay: float) -> None:
        self._inner = inner
        self._delay = delay
        self._pending: set[asyncio.Task[None]] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _send_rtp(self, data: bytes) -> None:
        if is_rtcp(data) or self._delay <= 0:
            await self._inner._send_rtp(data)
            return

        async def later() -> None:
            await asyncio.sleep(self._delay)
            try:
                await self._inner._send_rtp(data)
            except ConnectionError:
                pass

        task = asyncio.get_running_loop().create_task(later())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


class ClipPublisher:
    """An aiortc participant that publishes the clip as its camera and microphone."""

    def __init__(self, server: RunningServer, room: str, token: str) -> None:
        self.pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.client = SignalingClient(server.url, room, token, on_offer=self._answer)

    async def _answer(self, sdp: str, tracks: dict[str, Any]) -> str:
        await self.sub.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await self.sub.setLocalDescription(await self.sub.createAnswer())
        return str(self.sub.localDescription.sdp)

    async def publish(self, video_late: float) -> str:
        await self.client.connect(subscriptions={"max_video": 0})
        clip = Clip()
        video = self.pub.addTransceiver(FlashTrack(clip), direction="sendonly")
        audio = self.pub.addTransceiver(BeepTrack(clip), direction="sendonly")
        await self.pub.setLocalDescription(await self.pub.createOffer())
        await self.client.send({"type": "publish", "sdp": self.pub.localDescription.sdp, "tracks": [
            {"mid": video.mid, "source": "camera"}, {"mid": audio.mid, "source": "microphone"}]})
        answer = await self.client.wait_for("answer", error_ok=False)
        await self.pub.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        video.sender._RTCRtpSender__transport = LateTransport(video.sender.transport, video_late)
        assert self.client.joined is not None
        return str(self.client.joined["participant"]["id"])

    async def close(self) -> None:
        await self.client.close()
        await self.pub.close()
        await self.sub.close()


# Runs in the receiving page: flash onsets by the frames' expected display time, beep onsets on the audio
# context's output clock, both in performance.now() milliseconds.
MEASURE_JS = """(pid) => {
  const tile = document.querySelector(`.tile[data-participant-id="${pid}"][data-kind="main"]`);
  const video = tile.querySelector("video");
  const audio = tile.querySelector("audio");
  const found = { flashes: [], beeps: [], frames: 0, blocks: 0 };
  window.lipsync = found;
  const canvas = new OffscreenCanvas(16, 12);
  const g = canvas.getContext("2d", { willReadFrequently: true });
  let bright = false;
  const onFrame = (now, meta) => {
    g.drawImage(video, 0, 0, 16, 12);
    const d = g.getImageData(0, 0, 16, 12).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += d[i];
    const isBright = sum / (d.length / 4) > 128;
    if (isBright && !bright) found.flashes.push(meta.expectedDisplayTime);
    bright = isBright;
    found.frames += 1;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  const ctx = new AudioContext();
  const source = ctx.createMediaStreamSource(new MediaStream([audio.srcObject.getAudioTracks()[0]]));
  const N = 256;
  const node = ctx.createScriptProcessor(N, 1, 1);
  let loud = false, quiet = 0;
  node.onaudioprocess = (event) => {
    const x = event.inputBuffer.getChannelData(0);
    const stamp = ctx.getOutputTimestamp();
    found.blocks += 1;
    for (let i = 0; i < x.length; i++) {
      const a = Math.abs(x[i]);
      if (!loud && a > 0.15) {
        loud = true;
        quiet = 0;
        // This block entered the graph one buffer before the block played at playbackTime.
        const at = event.playbackTime - N / ctx.sampleRate + i / ctx.sampleRate;
        found.beeps.push(stamp.performanceTime + (at - stamp.contextTime) * 1000);
      } else if (loud && a < 0.02) {
        quiet += 1;
        if (quiet > ctx.sampleRate * 0.3) loud = false;
      } else if (loud) {
        quiet = 0;
      }
    }
  };
  source.connect(node);
  node.connect(ctx.destination);
  return ctx.state;
}"""


async def playout_gap(viewer: BrowserParticipant, pid: str) -> float | None:
    """Chromium's own view: when the video being shown was made minus when the audio being played was (ms)."""
    tracks = [t for t in (await viewer.stats())["tracks"] if t["participant_id"] == pid]
    playout = {t["kind"]: t.get("estimatedPlayoutTimestamp") for t in tracks}
    if not playout.get("video") or not playout.get("audio"):
        return None
    return float(playout["video"] - playout["audio"])


def offsets_ms(flashes: list[float], beeps: list[float]) -> list[tuple[float, float]]:
    """Per flash: (its time, its time minus the nearest beep's, within half a period): positive = video late."""
    result = []
    for flash in flashes:
        nearest = min(beeps, key=lambda b: abs(b - flash), default=None)
        if nearest is not None and abs(nearest - flash) < PERIOD * 500:
            result.append((flash, flash - nearest))
    return result


async def measure(viewer: BrowserParticipant, server: RunningServer, room: str, video_late: float,
                  identity: str = "clip", warm_up: float = WARM_UP, seconds: float = MEASURE) -> dict[str, Any]:
    """One clip publisher for warm_up + seconds: the offsets of the flashes after warm_up, and more."""
    publisher = ClipPublisher(server, room, await server.token(room, identity, name=identity.title()))
    try:
        pid = await publisher.publish(video_late)

        async def receiving() -> bool:
            tiles = {t["participant_id"]: t for t in await viewer.tiles()}
            tile = tiles.get(pid)
            return bool(tile and tile["showsVideo"] and tile["hasAudio"])

        await wait_for(receiving, timeout=20, what="the clip's video and audio in Chromium")
        assert await viewer.page.evaluate(MEASURE_JS, pid) == "running"
        started = await viewer.page.evaluate("performance.now()")
        await asyncio.sleep(warm_up + seconds)
        found = await viewer.page.evaluate("window.lipsync")
        gap = await playout_gap(viewer, pid)
        mids = sorted(t["mid"] for t in (await viewer.stats())["tracks"] if t["participant_id"] == pid)
    finally:
        await publisher.close()
    timeline = [(round((flash - started) / 1000, 1), round(offset))
                for flash, offset in offsets_ms(found["flashes"], found["beeps"])]
    offsets = [offset for at, offset in timeline if at >= warm_up]
    figure = {
        "flashes": len(found["flashes"]), "beeps": len(found["beeps"]), "frames": found["frames"],
        "offsets_ms": offsets,
        "median_ms": round(statistics.median(offsets)) if offsets else None,
        "spread_ms": round(max(offsets) - min(offsets)) if offsets else None,
        "playout_gap_ms": round(gap) if gap is not None else None,
        "timeline": timeline,  # (seconds since the media arrived, offset ms) for every flash
        "mids": mids,
    }
    print(f"lip sync, {identity}'s video {video_late * 1000:.0f} ms late on the network: {figure}")
    return figure


async def test_a_speakers_voice_and_camera_play_in_sync_in_chromium(join: Any, server: RunningServer) -> None:
    viewer = await join("lipsync", "Viewer")
    figure = await measure(viewer, server, "lipsync", VIDEO_LATE)
    assert figure["flashes"] >= 10 and figure["beeps"] >= 10, figure
    assert len(figure["offsets_ms"]) >= 5, figure
    assert abs(figure["median_ms"]) < BOUND_MS, figure
    assert all(abs(o) < BOUND_MS for o in figure["offsets_ms"][-3:]), figure

    # The next speaker takes the same pair of slots (no renegotiation) and plays in sync from the start:
    # its sender reports, on the server's clock, continue the mapping Chromium has.
    nxt = await measure(viewer, server, "lipsync", VIDEO_LATE, identity="next", warm_up=0.0, seconds=6.0)
    assert nxt["mids"] == figure["mids"], (figure, nxt)
    assert len(nxt["offsets_ms"]) >= 3, nxt
    # A handover that lost the mapping starts near VIDEO_LATE and closes at most 80 ms a second, so it fails
    # both checks in six seconds (e.g. 460, 380, 300, 220). The first flash alone may be over the bound: a CI
    # run on a host at half speed read 202, 168, 191 ms (likely its first packets, whose handling time sets
    # the handover, were handled late by a busy loop).
    assert abs(nxt["median_ms"]) < BOUND_MS, nxt
    assert all(abs(o) < BOUND_MS for o in nxt["offsets_ms"][1:]), nxt
