"""Janus comparison: the same load, one publisher (VP8 640x360@30 + Opus, ~222 packets/s in) to K
subscribers, through Convene and through Janus's VideoRoom (Debian package `janus`), in one run.

    python -m loadtest.janus [--subscribers 20,50] [--seconds 10] [--servers convene,janus,janus-el1] [--rounds N]

Janus never gathers ICE candidates on loopback, so both servers run in a private network namespace
joined to the host by a veth pair (private /24 addresses, nothing leaves the machine) and the load
reaches both through the same veth. Each server process, every thread of it, is pinned to core 0,
the load (this process) to core 1; a fresh server per case. `janus` runs with Janus's default event
loops (one thread per handle), `janus-el1` with `event_loops = 1`. Server CPU comes from
/proc/<pid>/stat over the window; µs per forwarded packet = server CPU / packets the subscribers got.

Needs root (ip netns) and `apt-get install -y janus iproute2`; without Janus it says
"janus not available" and exits 0. See docs/janus-comparison.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Protocol

from loadtest.forwarding import CaseResult, Replayer
from loadtest.proc import cpu_seconds, pin
from loadtest.janus_api import (
    JanusError,
    JanusHandle,
    JanusSession,
    create_room,
    publish,
    subscribe,
)
from loadtest.janus_netns import Netns, NetnsError
from loadtest.janus_servers import (
    SERVER_CORE,
    ServerError,
    ServerProcess,
    janus_available,
    start_convene,
    start_janus,
)
from sfu.rtp import RtpPacket
from loadtest.encode import EncodedFrame, pre_encode_opus, pre_encode_vp8
from loadtest.peers import PacketPublisherPeer, PacketSubscriberPeer, PacketWriter
from sfu.webrtc import configure_ice
from signaling.client import SignalingClient
from identity.meetings import invite

LOAD_CORE = 1
ROOM = "bench"
JANUS_ROOM = 4242
CONNECT_TIMEOUT = 20.0  # per connection
FLOW_TIMEOUT = 30.0  # until every subscriber receives video
WARM_UP = 2.0
INSTALL_HINT = "apt-get install -y janus iproute2 (and run as root: it needs `ip netns`)"
# name -> Janus event_loops; convene-<path>: Convene with one fan-out send path (aiortc, lean, c, batch) and/or
# receive path (queue: aiortc's, before the inline one; python: inline without the compiled receive route;
# single: python, one datagram per wake-up; route: the route entered from Python per datagram, without the
# socket drain), #14 (loadtest.send_path_server)
SERVERS = {"convene": None, "convene-aiortc": None, "convene-lean": None, "convene-c": None, "convene-batch": None,
           "convene-queue": None, "convene-lean+queue": None, "convene-single": None, "convene-python": None,
           "convene-route": None,
           "janus": None, "janus-el1": 1}


class Target(Protocol):
    """A server under test, seen from the load: publish once, then subscribe K times."""

    name: str
    server: ServerProcess

    async def publish(self, publisher: PacketPublisherPeer, video: PacketWriter, audio: PacketWriter) -> None: ...

    async def subscribe(self, index: int, subscriber: PacketSubscriberPeer) -> None: ...

    async def close(self) -> None: ...


class ConveneTarget:
    def __init__(self, server: ServerProcess, data_dir: Path, name: str = "convene") -> None:
        self.name = name
        self.server = server
        self.url = f"http://{server.address}:{server.port}"
        self.data_dir = data_dir
        self.clients: list[SignalingClient] = []

    async def _client(self, identity: str, subscriber: PacketSubscriberPeer | None = None) -> SignalingClient:
        on_offer = None if subscriber is None else (lambda sdp, tracks: subscriber.answer(sdp))
        client = SignalingClient(self.url, ROOM, invite(self.data_dir, ROOM, identity), on_offer=on_offer)
        self.clients.append(client)
        await client.connect()
        return client

    async def publish(self, publisher: PacketPublisherPeer, video: PacketWriter, audio: PacketWriter) -> None:
        client = await self._client("publisher")
        offer = await publisher.create_offer()
        reply = await client.request({"type": "publish", "sdp": offer, "tracks": [
            {"mid": video.mid, "source": "camera"}, {"mid": audio.mid, "source": "microphone"}]}, "answer")
        await publisher.apply_answer(reply["sdp"])

    async def subscribe(self, index: int, subscriber: PacketSubscriberPeer) -> None:
        client = await self._client(f"sub{index}", subscriber)
        await client.wait_for("offer", timeout=CONNECT_TIMEOUT)  # answered by the time it is listed

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


class JanusTarget:
    """All bots share one Janus session (one long poll); each has its own VideoRoom handle."""

    def __init__(self, server: ServerProcess, name: str) -> None:
        self.name = name
        self.server = server
        self.session = JanusSession(f"http://{server.address}:{server.port}/janus")
        self.feed: int | None = None

    async def publish(self, publisher: PacketPublisherPeer, video: PacketWriter, audio: PacketWriter) -> None:
        await self.session.open()
        handle: JanusHandle = await self.session.attach()
        await create_room(handle, JANUS_ROOM)
        feed, answer = await publish(handle, JANUS_ROOM, await publisher.create_offer())
        await publisher.apply_answer(answer)
        await handle.wait_event("webrtcup")
        self.feed = feed

    async def subscribe(self, index: int, subscriber: PacketSubscriberPeer) -> None:
        assert self.feed is not None, "publish first"
        await subscribe(await self.session.attach(), JANUS_ROOM, self.feed, subscriber.answer)

    async def close(self) -> None:
        await self.session.close()


class Audience:
    """Counts what K packet subscribers receive: packets, and video frames (marker bit) per subscriber."""

    def __init__(self) -> None:
        self.packets = 0
        self.frames: list[int] = []
        self.peers: list[PacketSubscriberPeer] = []

    def new_peer(self) -> PacketSubscriberPeer:
        index = len(self.frames)
        self.frames.append(0)
        kinds: dict[str, str] = {}

        def on_packet(mid: str, packet: RtpPacket) -> None:
            self.packets += 1
            if packet.marker:
                kind = kinds.get(mid) or kinds.setdefault(mid, kind_of(peer, mid))
                if kind == "video":
                    self.frames[index] += 1

        peer = PacketSubscriberPeer(on_packet)
        self.peers.append(peer)
        return peer

    @property
    def total_frames(self) -> int:
        return sum(self.frames)

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()


def kind_of(peer: PacketSubscriberPeer, mid: str) -> str:
    for transceiver in peer.pc.getTransceivers():
        if transceiver.mid == mid:
            return str(transceiver.kind)
    return ""


class Lab:
    """The namespace and every server started in it; `close()` always ends them and removes it."""

    def __init__(self, netns: Netns, folder: Path) -> None:
        self.netns, self.folder = netns, folder
        self.servers: list[ServerProcess] = []

    def start(self, name: str) -> tuple[ServerProcess, Path]:
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.folder))
        if name.startswith("convene"):
            server = start_convene(self.netns, folder, name.partition("-")[2] or None)
        else:
            server = start_janus(self.netns, folder, SERVERS[name])
        self.servers.append(server)
        return server, folder

    def stop(self, server: ServerProcess) -> None:
        server.stop()
        if server in self.servers:
            self.servers.remove(server)

    def close(self) -> list[str]:
        for server in list(self.servers):
            with contextlib.suppress(Exception):
                self.stop(server)
        return self.netns.delete()


async def start_target(lab: Lab, name: str) -> Target:
    server, folder = await asyncio.to_thread(lab.start, name)
    if server.affinity() != {SERVER_CORE} and (os.cpu_count() or 1) > 1:
        print(f"  warning: {name} threads may run on cores {sorted(server.affinity())}", flush=True)
    if name.startswith("convene"):
        return ConveneTarget(server, folder, name)
    return JanusTarget(server, name)


async def connect(target: Target, k: int, audience: Audience, video: list[EncodedFrame],
                  audio: list[EncodedFrame], publisher: PacketPublisherPeer, stop: asyncio.Event,
                  tasks: list[asyncio.Task[None]]) -> list[Replayer]:
    """Publishes, starts the replay (its tasks land in `tasks`), then subscribes K peers one by one."""
    v = publisher.add_track("video", "video/VP8")
    a = publisher.add_track("audio", "audio/opus")
    await asyncio.wait_for(target.publish(publisher, v, a), CONNECT_TIMEOUT)
    replayers = [Replayer(v.write, video, 1 / 30, 3000, audio=False),
                 Replayer(a.write, audio, 0.02, 960, audio=True)]
    tasks.extend(asyncio.create_task(replayer.run(stop)) for replayer in replayers)
    for n in range(k):
        await asyncio.wait_for(target.subscribe(n, audience.new_peer()), CONNECT_TIMEOUT)
    return replayers


async def wait_for_video(audience: Audience, k: int) -> None:
    """Until every subscriber has received a few video frames (or FLOW_TIMEOUT passes)."""
    deadline = time.monotonic() + FLOW_TIMEOUT
    while min(audience.frames, default=0) < 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    silent = sum(1 for frames in audience.frames if frames < 5)
    if silent:
        print(f"  warning: {silent} of {k} subscribers received no video", flush=True)


async def measure(target: Target, audience: Audience, replayers: list[Replayer], k: int,
                  seconds: float) -> CaseResult:
    pid = target.server.pid
    cpu0, in0, out0, f0, t0 = (cpu_seconds(pid), sum(r.sent for r in replayers), audience.packets,
                               audience.total_frames, time.monotonic())
    await asyncio.sleep(seconds)
    cpu1, in1, out1, f1, t1 = (cpu_seconds(pid), sum(r.sent for r in replayers), audience.packets,
                               audience.total_frames, time.monotonic())
    return CaseResult(target.name, k, t1 - t0, cpu1 - cpu0, in1 - in0, out1 - out0, f1 - f0)


async def run_case(lab: Lab, name: str, k: int, seconds: float, video: list[EncodedFrame],
                   audio: list[EncodedFrame]) -> CaseResult:
    target = await start_target(lab, name)
    audience = Audience()
    stop = asyncio.Event()
    publisher = PacketPublisherPeer()
    tasks: list[asyncio.Task[None]] = []
    try:
        replayers = await connect(target, k, audience, video, audio, publisher, stop, tasks)
        await wait_for_video(audience, k)
        await asyncio.sleep(WARM_UP)
        return await measure(target, audience, replayers, k, seconds)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await target.close()
        await audience.close()
        await publisher.close()
        await asyncio.to_thread(lab.stop, target.server)


def print_result(r: CaseResult) -> None:
    print(f"{r.mode:>10} K={r.subscribers:<3} cpu={r.cpu_per_media_second:.3f} "
          f"out={r.packets_out / r.seconds:,.0f}/s {r.us_per_packet:.1f} µs/packet "
          f"fps={r.fps_per_subscriber:.1f}", flush=True)


def janus_ratio(result: CaseResult, round_: list[CaseResult]) -> float | None:
    """`result`'s µs per forwarded packet over Janus `event_loops = 1`'s at the same K in the same round; None for
    that Janus case itself, or in a round without one."""
    ref = next((r for r in round_ if r.mode == "janus-el1" and r.subscribers == result.subscribers), None)
    if ref is None or ref is result or not ref.us_per_packet:
        return None
    return result.us_per_packet / ref.us_per_packet


def print_table(rounds: list[list[CaseResult]]) -> None:
    """Every case; its ratio is to Janus `event_loops = 1` at the same K in the same round."""
    print(f"\ncores: {os.cpu_count()}; servers in a network namespace behind a veth, pinned to core "
          f"{SERVER_CORE}, load on core {LOAD_CORE}; one publisher VP8 640x360@30 + Opus\n")
    print("| K | server | CPU s per media s | packets in/s | packets out/s | µs per forwarded packet "
          "| video fps per subscriber | µs ratio to Janus event_loops=1 |")
    print("|---|---|---|---|---|---|---|---|")
    for results in rounds:
        for r in results:
            ratio = janus_ratio(r, results)
            shown = "—" if ratio is None else f"{ratio:.2f}"
            print(f"| {r.subscribers} | {r.mode} | {r.cpu_per_media_second:.3f} | {r.packets_in / r.seconds:,.0f} "
                  f"| {r.packets_out / r.seconds:,.0f} | {r.us_per_packet:.1f} | {r.fps_per_subscriber:.1f} "
                  f"| {shown} |")


def print_rounds(rounds: list[list[CaseResult]]) -> None:
    """Each case's median over the rounds, and every round's own ratio to Janus `event_loops = 1`. A round runs
    each server once, minutes apart at most, so the host's slower swings (±25 % for the same case between runs on
    this VM) weigh on both sides of its ratios alike."""
    print(f"\nmedians of {len(rounds)} rounds (each round: every server once, in turn)\n")
    print("| K | server | median µs per forwarded packet | median ratio to Janus event_loops=1 | each round's ratio |")
    print("|---|---|---|---|---|")
    cases = [(r.subscribers, r.mode) for r in rounds[0]]
    for k, mode in cases:
        mine = [(r, round_) for round_ in rounds for r in round_ if (r.subscribers, r.mode) == (k, mode)]
        us = [r.us_per_packet for r, _ in mine]
        ratios = [x for r, round_ in mine if (x := janus_ratio(r, round_)) is not None]
        shown = f"{statistics.median(ratios):.2f} | {', '.join(f'{x:.2f}' for x in ratios)}" if ratios else "— | —"
        print(f"| {k} | {mode} | {statistics.median(us):.1f} | {shown} |")


async def main_async(lab: Lab, ks: list[int], seconds: float, servers: list[str],
                     rounds: int) -> list[list[CaseResult]]:
    configure_ice(include_loopback=False)  # the servers are reached over the veth only
    pin(os.getpid(), LOAD_CORE)
    video = pre_encode_vp8(150, bitrate=1_500_000)
    audio = pre_encode_opus(3)
    results: list[list[CaseResult]] = []
    for _ in range(rounds):
        results.append([])
        for k in ks:
            for name in servers:
                result = await run_case(lab, name, k, seconds, video, audio)
                print_result(result)
                results[-1].append(result)
    return results


async def bounded(lab: Lab, ks: list[int], seconds: float, servers: list[str], rounds: int,
                  timeout: float) -> list[list[CaseResult]]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await asyncio.wait_for(main_async(lab, ks, seconds, servers, rounds), timeout)


def unavailable(reason: str) -> None:
    print(f"janus not available: {reason}\n  install: {INSTALL_HINT}", flush=True)


def run(ks: list[int], seconds: float, servers: list[str], timeout: float,
        rounds: int = 1) -> list[list[CaseResult]] | None:
    """Runs every case `rounds` times in a fresh namespace and always removes it; None when Janus could not run."""
    netns = Netns.for_this_process()
    with tempfile.TemporaryDirectory(prefix="convene-janus-") as tmp:
        lab = Lab(netns, Path(tmp))
        try:
            netns.create()
            return asyncio.run(bounded(lab, ks, seconds, servers, rounds, timeout))
        except NetnsError as exc:
            unavailable(f"cannot make the network namespace: {exc}")
        except ServerError as exc:
            if exc.name != "janus":
                raise
            unavailable(str(exc))
        except JanusError as exc:
            unavailable(f"Janus refused the VideoRoom requests: {exc}")
        except TimeoutError:
            raise SystemExit(f"gave up after --timeout {timeout:.0f} s") from None
        except asyncio.CancelledError:
            raise SystemExit("stopped (SIGTERM)") from None
        finally:
            problems = lab.close()
            if problems:
                print("cleanup:", "; ".join(problems), flush=True)
    return None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", default="20,50", help="comma-separated K values")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per case")
    parser.add_argument("--servers", default="convene,janus,janus-el1", help=f"any of {', '.join(SERVERS)}")
    parser.add_argument("--rounds", type=int, default=1, help="run every case this many times, in turn, and add "
                        "a table of medians")
    parser.add_argument("--timeout", type=float, default=1200.0, help="bound on the whole run, seconds")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    servers = [s for s in args.servers.split(",") if s]
    unknown = [s for s in servers if s not in SERVERS]
    if unknown:
        raise SystemExit(f"unknown servers: {', '.join(unknown)}")
    missing = janus_available()
    if missing and any(not s.startswith("convene") for s in servers):
        unavailable(missing)
        return
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    rounds = run([int(k) for k in args.subscribers.split(",")], args.seconds, servers, args.timeout, args.rounds)
    if rounds:
        print_table(rounds)
        if len(rounds) > 1:
            print_rounds(rounds)


if __name__ == "__main__":
    main()
