"""A Subscription is one outgoing track to one subscriber, tied to one Publication."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sfu.forwarder import Forwarder
from sfu.interfaces import DownTrack
from sfu.rtp import RtpPacket

if TYPE_CHECKING:
    from sfu.publication import Publication

log = logging.getLogger("convene.sfu.subscription")


class Subscription:
    def __init__(self, publication: "Publication", down: DownTrack, subscriber_id: str) -> None:
        self.publication = publication
        self.down = down
        self.subscriber_id = subscriber_id
        codec = publication.codec
        self.forwarder = Forwarder(
            clock_rate=codec.clock_rate if codec else 90000,
            needs_keyframe=publication.kind == "video",
        )
        # The subscriber negotiated its own payload types: map the publisher's onto them once.
        self._payload_types: dict[int, int] = {}
        for pt, c in publication.codecs.items():
            sub_pt = down.payload_type_for(c.mime_type)
            if sub_pt is not None:
                self._payload_types[pt] = sub_pt
        self._sr_epoch = 0
        self.paused = False
        self.closed = False
        self.remb: int | None = None
        self.nacks = 0
        self.retransmitted = 0
        self._log = logging.LoggerAdapter(log, {"sub": f"{publication.id}->{subscriber_id}"})
        down.attach(self)

    def forward(self, packet: RtpPacket, keyframe_start: bool) -> None:
        if self.paused or not self.down.ready:
            return
        pt = self._payload_types.get(packet.payload_type)
        if pt is None:
            return
        rewritten = self.forwarder.accept(packet.sequence_number, packet.timestamp, keyframe_start)
        if rewritten is None:
            # Waiting for a keyframe: keep asking (throttled per publication) until one comes.
            self.publication.request_keyframe()
            return
        self.down.send(packet, pt, rewritten[0], rewritten[1])
        if self._sr_epoch != self.forwarder.epoch:
            self._sr_epoch = self.forwarder.epoch
            report = self.publication.last_sender_report
            if report is not None:
                self.on_sender_report(*report)

    def on_nack(self, sequence_numbers: list[int]) -> None:
        for out_seq in sequence_numbers:
            self.nacks += 1
            sent = self.forwarder.lookup(out_seq)
            if sent is None:
                continue
            packet = self.publication.cached(sent.orig_seq)
            if packet is None:
                continue
            pt = self._payload_types.get(packet.payload_type)
            if pt is None:
                continue
            self.retransmitted += 1
            self.down.resend(packet, pt, out_seq, (packet.timestamp + sent.ts_offset) % (1 << 32))

    def on_keyframe_request(self) -> None:
        self.publication.request_keyframe()

    def on_remb(self, bitrate: int) -> None:
        self.remb = bitrate

    def on_sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        self.down.set_sender_report(ntp_timestamp, self.forwarder.to_subscriber_timestamp(rtp_timestamp))

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.forwarder.rebase()
            self.publication.request_keyframe()

    def close(self) -> None:
        """Idempotent: detaches from the publication and closes the outgoing track."""
        if self.closed:
            return
        self.closed = True
        self.publication.detach(self)
        self.down.close()
