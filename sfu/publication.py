"""A Publication is one incoming track of one participant, fanned out to its Subscriptions."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sfu.interfaces import DownTrack, UpTrack
from sfu.packet_cache import PacketCache
from sfu.rtp import RtpPacket, is_keyframe_start

if TYPE_CHECKING:
    from sfu.subscription import Subscription

log = logging.getLogger("convene.sfu.publication")

SOURCES = {"microphone": "audio", "screen_audio": "audio", "camera": "video", "screen": "video"}
# RFC 6464: the level is -dBov, 0 loudest, 127 silence. Below this many -dBov counts as voice.
VOICE_LEVEL = 60


@dataclass(frozen=True)
class Codec:
    mime_type: str
    clock_rate: int


class Publication:
    def __init__(
        self,
        track_id: str,
        participant_id: str,
        source: str,
        up: UpTrack,
        codecs: dict[int, Codec],
        pli_throttle: float = 0.5,
        muted: bool = False,
    ) -> None:
        self.id = track_id
        self.participant_id = participant_id
        self.source = source
        self.kind = SOURCES[source]
        self.muted = muted
        self.codecs = codecs
        self._up = up
        self._pli_throttle = pli_throttle
        self._last_pli = 0.0
        self._cache = PacketCache(512 if self.kind == "video" else 64)
        self.subscriptions: list[Subscription] = []
        self.closed = False
        self.packets = 0
        self.keyframe_requests = 0
        # Speaker detection: packets and voiced packets since the detector last looked, loudness sum.
        self.voiced = 0
        self.heard = 0
        self.loudness = 0
        self.last_sender_report: tuple[int, int] | None = None
        self._log = logging.LoggerAdapter(log, {"track": track_id})

    @property
    def codec(self) -> Codec | None:
        return next(iter(self.codecs.values()), None)

    def describe(self) -> dict[str, object]:
        codec = self.codec
        return {
            "id": self.id,
            "kind": self.kind,
            "source": self.source,
            "muted": self.muted,
            "codec": codec.mime_type.split("/")[1].lower() if codec else None,
        }

    def on_rtp(self, packet: RtpPacket) -> None:
        """Hot path: one call per incoming packet, after SRTP, parsing and RTX unwrapping."""
        self.packets += 1
        self._cache.put(packet)
        if self.kind == "audio":
            level = packet.extensions.audio_level
            if level is not None:
                self.heard += 1
                if level[1] < VOICE_LEVEL:
                    self.voiced += 1
                    self.loudness += 127 - level[1]
        if self.muted or not self.subscriptions:
            return
        keyframe = False
        if self.kind == "video":
            codec = self.codecs.get(packet.payload_type)
            keyframe = codec is not None and is_keyframe_start(codec.mime_type, packet.payload)
        for subscription in self.subscriptions:
            subscription.forward(packet, keyframe)

    def cached(self, sequence_number: int) -> RtpPacket | None:
        return self._cache.get(sequence_number)

    def on_sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        """The publisher's NTP↔RTP mapping, handed on per subscriber (offset applied) for lip sync."""
        self.last_sender_report = (ntp_timestamp, rtp_timestamp)
        for subscription in self.subscriptions:
            if subscription.forwarder.started:
                subscription.on_sender_report(ntp_timestamp, rtp_timestamp)

    def request_keyframe(self) -> None:
        if self.kind != "video" or self.closed:
            return
        now = time.monotonic()
        if now - self._last_pli < self._pli_throttle:
            return
        self._last_pli = now
        self.keyframe_requests += 1
        self._up.request_keyframe()

    def subscribe(self, down: DownTrack, subscriber_id: str) -> "Subscription":
        from sfu.subscription import Subscription

        subscription = Subscription(self, down, subscriber_id)
        self.subscriptions.append(subscription)
        self.request_keyframe()
        return subscription

    def detach(self, subscription: "Subscription") -> None:
        if subscription in self.subscriptions:
            self.subscriptions.remove(subscription)

    def set_muted(self, muted: bool) -> None:
        if self.muted and not muted:
            for subscription in self.subscriptions:
                subscription.forwarder.rebase()
            self.request_keyframe()
        self.muted = muted

    def close(self) -> None:
        """Idempotent; closes every subscription of this track."""
        if self.closed:
            return
        self.closed = True
        for subscription in list(self.subscriptions):
            subscription.close()
        self.subscriptions.clear()
