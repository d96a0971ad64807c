"""One load bot: joins through signaling and WebRTC as a browser does (a publisher and a subscriber
connection), publishes replayed media, asks for its layout, and counts what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from time import monotonic
from dataclasses import dataclass
from typing import Any

from loadtest.histogram import Histogram
from loadtest.layout import Layout
from loadtest.media import MediaLibrary
from loadtest.messages import BotSpec, PublisherSummary
from loadtest.recovery import FINAL_ERRORS, GIVE_UP, final_close, retry_delay
from loadtest.sdp import compact_answer
from loadtest.sender import AudioSender, LayeredWriter, VideoSender
from loadtest.stamp import TAIL_SIZE
from loadtest.talk import TalkSchedule
from loadtest.track_stats import TrackStats
from sfu.rtp import RtpPacket
from loadtest.peers import PacketPublisherPeer, PacketSubscriberPeer, PacketWriter
from signaling.client import SignalingClient, SignalingError

log = logging.getLogger("convene.loadtest.bot")
# ICE states after which the bot's media is gone until it reconnects.
DEAD_ICE = frozenset({"failed", "closed"})


@dataclass(frozen=True)
class BotContext:
    """What every bot of a worker shares."""

    url: str
    room: str
    layout: Layout
    media: MediaLibrary
    simulcast: bool
    schedule: TalkSchedule
    origin: float  # the run's t = 0 (time.monotonic())
    run_latency: Histogram
    compact_sdp: bool = True  # see loadtest/sdp.py
    counting_route: bool = True  # steady packets come as the compiled route's records (loadtest/peers.py)


class Bot:
    def __init__(self, spec: BotSpec, ctx: BotContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.rng = random.Random(spec.index * 7 + 3)
        self.client: SignalingClient | None = None
        self.publisher = PacketPublisherPeer()
        self.subscriber = self._subscriber_peer()
        self.video: VideoSender | None = None
        self.audio: AudioSender | None = None
        self.tracks: dict[str, TrackStats] = {}  # subscriber mid -> the track it carries now
        self.retired: list[TrackStats] = []  # tracks whose m-line was reused or dropped
        self.participant_id = ""
        self.track_ids: list[str] = []
        self.join_seconds: float | None = None
        self._seen_messages = 0
        self._speaker: str | None = None
        self.paused: set[str] = set()  # video track ids the server paused for us (last-N)
        self._last_request: dict[str, Any] | None = None
        self.token = ""
        self.participant_ids: list[str] = []  # one per connection: a rejoin is a new participant
        self.closing = False
        self.reconnects = 0  # times the bot got back in after losing its connection
        self.recover_seconds: list[float] = []  # per reconnect: connection lost -> media received again
        self.failure: str | None = None  # why the bot is out for good (a final close, or it gave up)
        self._recovery: asyncio.Task[None] | None = None
        self._lost_at: float | None = None  # when the connection was lost, until media arrives again

    # -- joining ---------------------------------------------------------------------------------

    async def join(self, token: str, timeout: float = 20.0) -> None:
        started = time.monotonic()
        self.token = token
        await self._connect(timeout)
        self.join_seconds = time.monotonic() - started
        await self.update_layout()

    async def _connect(self, timeout: float) -> None:
        """A socket (joined) and, when the bot publishes, its media going up."""
        self.client = SignalingClient(self.ctx.url, self.ctx.room, self.token, on_offer=self._on_offer)
        self.client.on_table = lambda tracks: self._apply_table(tracks, time.monotonic())
        # The layout's last-N and tile layer from the start: the first offer has only the slots the layout shows,
        # and each camera is subscribed on the tile layer already.
        subscriptions = {"max_video": self.ctx.layout.videos, "default_layer": self.ctx.layout.tile_layer}
        joined = await asyncio.wait_for(self.client.connect(subscriptions=subscriptions), timeout)
        self.participant_id = str(joined["participant"]["id"])
        self.participant_ids.append(self.participant_id)
        if self.spec.publishes:
            await asyncio.wait_for(self._publish(), timeout)

    # -- losing the connection and getting back in -----------------------------------------------

    def _check_connection(self, now: float) -> None:
        """A closed socket or a dead peer connection: reconnect (unless the close says we are out)."""
        client = self.client
        if client is None or self.closing or self._recovery is not None or self.failure is not None:
            return
        ice_dead = (self.publisher.pc.connectionState in DEAD_ICE and self.spec.publishes) or \
            self.subscriber.pc.connectionState in DEAD_ICE
        if not client.closed.is_set() and not ice_dead:
            return
        if client.closed.is_set() and final_close(client.close_code, client.messages):
            self.failure = f"out of the meeting (socket closed {client.close_code})"
            return
        self._recovery = asyncio.get_running_loop().create_task(self._recover(now))

    async def _recover(self, lost_at: float) -> None:
        tries = 0
        try:
            while not self.closing:
                if time.monotonic() - lost_at > GIVE_UP:
                    self.failure = f"gave up reconnecting after {GIVE_UP:.0f} s"
                    return
                await asyncio.sleep(retry_delay(tries, self.rng))
                tries += 1
                await self._drop_connection()
                self._lost_at = lost_at  # the first packet on the new connection ends the outage
                try:
                    await self._connect(timeout=10.0)
                except SignalingError as exc:
                    if exc.code in FINAL_ERRORS:
                        self.failure = f"rejoin refused: {exc.code}"
                        return
                    continue
                except Exception as exc:  # noqa: BLE001 -- a server still down, a timeout: try again
                    log.debug("%s: rejoin failed: %s", self.spec.identity, exc)
                    continue
                self.reconnects += 1
                await self.update_layout()
                return
        finally:
            self._recovery = None

    async def _drop_connection(self) -> None:
        """Closes the socket and both peer connections; what they counted stays in `retired`."""
        self.video = self.audio = None
        self.retired.extend(self.tracks.values())
        self.tracks = {}
        self.paused = set()
        self._seen_messages = 0
        self._last_request = None
        old = (self.client, self.publisher, self.subscriber)
        self.client = None
        self.publisher = PacketPublisherPeer()
        self.subscriber = self._subscriber_peer()
        client, publisher, subscriber = old
        with contextlib.suppress(Exception):
            if client is not None:
                await asyncio.wait_for(client.close(), 3)
            await asyncio.wait_for(publisher.close(), 3)
            await asyncio.wait_for(subscriber.close(), 3)

    async def _publish(self) -> None:
        assert self.client is not None
        now = time.monotonic()
        tracks: list[tuple[PacketWriter, str]] = []
        video: LayeredWriter | None = None
        if self.ctx.layout.publishes_video:
            rids = [layer.spec.rid for layer in self.ctx.media.layers] if self.ctx.simulcast else None
            transceiver = self.publisher.pc.addTransceiver("video", direction="sendonly")
            video = LayeredWriter(transceiver, "video", "video/VP8", rids)
            self.publisher.writers.append(video)
            tracks.append((video, "camera"))
        mic = self.publisher.add_track("audio", "audio/opus")
        tracks.append((mic, "microphone"))
        offer = await self.publisher.create_offer()
        announce = [{"mid": w.mid, "source": source} for w, source in tracks]
        start = len(self.client.messages)
        reply = await self.client.request({"type": "publish", "sdp": offer, "tracks": announce}, "answer")
        await self.publisher.apply_answer(reply["sdp"])
        published = await self.client.wait_for("published", start=start)
        self.track_ids = [str(t["track"]["id"]) for t in published["tracks"]]
        for _ in range(2000):  # bounded wait for ICE + DTLS (the caller's timeout bounds it too)
            if all(w.ready for w, _ in tracks):
                break
            await asyncio.sleep(0.01)
        if video is not None:
            self.video = VideoSender(video, self.ctx.media.layers, self.ctx.simulcast, now, self.rng)
        self.audio = AudioSender(mic, self.ctx.media.speech, self.ctx.schedule, self.spec.index,
                                 self.ctx.origin, now, self.rng)

    # -- receiving -------------------------------------------------------------------------------

    async def _on_offer(self, sdp: str, tracks: dict[str, Any]) -> str:
        self._apply_table(tracks, time.monotonic())
        answer = await self.subscriber.answer(sdp)
        return compact_answer(answer) if self.ctx.compact_sdp else answer

    def _apply_table(self, tracks: dict[str, Any], now: float) -> None:
        """What each subscriber slot carries now: a slot that changed hands starts a new track's stats."""
        for mid, stats in list(self.tracks.items()):
            if tracks.get(mid, {}).get("track_id") != stats.track_id:
                self.retired.append(self.tracks.pop(mid))
        for mid, info in tracks.items():
            if mid not in self.tracks:
                stats = TrackStats(str(info["track_id"]), str(info["participant_id"]), str(info["kind"]), now,
                                   self.ctx.run_latency)
                stats.set_paused(stats.track_id in self.paused, now)
                self.tracks[mid] = stats

    def _subscriber_peer(self) -> PacketSubscriberPeer:
        return PacketSubscriberPeer(self._on_packet, on_record=self._on_record if self.ctx.counting_route else None)

    def _on_packet(self, mid: str, packet: RtpPacket) -> None:
        payload = packet.payload
        self._on_record(mid, packet.sequence_number, packet.timestamp, len(payload), payload[-TAIL_SIZE:],
                        packet.marker, monotonic())

    def _on_record(self, mid: str, seq: int, timestamp: int, size: int, tail: bytes, marker: int,
                   now: float) -> None:
        """A packet by what is counted of it (most come as records of the compiled receive route)."""
        stats = self.tracks.get(mid)
        if stats is not None:
            stats.add_counted(seq, timestamp, size, tail, marker, now)
            if self._lost_at is not None and self.client is not None:
                self.recover_seconds.append(now - self._lost_at)  # media again after a reconnect
                self._lost_at = None

    def all_tracks(self) -> list[TrackStats]:
        return [*self.retired, *self.tracks.values()]

    def freeze(self) -> None:
        for stats in self.all_tracks():
            stats.frozen = True

    # -- sending and layout ----------------------------------------------------------------------

    def tick(self, now: float) -> None:
        self._read_messages(now)
        self._check_connection(now)
        if self.video is not None:
            self.video.tick(now)
        if self.audio is not None:
            self.audio.tick(now)

    def _read_messages(self, now: float) -> None:
        """Follows who speaks (for the layout) and which videos the server paused (last-N): a video's
        time to first frame counts from when it was offered or, if paused, from when it was resumed."""
        client = self.client
        if client is None or len(client.messages) <= self._seen_messages:
            return
        for message in client.messages[self._seen_messages:]:
            kind = message.get("type")
            if kind == "active_speakers":
                others = [s["participant_id"] for s in message.get("speakers", [])
                          if s.get("participant_id") != self.participant_id]
                if others:
                    self._speaker = str(others[0])
            elif kind == "track_demand" and self.video is not None:
                self.video.set_demand(bool(message.get("active")), [str(r) for r in message.get("layers", [])])
            elif kind == "video_paused":
                self.paused = {str(t) for t in message.get("track_ids", [])}
                for stats in self.tracks.values():
                    stats.set_paused(stats.track_id in self.paused, now)
        self._seen_messages = len(client.messages)

    @property
    def packets_sent(self) -> int:
        return (self.video.packets if self.video else 0) + (self.audio.packets if self.audio else 0)

    async def update_layout(self) -> None:
        """Follows active_speakers and asks for the layout's videos when the choice changes."""
        client = self.client
        if client is None or client.joined is None or client.closed.is_set():
            return  # not joined (yet: a reconnect may be under way), or gone
        videos = {track_id: str(t["participant_id"]) for track_id, t in client.room_tracks.items()
                  if t.get("kind") == "video"}
        request = self.ctx.layout.request(videos, self._speaker)
        if request != self._last_request:
            self._last_request = request
            try:
                await client.send(request)
            except (ConnectionError, RuntimeError):
                pass

    def publisher_summary(self) -> PublisherSummary | None:
        if not self.spec.publishes:
            return None
        writers = self.publisher.writers
        resent = sum(w.resent for w in writers if isinstance(w, LayeredWriter))
        return PublisherSummary(
            index=self.spec.index, participant_id=self.participant_id, packets_sent=self.packets_sent,
            keyframe_requests=sum(w.keyframe_requests for w in writers),
            nacked=sum(len(w.nacked) for w in writers), resent=resent,
            late_frames=(self.video.late if self.video else 0) + (self.audio.late if self.audio else 0))

    async def close(self) -> None:
        self.closing = True
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._recovery
        if self.client is not None:
            with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
                await asyncio.wait_for(self.client.send({"type": "leave"}), 2)
            await asyncio.wait_for(self.client.close(), 5)
        await asyncio.wait_for(self.publisher.close(), 5)
        await asyncio.wait_for(self.subscriber.close(), 5)
