"""Forwarding benchmark: one publisher (VP8 640x360@30 + Opus) to K subscribers, through Convene's packet
forwarding and then through aiortc's MediaRelay (decode once, encode per subscriber), in one run.

    python -m loadtest.forwarding [--subscribers 1,5,20] [--seconds 10]

The server runs in its own process pinned to core 0, the load (this process) on core 1. The load
replays packets encoded once before timing and never decodes, so it measures the server, not itself.
Prints server CPU seconds per second of media, forwarded packets per CPU-second, µs per forwarded
packet and the ratio between the two servers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.proc import cpu_seconds, free_port, pin, wait_listening
from sfu.rtp import RtpPacket
from loadtest.encode import EncodedFrame, pre_encode_opus, pre_encode_vp8
from loadtest.peers import PacketPublisherPeer, PacketSubscriberPeer
from sfu.webrtc import configure_ice
from signaling.client import SignalingClient
from identity.meetings import invite

ROOM = "bench"


@dataclass
class CaseResult:
    mode: str
    subscribers: int
    seconds: float
    server_cpu: float  # CPU-seconds used by the server during the window
    packets_in: int
    packets_out: int  # received by all subscribers
    video_frames_out: int

    @property
    def cpu_per_media_second(self) -> float:
        return self.server_cpu / self.seconds

    @property
    def packets_per_cpu_second(self) -> float:
        return self.packets_out / self.server_cpu if self.server_cpu else float("inf")

    @property
    def us_per_packet(self) -> float:
        return self.server_cpu / self.packets_out * 1e6 if self.packets_out else float("inf")

    @property
    def fps_per_subscriber(self) -> float:
        return self.video_frames_out / self.subscribers / self.seconds


def start_server(mode: str, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    if mode.startswith("forwarding"):
        # Captions off: this measures forwarding (captions have their own benchmark, loadtest.captions).
        serve = ["serve", "--port", str(port), "--data-dir", str(data_dir), "--no-captions"]
        # forwarding-aiortc / -lean / -c / -batch: one send path of the fan-out (#14); plain "forwarding": the default.
        path = mode.partition("-")[2]
        cmd = [sys.executable, "-m", "loadtest.send_path_server", path, *serve] if path else \
            [sys.executable, "-m", "signaling.cli", *serve]
    else:
        cmd = [sys.executable, "-m", "loadtest.relay_baseline", "--port", str(port), "--secret-dir", str(data_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pin(proc.pid, 0)
    wait_listening(proc, port, f"{mode} server")
    return proc


class Replayer:
    """Sends pre-encoded frames in real time with our own sequence numbers and timestamps."""

    def __init__(self, write: Callable[[RtpPacket], bool], frames: list[EncodedFrame], interval: float,
                 ts_step: int, audio: bool) -> None:
        self.write, self.frames, self.interval, self.ts_step, self.audio = write, frames, interval, ts_step, audio
        self.seq = 1
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        i = 0
        while not stop.is_set():
            frame = self.frames[i % len(self.frames)]
            for n, payload in enumerate(frame.payloads):
                packet = RtpPacket(payload_type=0, marker=int(n == len(frame.payloads) - 1),
                                   sequence_number=self.seq, timestamp=(i * self.ts_step) % (1 << 32), payload=payload)
                if self.audio:
                    packet.extensions.audio_level = (True, 30)
                if self.write(packet):
                    self.sent += 1
                self.seq = (self.seq + 1) % 65536
            i += 1
            await asyncio.sleep(max(0.0, start + i * self.interval - loop.time()))


async def run_case(mode: str, k: int, seconds: float, video: list[EncodedFrame], audio: list[EncodedFrame]) -> CaseResult:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        port = free_port()
        proc = start_server(mode, port, data_dir)
        url = f"http://127.0.0.1:{port}"
        stop = asyncio.Event()
        peers: list[tuple[SignalingClient, PacketSubscriberPeer]] = []
        try:
            publisher = PacketPublisherPeer()
            pub_client = SignalingClient(url, ROOM, invite(data_dir, ROOM, "publisher"))
            await pub_client.connect()
            v = publisher.add_track("video", "video/VP8")
            a = publisher.add_track("audio", "audio/opus")
            offer = await publisher.create_offer()
            reply = await pub_client.request({"type": "publish", "sdp": offer, "tracks": [
                {"mid": v.mid, "source": "camera"}, {"mid": a.mid, "source": "microphone"}]}, "answer")
            await publisher.apply_answer(reply["sdp"])
            replayers = [Replayer(v.write, video, 1 / 30, 3000, audio=False),
                         Replayer(a.write, audio, 0.02, 960, audio=True)]
            tasks = [asyncio.create_task(r.run(stop)) for r in replayers]
            received = [0]
            frames = [0]

            def counter(client_ref: list[SignalingClient]) -> Callable[[str, RtpPacket], None]:
                def count(mid: str, packet: RtpPacket) -> None:
                    received[0] += 1
                    if packet.marker and client_ref[0].tracks_by_mid.get(mid, {}).get("kind") == "video":
                        frames[0] += 1
                return count

            for n in range(k):
                ref: list[SignalingClient] = []
                sub = PacketSubscriberPeer(counter(ref))
                client = SignalingClient(url, ROOM, invite(data_dir, ROOM, f"sub{n}"), on_offer=answerer(sub))
                ref.append(client)
                await client.connect()
                peers.append((client, sub))
            # Everyone connected and receiving video: then warm up and measure.
            deadline = time.monotonic() + 30
            while frames[0] < 5 * k and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(2)
            cpu0, in0, out0, f0, t0 = cpu_seconds(proc.pid), sum(r.sent for r in replayers), received[0], frames[0], time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, in1, out1, f1, t1 = cpu_seconds(proc.pid), sum(r.sent for r in replayers), received[0], frames[0], time.monotonic()
            stop.set()
            await asyncio.gather(*tasks)
            await pub_client.close()
            await publisher.close()
            return CaseResult(mode, k, t1 - t0, cpu1 - cpu0, in1 - in0, out1 - out0, f1 - f0)
        finally:
            stop.set()
            for client, sub in peers:
                await client.close()
                await sub.close()
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


def answerer(sub: PacketSubscriberPeer) -> Callable[[str, dict[str, Any]], Awaitable[str]]:
    async def answer(sdp: str, tracks: dict[str, Any]) -> str:
        return await sub.answer(sdp)
    return answer


def print_table(results: list[CaseResult]) -> None:
    print(f"\ncores: {os.cpu_count()}; server pinned to core 0, load to core 1; one publisher "
          "VP8 640x360@30 (~1.4 Mbit/s) + Opus\n")
    print("| K | server | CPU s per media s | packets in/s | packets out/s | packets per CPU-s | µs per forwarded packet | video fps per subscriber |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.subscribers} | {r.mode} | {r.cpu_per_media_second:.3f} | {r.packets_in / r.seconds:,.0f} | "
              f"{r.packets_out / r.seconds:,.0f} | "
              f"{r.packets_per_cpu_second:,.0f} | {r.us_per_packet:.1f} | {r.fps_per_subscriber:.1f} |")
    print("\nratio (MediaRelay µs per packet / forwarding µs per packet):")
    by = {(r.mode, r.subscribers): r for r in results}
    forwarding = sorted({r.mode for r in results if r.mode.startswith("forwarding")})
    for k in sorted({r.subscribers for r in results}):
        m = by.get(("mediarelay", k))
        for mode in forwarding:
            f = by.get((mode, k))
            if f and m:
                print(f"  K={k} {mode}: {m.us_per_packet / f.us_per_packet:.1f}x")


async def main_async(ks: list[int], seconds: float, modes: list[str]) -> list[CaseResult]:
    configure_ice(include_loopback=True)
    pin(os.getpid(), 1)
    video = pre_encode_vp8(150, bitrate=1_500_000)
    audio = pre_encode_opus(3)
    results = []
    for mode in modes:
        for k in ks:
            result = await run_case(mode, k, seconds, video, audio)
            print(f"{mode:>10} K={k:<3} cpu={result.cpu_per_media_second:.3f} out={result.packets_out / result.seconds:,.0f}/s "
                  f"{result.us_per_packet:.1f} µs/packet fps={result.fps_per_subscriber:.1f}", flush=True)
            results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", default="1,5,20", help="comma-separated K values")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per case")
    parser.add_argument("--modes", default="forwarding,mediarelay",
                        help="forwarding (the default send path), forwarding-aiortc, forwarding-lean, forwarding-c, forwarding-batch, "
                             "mediarelay")
    args = parser.parse_args()
    results = asyncio.run(main_async([int(k) for k in args.subscribers.split(",")], args.seconds,
                                     args.modes.split(",")))
    print_table(results)


if __name__ == "__main__":
    main()
