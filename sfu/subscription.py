"""A Subscription is one outgoing track to one subscriber, tied to one Publication.

Simulcast layers are held as mediasoup does: `preferred` (what the subscriber asked for, e.g. by tile
size), `target` (the best layer up to preferred that its bandwidth estimate allows) and `current` (what
is being sent). `current` changes to `target` only on a keyframe of the target layer, and the forwarder
keeps sequence numbers and timestamps continuous across the switch.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sfu.forwarder import VIDEO_HISTORY, Forwarder
from sfu.interfaces import Down, DownTrack
from sfu.rtp import RtpPacket

if TYPE_CHECKING:
    from sfu.fanout import Entry
    from sfu.publication import Publication


LAYER_NAMES = {"low": 0, "mid": 1, "high": 2}
# Retransmissions per subscription: a sustained rate and a burst. A receiver that loses packets because
# it is overloaded NACKs them all; answering every NACK would feed the overload (and the server's).
RESEND_RATE = 40.0
RESEND_BURST = 80.0
# A higher layer is taken when its bitrate fits in this share of the subscriber's bandwidth estimate;
# the layer being sent is kept until its bitrate exceeds the estimate by this factor.
UPGRADE_HEADROOM = 0.85
DOWNGRADE_MARGIN = 1.4


class Subscription:
    """Exists for every publication a participant may receive; holds a DownTrack (an m-line, a "slot" of
    the subscriber's connection) only while active: while its video is among the subscriber's last-N or
    its audio among the loudest few. An idle subscription costs no m-line, no forwarder state and no
    per-packet work, so a subscriber's SDP stays bounded however big the room grows."""

    def __init__(self, publication: "Publication", down: Down, subscriber_id: str, layer: str = "high") -> None:
        self.publication = publication
        self.down_host = down
        self.down: DownTrack | None = None
        self.forwarder: Forwarder | None = None
        self.subscriber_id = subscriber_id
        # Captions must hear every speaker, not only the loudest few that people get.
        self.hears_everyone = bool(getattr(down, "hears_everyone", False))
        # Preferred from the start: a layer asked for by default is not the high one's keyframe and switch later.
        self.preferred = self.target = min(LAYER_NAMES.get(layer, 2), publication.top_layer)
        self.current: int | None = None
        self.switches = 0
        self._sr_epoch = 0
        self.closed = False
        self.remb: int | None = None
        self.nacks = 0
        self.retransmitted = 0
        self.resends_refused = 0
        self._resend_tokens = RESEND_BURST
        self._resend_at = 0.0
        self.packets_before = 0  # forwarded by forwarders of earlier activations
        self._payload_types: dict[int, int] = {}
        # In a batched fan-out (sfu/fanout.py) while steady; `batchable` is cleared for good when the down track
        # cannot be batched (another send mode, a local listener).
        self.batch: "Entry | None" = None
        self.batchable = True

    @property
    def packets(self) -> int:
        if self.batch is not None:
            self.batch.flush()
        return self.packets_before + (self.forwarder.packets if self.forwarder is not None else 0)

    def activate(self) -> bool:
        """Takes a slot of the subscriber's connection and starts forwarding (video: from a keyframe).
        False when the subscriber's side does not take this track."""
        if self.down is not None or self.closed:
            return self.down is not None
        publication = self.publication
        down = self.down_host.add_track(publication.kind, publication.id, publication.participant_id,
                                        publication.source)
        if down is None:
            return False
        codec = publication.codec
        # The slot may have carried someone else: continue its sequence numbers and timestamps.
        self.forwarder = Forwarder(
            clock_rate=codec.clock_rate if codec else 90000,
            needs_keyframe=publication.kind == "video",
            continue_from=down.last_sent(),
            history=VIDEO_HISTORY if publication.kind == "video" else 0,
        )
        # The subscriber negotiated its own payload types: map the publisher's onto them once.
        self._payload_types = {pt: sub_pt for pt, c in publication.codecs.items()
                               if (sub_pt := down.payload_type_for(c.mime_type)) is not None}
        self.down = down
        self.current = None
        down.attach(self)
        publication.receiving(self, True)
        publication.request_keyframe(self.target)
        return True

    def deactivate(self) -> None:
        """Gives the slot back: it stays negotiated and carries the next track activated."""
        down = self.down
        if down is None:
            return
        self.leave_batch()
        self.down = None
        self.publication.receiving(self, False)
        if self.forwarder is not None:
            self.packets_before += self.forwarder.packets
        self.forwarder = None
        self.down_host.remove_track(down)

    def forward(self, packet: RtpPacket, keyframe_start: bool, layer: int = 0) -> None:
        """Hot path; the publication calls it only while active."""
        down, forwarder = self.down, self.forwarder
        if down is None or forwarder is None or not down.ready:
            return
        if self.batch is not None:
            # Waiting in the batch of the current layer, which sends it, for the target layer's keyframe.
            if layer != self.target or layer == self.current:
                return
            if not keyframe_start:
                self.publication.request_keyframe(layer)
                return
            self.leave_batch()
        if layer != self.current:
            if self.publication.kind == "video":
                if layer != self.target:
                    return
                if not keyframe_start:
                    self.publication.request_keyframe(layer)
                    return
                if self.current is not None:
                    forwarder.rebase()
                    self.switches += 1
                self.current = layer
                self.publication.layer_left()  # the layer left may no longer be wanted
            else:
                self.current = layer
        pt = self._payload_types.get(packet.payload_type)
        if pt is None:
            return
        rewritten = forwarder.accept(packet.sequence_number, packet.timestamp, keyframe_start, packet.ssrc)
        if rewritten is None:
            # Waiting for a keyframe: keep asking (throttled per publication) until one comes.
            self.publication.request_keyframe(layer)
            return
        down.send(packet, pt, rewritten[0], rewritten[1])
        if self._sr_epoch != forwarder.epoch:
            self._sr_epoch = forwarder.epoch
            report = self.publication.sender_reports.get(packet.ssrc)
            if report is not None:
                self.on_sender_report(packet.ssrc, *report)
        if self.batchable and layer == self.target:
            self._join_batch(packet, pt, layer)

    # -- the batched fan-out -----------------------------------------------------------------------

    def _join_batch(self, packet: RtpPacket, pt: int, layer: int) -> None:
        """After a packet went out through Python: join the layer's batch if nothing needs Python now."""
        sender_of = getattr(self.down, "batch_sender", None)
        sender = sender_of() if sender_of is not None else None
        if sender is None or not sender.batch_mode():
            self.batchable = False
            return
        source = sender.batch_source()
        if source is None:  # not now (a backlog, a pair being resolved): at a later packet
            return
        self.batch = self.publication.fanout(layer).join(self, sender, source, packet.payload_type, pt, packet.ssrc)
        if self.batch is not None:
            self.publication.batching_changed()

    def leave_batch(self) -> None:
        """Back to `forward` for every packet (layer switch, keyframe wait, new pair, pause, backlog)."""
        entry = self.batch
        if entry is None:
            return
        self.batch = None
        entry.fanout.leave(entry)
        self.publication.batching_changed()

    # -- layers ----------------------------------------------------------------------------------

    def set_preferred(self, name: str) -> None:
        self.preferred = min(LAYER_NAMES.get(name, 2), self.publication.top_layer)
        self.update_target()

    def update_target(self) -> None:
        """The best layer up to preferred that the bandwidth estimate allows, with hysteresis: a layer
        above the current target must fit with headroom, while the current one is dropped only when the
        estimate falls well below it. (A browser's REMB grows with what it receives; without the
        hysteresis its early, low estimate would hold a subscriber on a lower layer for good.)"""
        target = self.preferred
        if self.remb is not None and self.publication.layers:
            rates = self.publication.layer_bitrate
            while target > 0:
                margin = UPGRADE_HEADROOM if target > self.target else DOWNGRADE_MARGIN
                if rates[target] <= self.remb * margin:
                    break
                target -= 1
        if target != self.target:
            # A batched subscription stays in its current layer's batch until the target's keyframe (`forward`).
            self.target = target
            self.publication.batching_changed()
            if self.down is not None:  # an idle one asks for its keyframe when it is activated
                self.publication.update_demand()
                self.publication.request_keyframe(target)

    # -- feedback from the subscriber ------------------------------------------------------------

    def on_nack(self, sequence_numbers: list[int]) -> None:
        down, forwarder = self.down, self.forwarder
        if down is None or forwarder is None:
            return
        now = time.monotonic()
        self._resend_tokens = min(RESEND_BURST, self._resend_tokens + (now - self._resend_at) * RESEND_RATE)
        self._resend_at = now
        for out_seq in sequence_numbers:
            self.nacks += 1
            sent = forwarder.lookup(out_seq)
            if sent is None or not forwarder.may_resend(out_seq, now):
                continue
            if self._resend_tokens < 1:
                self.resends_refused += 1
                continue
            packet = self.publication.cached(sent.orig_seq, sent.orig_ssrc)
            if packet is None:
                continue
            pt = self._payload_types.get(packet.payload_type)
            if pt is None:
                continue
            self._resend_tokens -= 1
            self.retransmitted += 1
            down.resend(packet, pt, out_seq, (packet.timestamp + sent.ts_offset) % (1 << 32))

    @property
    def ready(self) -> bool:
        """Active, and its subscriber can receive: only then does a packet of the publication need it."""
        down = self.down
        return down is not None and down.ready

    def on_ready(self) -> None:
        """The subscriber answered and connected: the publication's packets come to `forward` from now on, the
        first keyframe first."""
        self.publication.batching_changed()
        self.on_keyframe_request()

    def on_keyframe_request(self) -> None:
        self.publication.request_keyframe(self.current if self.current is not None else self.target)

    def on_remb(self, bitrate: int) -> None:
        self.remb = bitrate
        self.update_target()

    def on_sender_report(self, ssrc: int, ntp_timestamp: int, rtp_timestamp: int) -> None:
        down, forwarder = self.down, self.forwarder
        if down is None or forwarder is None or not forwarder.started:
            return
        current_ssrc = self.publication.ssrc_of_layer.get(self.current or 0) if self.publication.layers else None
        if current_ssrc is not None and ssrc != current_ssrc:
            return
        down.set_sender_report(ntp_timestamp, forwarder.to_subscriber_timestamp(rtp_timestamp))

    # -- life ------------------------------------------------------------------------------------

    def restart(self) -> None:
        """The source resumes after a gap (unmute): continue from the next packet (video: a keyframe)."""
        if self.forwarder is not None:
            self.leave_batch()
            self.forwarder.rebase()
            self.publication.request_keyframe(self.target)

    def close(self) -> None:
        """Idempotent: gives back its slot and detaches from the publication."""
        if self.closed:
            return
        self.deactivate()
        self.closed = True
        self.publication.detach(self)
