"""A Subscription is one outgoing track to one subscriber, tied to one Publication.

Simulcast layers are held as mediasoup does: `preferred` (what the subscriber asked for, e.g. by tile
size), `target` (the best layer up to preferred that its bandwidth estimate allows) and `current` (what
is being sent). `current` changes to `target` only on a keyframe of the target layer, and the forwarder
keeps sequence numbers and timestamps continuous across the switch.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sfu.forwarder import VIDEO_HISTORY, Forwarder
from sfu.interfaces import DownTrack
from sfu.rtp import RtpPacket

if TYPE_CHECKING:
    from sfu.publication import Publication

log = logging.getLogger("convene.sfu.subscription")

LAYER_NAMES = {"low": 0, "mid": 1, "high": 2}
# Leave headroom under the subscriber's bandwidth estimate when choosing a layer.
BANDWIDTH_HEADROOM = 0.9


class Subscription:
    def __init__(self, publication: "Publication", down: DownTrack, subscriber_id: str) -> None:
        self.publication = publication
        self.down = down
        self.subscriber_id = subscriber_id
        codec = publication.codec
        self.forwarder = Forwarder(
            clock_rate=codec.clock_rate if codec else 90000,
            needs_keyframe=publication.kind == "video",
            continue_from=down.last_sent(),
            history=VIDEO_HISTORY if publication.kind == "video" else 0,
        )
        # The subscriber negotiated its own payload types: map the publisher's onto them once.
        self._payload_types: dict[int, int] = {}
        for pt, c in publication.codecs.items():
            sub_pt = down.payload_type_for(c.mime_type)
            if sub_pt is not None:
                self._payload_types[pt] = sub_pt
        # Captions must hear every speaker, not only the loudest few that people get.
        self.hears_everyone = bool(getattr(down, "hears_everyone", False))
        self.preferred = publication.top_layer
        self.target = publication.top_layer
        self.current: int | None = None
        self.switches = 0
        self._sr_epoch = 0
        self.paused = False
        self.closed = False
        self.remb: int | None = None
        self.nacks = 0
        self.retransmitted = 0
        self._log = logging.LoggerAdapter(log, {"sub": f"{publication.id}->{subscriber_id}"})
        down.attach(self)

    def forward(self, packet: RtpPacket, keyframe_start: bool, layer: int = 0) -> None:
        if self.paused or not self.down.ready:
            return
        if layer != self.current:
            if self.publication.kind == "video":
                if layer != self.target:
                    return
                if not keyframe_start:
                    self.publication.request_keyframe(layer)
                    return
                if self.current is not None:
                    self.forwarder.rebase()
                    self.switches += 1
            self.current = layer
        pt = self._payload_types.get(packet.payload_type)
        if pt is None:
            return
        rewritten = self.forwarder.accept(packet.sequence_number, packet.timestamp, keyframe_start, packet.ssrc)
        if rewritten is None:
            # Waiting for a keyframe: keep asking (throttled per publication) until one comes.
            self.publication.request_keyframe(layer)
            return
        self.down.send(packet, pt, rewritten[0], rewritten[1])
        if self._sr_epoch != self.forwarder.epoch:
            self._sr_epoch = self.forwarder.epoch
            report = self.publication.sender_reports.get(packet.ssrc)
            if report is not None:
                self.on_sender_report(packet.ssrc, *report)

    # -- layers ----------------------------------------------------------------------------------

    def set_preferred(self, name: str) -> None:
        self.preferred = min(LAYER_NAMES.get(name, 2), self.publication.top_layer)
        self.update_target()

    def update_target(self) -> None:
        target = self.preferred
        if self.remb is not None and self.publication.layers:
            rates = self.publication.layer_bitrate
            while target > 0 and rates[target] > self.remb * BANDWIDTH_HEADROOM:
                target -= 1
        if target != self.target:
            self.target = target
            self.publication.request_keyframe(target)

    # -- feedback from the subscriber ------------------------------------------------------------

    def on_nack(self, sequence_numbers: list[int]) -> None:
        for out_seq in sequence_numbers:
            self.nacks += 1
            sent = self.forwarder.lookup(out_seq)
            if sent is None:
                continue
            packet = self.publication.cached(sent.orig_seq, sent.orig_ssrc)
            if packet is None:
                continue
            pt = self._payload_types.get(packet.payload_type)
            if pt is None:
                continue
            self.retransmitted += 1
            self.down.resend(packet, pt, out_seq, (packet.timestamp + sent.ts_offset) % (1 << 32))

    def on_keyframe_request(self) -> None:
        self.publication.request_keyframe(self.current if self.current is not None else self.target)

    def on_remb(self, bitrate: int) -> None:
        self.remb = bitrate
        self.update_target()

    def on_sender_report(self, ssrc: int, ntp_timestamp: int, rtp_timestamp: int) -> None:
        if not self.forwarder.started:
            return
        current_ssrc = self.publication.ssrc_of_layer.get(self.current or 0) if self.publication.layers else None
        if current_ssrc is not None and ssrc != current_ssrc:
            return
        self.down.set_sender_report(ntp_timestamp, self.forwarder.to_subscriber_timestamp(rtp_timestamp))

    # -- life ------------------------------------------------------------------------------------

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.forwarder.rebase()
            self.publication.request_keyframe(self.target)

    def close(self) -> None:
        """Idempotent: detaches from the publication and closes the outgoing track."""
        if self.closed:
            return
        self.closed = True
        self.publication.detach(self)
        self.down.close()
