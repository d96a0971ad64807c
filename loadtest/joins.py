"""What a join costs the server: CPU milliseconds per participant who joins, publishes audio and video and
receives everyone's media (signaling, two peer connections: DTLS certificate and handshake, SDP, ICE), and
the server's memory per participant.

    python -m loadtest.joins [--participants 30] [--profile FILE]

The server runs in its own process pinned to core 0 (`convene serve`, captions off), the joining bots in this
process on core 1, one after another, each waiting until its media flows both ways before the next comes.
With --profile the server runs under cProfile and writes its statistics to FILE at the end (slower: the
figures then say where the time goes, not how much there is).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiortc.exceptions import InvalidStateError

from identity.meetings import invite
from loadtest.peers import PacketPublisherPeer, PacketSubscriberPeer
from loadtest.proc import cpu_seconds, free_port, pin, wait_listening
from sfu.rtp import RtpPacket
from sfu.webrtc import configure_ice
from signaling.client import SignalingClient

ROOM = "joins"


@dataclass
class JoinResult:
    participants: int
    server_cpu: float  # CPU seconds the server used from the first join to the last one's media
    wall: float
    rss_before_kib: int
    rss_after_kib: int

    @property
    def cpu_ms_per_join(self) -> float:
        return self.server_cpu / self.participants * 1000

    @property
    def kib_per_participant(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.participants


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_server(port: int, data_dir: Path, profile: Path | None, log: Path | None = None) -> subprocess.Popen[bytes]:
    serve = ["serve", "--port", str(port), "--data-dir", str(data_dir), "--no-captions"]
    cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "signaling.cli", *serve] if profile \
        else [sys.executable, "-m", "signaling.cli", *serve]
    output = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=output, stderr=output)
    pin(proc.pid, 0)
    wait_listening(proc, port, "server")
    return proc


class Bot:
    """A participant that publishes one audio and one video stream (a few packets a second: enough to see
    media flow, not a forwarding load) and counts what it receives."""

    def __init__(self, url: str, token: str) -> None:
        self.received = 0
        self.subscriber = PacketSubscriberPeer(self._on_packet)
        self.client = SignalingClient(url, ROOM, token, on_offer=self._answer)
        self.publisher = PacketPublisherPeer()

    def _on_packet(self, mid: str, packet: RtpPacket) -> None:
        self.received += 1

    async def _answer(self, sdp: str, tracks: dict[str, Any]) -> str:
        try:
            return await self.subscriber.answer(sdp)
        except InvalidStateError:
            return ""  # an offer that arrived as the bot left: nothing to answer

    async def join(self) -> None:
        await self.client.connect()
        video = self.publisher.add_track("video", "video/VP8")
        audio = self.publisher.add_track("audio", "audio/opus")
        offer = await self.publisher.create_offer()
        reply = await self.client.request({"type": "publish", "sdp": offer, "tracks": [
            {"mid": video.mid, "source": "camera"}, {"mid": audio.mid, "source": "microphone"}]}, "answer")
        await self.publisher.apply_answer(reply["sdp"])
        self.writers = (video, audio)

    def tick(self, i: int) -> None:
        video, audio = self.writers
        if video.ready:
            video.write(RtpPacket(payload_type=96, marker=1, sequence_number=i % 65536, timestamp=3000 * i,
                                  ssrc=0, payload=bytes([0x10, 0x00]) + bytes(300)))
        if audio.ready:
            audio.write(RtpPacket(payload_type=111, sequence_number=i % 65536, timestamp=960 * i, ssrc=0,
                                  payload=b"\x78" + bytes(60)))

    async def close(self) -> None:
        for closing in (self.client.close(), self.publisher.close(), self.subscriber.close()):
            try:
                await asyncio.wait_for(closing, 5)
            except Exception:
                pass


async def until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def run(participants: int, profile: Path | None, log: Path | None = None) -> JoinResult:
    configure_ice(include_loopback=True)
    pin(os.getpid(), 1)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        port = free_port()
        proc = start_server(port, data_dir, profile, log)
        url = f"http://127.0.0.1:{port}"
        bots: list[Bot] = []
        stop = asyncio.Event()

        async def pulse() -> None:
            i = 0
            while not stop.is_set():
                for bot in list(bots):
                    if hasattr(bot, "writers"):
                        bot.tick(i)
                i += 1
                await asyncio.sleep(1.0)  # a keyframe a second: little forwarding beside the joins

        ticker = asyncio.create_task(pulse())
        try:
            # One participant first, who everyone after receives: a join then includes receiving media.
            await asyncio.sleep(1.0)
            rss0, cpu0, t0 = rss_kib(proc.pid), cpu_seconds(proc.pid), time.monotonic()
            for n in range(participants):
                bot = Bot(url, invite(data_dir, ROOM, f"p{n}"))
                bots.append(bot)
                await bot.join()
                if n and not await until(lambda: bot.received > 0, 15):
                    print(f"  warning: participant {n} received no media", flush=True)
            cpu1, t1, rss1 = cpu_seconds(proc.pid), time.monotonic(), rss_kib(proc.pid)
            return JoinResult(participants, cpu1 - cpu0, t1 - t0, rss0, rss1)
        finally:
            stop.set()
            await ticker
            for bot in bots:
                await bot.close()
            proc.send_signal(signal.SIGINT)  # a clean exit writes the profile
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=30)
    parser.add_argument("--profile", type=Path, default=None, help="write the server's cProfile stats here")
    parser.add_argument("--server-log", type=Path, default=None, help="append the server's output here")
    args = parser.parse_args()
    result = asyncio.run(run(args.participants, args.profile, args.server_log))
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"cores: {os.cpu_count()}; load average {' '.join(load)}; server pinned to core 0")
    print(f"{result.participants} joins (each publishes audio + video and receives everyone before): "
          f"server {result.cpu_ms_per_join:.1f} CPU ms per join, {result.kib_per_participant:,.0f} KiB RSS per "
          f"participant, {result.wall:.1f} s")


if __name__ == "__main__":
    main()
