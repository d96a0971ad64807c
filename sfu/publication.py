"""A Publication is one incoming track of one participant, fanned out to its Subscriptions.

A simulcast publication carries several layers (one RTP stream each, low to high quality); each
subscription picks one of them (see Subscription).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sfu.interfaces import Down, UpTrack
from sfu.packet_cache import PacketCache
from sfu.rtp import RtpPacket, is_keyframe_start
from sfu.selection import GATE_IN, GATE_OFF, GATE_OUT, AudioGate

if TYPE_CHECKING:
    from sfu.aiortc_seams import RecordSink
    from sfu.fanout import FanOut
    from sfu.packet_cache import PacketCache
    from sfu.subscription import Subscription

log = logging.getLogger("convene.sfu.publication")

SOURCES = {"microphone": "audio", "screen_audio": "audio", "camera": "video", "screen": "video"}
# RFC 6464: the level is -dBov, 0 loudest, 127 silence. Below this many -dBov counts as voice.
VOICE_LEVEL = 60
# A video layer nobody receives is released (the publisher told to pause it) after this long, so a
# speaker switching back and forth does not make publishers' encoders flap.
DEMAND_RELEASE_SECONDS = 2.0


@dataclass(frozen=True)
class Codec:
    mime_type: str
    clock_rate: int


class Publication:
    # As a RouteTarget: its routes are checked before every drain call, and they forward (nothing only counts).
    steady = False
    sink: "RecordSink | None" = None

    def __init__(
        self,
        track_id: str,
        participant_id: str,
        source: str,
        up: UpTrack,
        codecs: dict[int, Codec],
        pli_throttle: float = 0.5,
        muted: bool = False,
        layers: list[str] | None = None,
    ) -> None:
        self.id = track_id
        self.participant_id = participant_id
        self.source = source
        self.kind = SOURCES[source]
        self.muted = muted
        self.codecs = codecs
        self._up = up
        self._pli_throttle = pli_throttle
        # Simulcast: rids from low to high; empty for a single stream (layer 0).
        self.layers = list(layers or [])
        self._rid_index = {rid: i for i, rid in enumerate(self.layers)}
        self._layer_of_ssrc: dict[int, int] = {}
        self.ssrc_of_layer: dict[int, int] = {}
        self._last_pli: dict[int, float] = {}
        self._caches: dict[int, PacketCache] = {}
        self.layer_bytes = [0] * max(1, len(self.layers))
        self.layer_bitrate = [0.0] * max(1, len(self.layers))
        self._rates_at = time.monotonic()
        self.subscriptions: list[Subscription] = []  # everyone who may receive it
        self.receivers: list[Subscription] = []  # the active ones: the only per-packet work
        # Active ones that are steady sit in a batched fan-out per layer (one C call per packet, sfu/fanout.py);
        # the others are forwarded one by one.
        self._fanouts: dict[int, FanOut] = {}
        self._one_by_one: dict[int, tuple[Subscription, ...]] | None = {}  # per layer; None: to be made anew
        # Streams whose packets take a compiled receive route (sfu/aiortc_seams.ReceiveRoute): how to fold what
        # they counted into `packets` and `layer_bytes`.
        self._routed: dict[int, Callable[[], None]] = {}
        # Pipes to other workers hosting the same room: every packet as received, all layers.
        self.taps: list[Callable[[RtpPacket], None]] = []
        self.closed = False
        self.packets = 0
        self.keyframe_requests = 0
        # Speaker detection: packets and voiced packets since the detector last looked, loudness sum.
        self.voiced = 0
        self.heard = 0
        self.loudness = 0
        self.routed_voiced_at = 0.0  # see _routed_voice
        self.sender_reports: dict[int, tuple[int, int]] = {}  # ssrc -> (ntp, rtp)
        # Set by the room: in big rooms only the loudest few audio publications are forwarded.
        self.audio_gate: AudioGate | None = None
        # Which video layers anyone receives (after LiveKit's dynacast): the publisher is asked to pause
        # the others, so a hundred-person room does not carry a hundred unwatched cameras.
        self.on_demand: Callable[[Publication, list[int]], None] | None = None
        self._demand = self.all_layers  # a publisher starts sending them all
        self._release: asyncio.TimerHandle | None = None
        self._log = logging.LoggerAdapter(log, {"track": track_id})

    @property
    def codec(self) -> Codec | None:
        return next(iter(self.codecs.values()), None)

    @property
    def top_layer(self) -> int:
        return max(0, len(self.layers) - 1)

    def describe(self) -> dict[str, object]:
        codec = self.codec
        out: dict[str, object] = {
            "id": self.id,
            "kind": self.kind,
            "source": self.source,
            "muted": self.muted,
            "codec": codec.mime_type.split("/")[1].lower() if codec else None,
        }
        if self.layers:
            out["layers"] = list(self.layers)
        return out

    def layer_of(self, packet: RtpPacket) -> int:
        """The simulcast layer of a packet (0 without simulcast; -1 while its stream is unknown)."""
        if not self.layers:
            return 0
        layer = self._layer_of_ssrc.get(packet.ssrc)
        if layer is None:
            rid = packet.extensions.rtp_stream_id
            layer = self._rid_index.get(rid) if rid is not None else None
            if layer is None:
                return -1
            self._layer_of_ssrc[packet.ssrc] = layer
            self.ssrc_of_layer[layer] = packet.ssrc
        return layer

    def on_rtp(self, packet: RtpPacket) -> None:
        """Hot path: one call per incoming packet, after SRTP, parsing and RTX unwrapping."""
        self.packets += 1
        layer = self.layer_of(packet)
        if layer < 0:
            return
        if self.kind == "video":  # audio is never resent (a late voice packet is useless)
            cache = self._caches.get(packet.ssrc)
            if cache is None:
                cache = self._caches[packet.ssrc] = PacketCache(packet.ssrc, 512)
            cache.put(packet)
        self.layer_bytes[layer] += len(packet.payload)
        for tap in self.taps:
            tap(packet)
        if self.kind == "audio":
            level = packet.extensions.audio_level
            voiced = level is None  # a sender without levels can't be ranked: let it be heard
            if level is not None:
                self.heard += 1
                if level[1] < VOICE_LEVEL:
                    voiced = True
                    self.voiced += 1
                    self.loudness += 127 - level[1]
            gate = self.audio_gate
            if gate is not None and gate.enabled and not gate.admit(self.id, voiced, time.monotonic(),
                                                                    self._routed_voice):
                # Not among the loudest: only in-process listeners (captions) still hear it.
                if not self.muted:
                    for subscription in self.receivers:
                        if subscription.hears_everyone:
                            subscription.forward(packet, False, layer)
                return
        if self.muted or not self.receivers:
            return
        keyframe = self.keyframe(packet)
        one_by_one = self.one_by_one(layer)  # read first: a member the batch hands back is forwarded there
        fanout = self._fanouts.get(layer)
        if fanout:
            fanout.send(packet, keyframe, layer)
        for subscription in one_by_one:
            subscription.forward(packet, keyframe, layer)

    def keyframe(self, packet: RtpPacket) -> bool:
        if self.kind != "video":
            return False
        codec = self.codecs.get(packet.payload_type)
        return codec is not None and is_keyframe_start(codec.mime_type, packet.payload)

    # -- the compiled receive route (a RouteTarget) ------------------------------------------------

    def routable(self) -> bool:
        """Nothing but the fan-outs needs each packet (no pipe, no mute). Receivers outside a batched fan-out
        (in-process listeners, a subscriber waiting for a keyframe) are forwarded by the route's Python side. The
        loudest-speakers gate of a big room does not need every packet (`gate`)."""
        return not (self.taps or self.muted or self.closed)

    def gate(self) -> int:
        """Where this stream stands in the loudest-speakers gate. Held out, its subscribers are idle (the room
        deactivated them), so the route only counts its silence and hands its voices to Python (`on_rtp` asks
        the gate); let in, the route forwards it and times its voices for the gate (`_routed_voice`)."""
        gate = self.audio_gate
        if gate is None or not gate.enabled:
            return GATE_OFF
        return GATE_IN if gate.is_open(self.id) else GATE_OUT

    def _routed_voice(self) -> float:
        """When (time.monotonic()) a route last forwarded a voice of this publication, for the gate."""
        self.fold_routed()
        return self.routed_voiced_at

    def route_for(self, ssrc: int) -> "tuple[FanOut, PacketCache | None, int] | None":
        """What a route of the stream `ssrc` needs (audio: no packet cache), while it may have one."""
        if not self.routable() or ssrc in self._routed:
            return None
        if self.kind == "audio":
            return self.fanout(0), None, 0
        layer = self._layer_of_ssrc.get(ssrc) if self.layers else 0
        cache = self._caches.get(ssrc)
        if layer is None or cache is None:
            return None
        return self.fanout(layer), cache, layer

    def absorb_routed(self, layer: int, packets: int, octets: int, levels: tuple[int, int, int],
                      voiced_at: float) -> None:
        self.packets += packets
        self.routed_voiced_at = max(self.routed_voiced_at, voiced_at)
        self.layer_bytes[layer] += octets
        if self.kind == "audio":
            heard, voiced, loudness = levels
            self.heard += heard
            self.voiced += voiced
            self.loudness += loudness

    def routed(self, ssrc: int, fold: Callable[[], None] | None) -> None:
        if fold is None:
            self._routed.pop(ssrc, None)
        else:
            self._routed[ssrc] = fold

    def fold_routed(self) -> None:
        """Counts what the routes handled since they were last asked (`packets`, `layer_bytes`, the levels)."""
        for fold in list(self._routed.values()):
            fold()

    def fanout(self, layer: int) -> "FanOut":
        """The batched fan-out of one layer (made at the first steady subscription)."""
        fanout = self._fanouts.get(layer)
        if fanout is None:
            from sfu.fanout import FanOut

            fanout = self._fanouts[layer] = FanOut()
        return fanout

    def one_by_one(self, layer: int) -> tuple[Subscription, ...]:
        """The active subscriptions that Python forwards packets of `layer` to, one by one: those outside a batch
        whose current or target layer it is, and those waiting in the batch of their current layer for the
        target's keyframe (`Subscription.forward`). Made anew after a change (never changed in place, so a loop
        over it that caused the change goes on unharmed).

        A subscription whose subscriber has not connected yet is left out until it has (`Subscription.on_ready`):
        while a hundred people join, each newcomer's thirty would otherwise send every packet of the room's most
        seen cameras through Python, for a `forward` that sends nothing, for the few hundred milliseconds each
        takes to connect. Per layer, so that a layer switch does not bring the other layers' packets to Python
        (the route of a layer nobody outside the batch wants stays in C)."""
        lists = self._one_by_one
        if lists is None:
            lists = self._one_by_one = self._one_by_one_per_layer()
        return lists.get(layer, ())

    def _one_by_one_per_layer(self) -> dict[int, tuple[Subscription, ...]]:
        """Every layer's list in one walk of the receivers (a join or a speaker change makes them anew many times,
        and the room's most seen cameras have a hundred receivers). The layers follow `Subscription.forward`."""
        lists: dict[int, list[Subscription]] = {}
        video = self.kind == "video"
        for subscription in self.receivers:
            if subscription.batch is not None:  # steady in its current layer's batch, or waiting for the target
                if subscription.target != subscription.current and subscription.ready:
                    lists.setdefault(subscription.target, []).append(subscription)
            elif subscription.ready:
                if not video:  # one stream: layer 0
                    lists.setdefault(0, []).append(subscription)
                    continue
                lists.setdefault(subscription.target, []).append(subscription)
                current = subscription.current
                if current is not None and current != subscription.target:
                    lists.setdefault(current, []).append(subscription)
        return {layer: tuple(members) for layer, members in lists.items()}

    def batching_changed(self) -> None:
        """A subscription joined or left a batch, became ready or changed its target layer: the lists are made when
        next read. At a speaker change a hundred subscribers switch layers and join the batch one after another,
        each after its own `forward` in the same loop over the list; making it at each join was a walk of every
        receiver each time."""
        self._one_by_one = None

    def update_rates(self, now: float) -> None:
        """Bitrate per layer (bits/s, smoothed), for choosing what a subscriber's bandwidth allows."""
        elapsed = now - self._rates_at
        if elapsed <= 0:
            return
        self.fold_routed()
        for i, sent in enumerate(self.layer_bytes):
            rate = sent * 8 / elapsed
            self.layer_bitrate[i] = rate if not self.layer_bitrate[i] else 0.7 * self.layer_bitrate[i] + 0.3 * rate
            self.layer_bytes[i] = 0
        self._rates_at = now

    def cached(self, sequence_number: int, ssrc: int) -> RtpPacket | None:
        cache = self._caches.get(ssrc)
        return cache.get(sequence_number) if cache is not None else None

    def on_sender_report(self, ssrc: int, ntp_timestamp: int, rtp_timestamp: int) -> None:
        """The publisher's NTP↔RTP mapping, handed on per subscriber (offset applied) for lip sync."""
        self.sender_reports[ssrc] = (ntp_timestamp, rtp_timestamp)
        for subscription in self.receivers:
            subscription.on_sender_report(ssrc, ntp_timestamp, rtp_timestamp)

    def request_keyframe(self, layer: int = 0) -> None:
        if self.kind != "video" or self.closed:
            return
        now = time.monotonic()
        if now - self._last_pli.get(layer, 0.0) < self._pli_throttle:
            return
        self._last_pli[layer] = now
        self.keyframe_requests += 1
        self._up.request_keyframe(self.ssrc_of_layer.get(layer) if self.layers else None)

    def subscribe(self, down: Down, subscriber_id: str, layer: str = "high") -> "Subscription":
        """A (so far idle) subscription for one subscriber, preferring `layer`; it starts receiving when activated."""
        from sfu.subscription import Subscription

        subscription = Subscription(self, down, subscriber_id, layer)
        self.subscriptions.append(subscription)
        return subscription

    def receiving(self, subscription: "Subscription", active: bool) -> None:
        if active and subscription not in self.receivers:
            self.receivers.append(subscription)
        elif not active and subscription in self.receivers:
            self.receivers.remove(subscription)
        self.batching_changed()
        self.update_demand()

    # -- demand: which layers the publisher should send --------------------------------------------

    @property
    def all_layers(self) -> frozenset[int]:
        return frozenset(range(self.top_layer + 1))

    def wanted_layers(self) -> frozenset[int]:
        if self.taps:  # other workers' subscribers choose there
            return self.all_layers
        wanted: set[int] = set()
        for subscription in self.receivers:
            wanted.add(subscription.target)
            if subscription.current is not None:  # still sent until the switch to target
                wanted.add(subscription.current)
        return frozenset(wanted)

    def update_demand(self) -> None:
        """New layers are asked for at once; unwanted ones are released after a quiet spell."""
        if self.kind != "video" or self.closed or self.on_demand is None:
            return
        wanted = self.wanted_layers()
        if not wanted <= self._demand:
            self._announce(self._demand | wanted)
        if wanted != self._demand:
            self._release_later()

    def layer_left(self) -> None:
        """A subscription switched to its target layer: what is wanted can only have shrunk (its target was wanted
        already), so only the release is due; at a speaker change a hundred switch, and `update_demand` walked
        every receiver for each."""
        if self.kind == "video" and not self.closed and self.on_demand is not None:
            self._release_later()

    def _release_later(self) -> None:
        if self._release is None:
            self._release = asyncio.get_running_loop().call_later(DEMAND_RELEASE_SECONDS, self._release_unwanted)

    def _release_unwanted(self) -> None:
        self._release = None
        wanted = self.wanted_layers()
        if not self.closed and wanted != self._demand:
            self._announce(wanted)

    def _announce(self, layers: frozenset[int]) -> None:
        self._demand = layers
        if self.on_demand is not None:
            self.on_demand(self, sorted(layers))

    def detach(self, subscription: "Subscription") -> None:
        if subscription in self.subscriptions:
            self.subscriptions.remove(subscription)
        self.receiving(subscription, False)

    def set_muted(self, muted: bool) -> None:
        if self.muted and not muted:
            for subscription in self.receivers:
                subscription.restart()
        self.muted = muted

    def close(self) -> None:
        """Idempotent; closes every subscription of this track."""
        if self.closed:
            return
        self.closed = True
        if self._release is not None:
            self._release.cancel()
            self._release = None
        self.taps.clear()
        for subscription in list(self.subscriptions):
            subscription.close()
        self.subscriptions.clear()
