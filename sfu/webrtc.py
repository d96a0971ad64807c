"""WebRTC peers for the room, in the room's vocabulary: a participant's `Publisher` connection (its Up
side: the client offers, we answer and receive its tracks) and its `Subscriber` connection (its Down
side: we offer, it answers, and we forward others' tracks to it).

Only this module and sfu/aiortc_seams.py know aiortc.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import clock
from aiortc.sdp import candidate_from_sdp

from sfu.aiortc_seams import (
    ForwardingPeerConnection,
    ForwardingReceiver,
    ForwardingSender,
    MediaLine,
    enable_simulcast_extensions,
    IceGathering,
    install_ice_gathering,
    offer_payload_type,
    parse_media_lines,
    prefer_opus_dtx_and_fec,
    receiver_of,
    sender_of,
    transceiver_codecs,
)
from sfu.interfaces import DownFeedback
from sfu.publication import Codec, Publication
from sfu.rtp import RtpPacket
from sfu.simulcast_sdp import answer_with_simulcast, offered_layers

log = logging.getLogger("convene.sfu.webrtc")

# Upstream bandwidth we allow a publisher when no subscriber says less (REMB), by source.
MAX_BITRATE = {"camera": 1_500_000, "screen": 2_500_000}
MIN_BITRATE = 150_000
SIMULCAST_BITRATE = 2_500_000  # room for all three layers
REMB_INTERVAL = 1.0


class SdpError(ValueError):
    """The SDP does not parse or does not fit the connection."""


LOOPBACK = ipaddress.ip_address("127.0.0.1")


class IceConfigError(ValueError):
    """An ICE setting (announced address, networks, port range) that cannot be used."""


def configure_ice(include_loopback: bool = True, announce_ip: str | None = None,
                  rtc_ips: Sequence[str] = (), port_range: tuple[int, int] | None = None) -> None:
    """Process-wide WebRTC settings (the last call wins): RID extensions for simulcast, and how host
    candidates are gathered: on 127.0.0.1 too or not, only on addresses inside `rtc_ips` (CIDRs or single
    addresses; empty: every address), on ports in `port_range`, named `announce_ip` in SDP (1:1 NAT)."""
    enable_simulcast_extensions()
    install_ice_gathering(ice_gathering_settings(include_loopback, announce_ip, rtc_ips, port_range))


def ice_gathering_settings(include_loopback: bool, announce_ip: str | None, rtc_ips: Sequence[str],
                           port_range: tuple[int, int] | None) -> IceGathering:
    """Checked settings; IceConfigError names the one that is wrong."""
    try:
        networks = tuple(ipaddress.ip_network(text.strip(), strict=False) for text in rtc_ips)
    except ValueError as exc:
        raise IceConfigError(f"rtc-ips: {exc}") from None
    announced = None
    if announce_ip is not None:
        try:
            announced = ipaddress.ip_address(announce_ip.strip())
        except ValueError:
            raise IceConfigError(f"announce-ip: {announce_ip!r} is not an IP address") from None
        if announced.is_unspecified or announced.is_multicast or announced.is_loopback:
            raise IceConfigError(f"announce-ip: {announced} is not an address a peer can reach")
    if port_range is not None and not 1 <= port_range[0] <= port_range[1] <= 65535:
        raise IceConfigError(f"rtc-port-range: {port_range[0]}-{port_range[1]} is not a range of ports")
    # Named networks decide on their own whether 127.0.0.1 gathers; else the caller does (serving on loopback).
    loopback = any(LOOPBACK in n for n in networks) if networks else include_loopback
    return IceGathering(include_loopback=loopback, networks=networks, announce_ip=announced,
                        port_range=port_range)


def loopback_host(host: str) -> bool:
    """Serving on a loopback address (or `localhost`): peers are on this machine, 127.0.0.1 must gather."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# An ICE server as Config and `joined.ice_servers` give it: a URL, or an RTCIceServer-like object
# {"urls": str | [str], "username", "credential"} (TURN REST credentials).
IceServerEntry = str | Mapping[str, Any]


def rtc_ice_server(entry: IceServerEntry) -> RTCIceServer:
    if isinstance(entry, str):
        return RTCIceServer(urls=entry)
    return RTCIceServer(urls=entry["urls"], username=entry.get("username"), credential=entry.get("credential"))


def rtc_configuration(ice_servers: Sequence[IceServerEntry]) -> RTCConfiguration:
    # aiortc's default is a public STUN server: never reach out unless configured.
    # Max-bundle: every m-line on one transport from the start. With aiortc's default ("balanced"), a
    # second m-line of a kind reuses the first one's transport, and if that transport is later
    # dropped by BUNDLE, the m-line is left on it and never connects.
    return RTCConfiguration(iceServers=[rtc_ice_server(entry) for entry in ice_servers],
                            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def parse_sdp(text: str) -> list[MediaLine]:
    try:
        return parse_media_lines(text)
    except ValueError as exc:
        raise SdpError(str(exc)) from exc


# -- remote ICE candidates: the addresses a client may make the server send STUN checks to ------------

# A browser has one or two per network interface (host, server reflexive, relay; IPv4 and IPv6), and
# with max-bundle one component: 20 is plenty for a real client and bounds what one peer connection
# makes the server probe (each candidate is a pair checked every few tens of ms until ICE settles).
MAX_REMOTE_CANDIDATES = 20
BROADCAST = ipaddress.IPv4Address("255.255.255.255")


class RefusedCandidate(ValueError):
    """A remote ICE candidate the server will not use; `reason` says why (for the client's error)."""

    def __init__(self, reason: str, address: str) -> None:
        super().__init__(f"ICE candidate {address} refused: {reason}")
        self.reason = reason
        self.address = address


@dataclass(frozen=True)
class CandidatePolicy:
    """Which remote candidates a peer connection takes (Config.ice_allow_link_local reaches here)."""

    max_remote: int = MAX_REMOTE_CANDIDATES
    # Link-local addresses (169.254/16, fe80::/10) include cloud metadata services: off by default.
    allow_link_local: bool = False


@dataclass
class RemoteCandidates:
    """One peer connection's remote candidates, trickled and in SDP together, checked by one policy."""

    policy: CandidatePolicy = field(default_factory=CandidatePolicy)
    accepted: set[tuple[str, int, int, str]] = field(default_factory=set)

    def admit(self, ice: RTCIceCandidate) -> bool:
        """True: hand it to ICE. False: drop it quietly (not usable by us). RefusedCandidate: bad input."""
        if ice.protocol.lower() != "udp":
            return False  # aiortc speaks ICE over UDP only
        if ice.ip.lower().rstrip(".").endswith(".local"):
            # An mDNS name (a browser hiding its address): we would have to multicast on the server's
            # LAN to resolve it; the browser's checks reach us anyway (peer-reflexive candidates).
            return False
        address = self._checked_address(ice)
        key = (str(address), ice.port, ice.component, "udp")
        if key in self.accepted:
            return True  # the same candidate again (renegotiation repeats them): free
        if len(self.accepted) >= self.policy.max_remote:
            raise RefusedCandidate(f"at most {self.policy.max_remote} candidates per connection", ice.ip)
        self.accepted.add(key)
        return True

    def _checked_address(self, ice: RTCIceCandidate) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        try:
            address = ipaddress.ip_address(ice.ip)
        except ValueError:
            raise RefusedCandidate("not an IP address", ice.ip) from None
        if not 0 < ice.port < 65536:
            raise RefusedCandidate("bad port", f"{ice.ip}:{ice.port}")
        plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
        if plain.is_unspecified or plain.is_multicast or plain == BROADCAST:
            raise RefusedCandidate("not a unicast address", ice.ip)
        if plain.is_link_local and not self.policy.allow_link_local:
            raise RefusedCandidate("link-local address", ice.ip)
        return plain

    def filter_sdp(self, sdp: str) -> str:
        """The SDP without the candidate lines the policy refuses or drops (silently: logged at debug)."""
        kept: list[str] = []
        # With BUNDLE every m-line repeats the same candidates: each distinct line is judged once.
        verdicts: dict[str, bool] = {}
        for line in sdp.splitlines(keepends=True):
            if line.startswith("a=candidate:"):
                keep = verdicts.get(line)
                if keep is None:
                    keep = verdicts[line] = self._keep_sdp_line(line)
                if not keep:
                    continue
            kept.append(line)
        return "".join(kept)

    def _keep_sdp_line(self, line: str) -> bool:
        try:
            ice = candidate_from_sdp(line.strip()[len("a=candidate:"):])
        except Exception:
            return True  # not ours to judge: aiortc's parser reports a broken SDP as before
        try:
            return self.admit(ice)
        except RefusedCandidate as exc:
            log.debug("dropped from SDP: %s", exc)
            return False


async def add_ice_candidate(pc: ForwardingPeerConnection, candidate: dict[str, Any] | None,
                            remote: RemoteCandidates | None = None) -> None:
    """A trickled candidate: parsed, checked against `remote` (RefusedCandidate), then given to ICE."""
    if candidate is None or not candidate.get("candidate"):
        return  # end of candidates
    line = str(candidate["candidate"])
    if line.startswith("candidate:"):
        line = line[len("candidate:"):]
    try:
        ice = candidate_from_sdp(line)
    except Exception as exc:
        raise SdpError(f"bad ICE candidate: {exc}") from exc
    mid, index = candidate.get("sdpMid"), candidate.get("sdpMLineIndex")
    if mid is None and index is None or not isinstance(mid, (str, type(None))) \
            or isinstance(index, bool) or not isinstance(index, (int, type(None))):
        raise SdpError("an ICE candidate needs sdpMid (string) or sdpMLineIndex (integer)")
    ice.sdpMid, ice.sdpMLineIndex = mid, index
    if not (remote or RemoteCandidates()).admit(ice):
        return
    await pc.addIceCandidate(ice)


@dataclass(frozen=True)
class IncomingMedia:
    mid: str
    kind: str
    codecs: dict[int, Codec]


class RtcUpTrack:
    """The UpTrack of a publication fed by a WebRTC receiver."""

    def __init__(self, receiver: ForwardingReceiver) -> None:
        self._receiver = receiver

    def request_keyframe(self, ssrc: int | None = None) -> None:
        self._receiver.send_pli(ssrc)


NTP_MOD = 1 << 64


class PublisherClock:
    """Puts one publisher's RTCP sender reports on the server's clock.

    A sender report maps a stream's RTP time to the sender's wall clock (NTP); a browser synchronises the
    audio and video of one a=msid stream by it. We forward the mapping to each subscriber, so the clock in
    it is the publisher's, and publishers' clocks differ (a machine off by seconds is common). Within one
    person that cancels out, but a slot pair carries one person only while slots allow (sfu/webrtc.py,
    Subscriber); a pair that briefly carries two people, or a slot handed from one person to another, would
    be synchronised across two clocks. On the server's clock every person agrees to within their network
    delays. One offset per publisher connection, the same for its audio and video, keeps a person's own sync
    exact: the smallest (server time at arrival - reported time) of the last reports, i.e. the clock offset
    plus the quickest report's one-way delay."""

    WINDOW = 16  # reports (a few seconds of a camera and a microphone): follows drift, forgets a slow path

    def __init__(self) -> None:
        self._samples: deque[int] = deque(maxlen=self.WINDOW)

    def to_server(self, ntp_timestamp: int, now: int | None = None) -> int:
        """The report's NTP time on the server's clock (64-bit NTP, like the input)."""
        arrived = clock.current_ntp_time() if now is None else now
        delta = (arrived - ntp_timestamp) % NTP_MOD
        if delta >= NTP_MOD // 2:
            delta -= NTP_MOD  # the publisher's clock is ahead of ours
        self._samples.append(delta)
        return (ntp_timestamp + min(self._samples)) % NTP_MOD


class Publisher:
    """A participant's sending connection: it offers, we answer; each m-line may become a Publication."""

    def __init__(self, ice_servers: list[str], label: str = "",
                 candidate_policy: CandidatePolicy | None = None) -> None:
        self.pc = ForwardingPeerConnection(rtc_configuration(ice_servers))
        self.remote_candidates = RemoteCandidates(candidate_policy or CandidatePolicy())
        self._bound: dict[str, tuple[ForwardingReceiver, Publication]] = {}
        self._log = logging.LoggerAdapter(log, {"pub": label})
        self._remb_task: asyncio.Task[None] | None = None
        self.layers_by_mid: dict[str, list[str]] = {}
        self.clock = PublisherClock()
        self.closed = False

    async def answer(self, offer_sdp: str) -> str:
        parse_sdp(offer_sdp)
        self.layers_by_mid = offered_layers(offer_sdp)
        counted = set(self.remote_candidates.accepted)
        try:
            offer = self.remote_candidates.filter_sdp(offer_sdp)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            for transceiver in self.pc.getTransceivers():
                if transceiver.kind == "audio":
                    prefer_opus_dtx_and_fec(transceiver)
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
        except (ValueError, KeyError, IndexError) as exc:
            self.remote_candidates.accepted = counted  # a refused offer's candidates take no budget
            raise SdpError(f"offer rejected: {exc}") from exc
        if self._remb_task is None:
            self._remb_task = asyncio.get_running_loop().create_task(self._run_remb())
        description = self.pc.localDescription
        assert description is not None
        # aiortc's SDP code drops simulcast: accept the offered layers in our answer ourselves.
        return answer_with_simulcast(str(description.sdp), self.layers_by_mid)

    def _transceiver(self, mid: str) -> RTCRtpTransceiver | None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid == mid:
                return transceiver
        return None

    def incoming(self, mid: str) -> IncomingMedia | None:
        transceiver = self._transceiver(mid)
        if transceiver is None or transceiver.kind not in ("audio", "video"):
            return None
        codecs = {
            c.payloadType: Codec(c.mimeType, c.clockRate)
            for c in transceiver_codecs(transceiver)
            if not c.mimeType.lower().endswith("/rtx")
        }
        return IncomingMedia(mid=mid, kind=transceiver.kind, codecs=codecs)

    def up_track(self, mid: str) -> RtcUpTrack:
        transceiver = self._transceiver(mid)
        assert transceiver is not None
        return RtcUpTrack(receiver_of(transceiver))

    def bind(self, mid: str, publication: Publication) -> None:
        """From now on the packets of this m-line feed `publication`."""
        transceiver = self._transceiver(mid)
        assert transceiver is not None
        receiver = receiver_of(transceiver)
        receiver.on_packet = publication.on_rtp
        receiver.route_target = publication

        def on_sender_report(ssrc: int, ntp_timestamp: int, rtp_timestamp: int) -> None:
            publication.on_sender_report(ssrc, self.clock.to_server(ntp_timestamp), rtp_timestamp)

        receiver.on_sender_report = on_sender_report
        self._bound[mid] = (receiver, publication)

    def unbind(self, mid: str) -> None:
        bound = self._bound.pop(mid, None)
        if bound is not None:
            bound[0].on_packet = None
            bound[0].route_target = None
            bound[0].on_sender_report = None

    def bound_mids(self) -> set[str]:
        return set(self._bound)

    async def add_candidate(self, candidate: dict[str, Any] | None) -> None:
        await add_ice_candidate(self.pc, candidate, self.remote_candidates)

    async def _run_remb(self) -> None:
        # Without transport-cc, the publisher's bandwidth estimate listens to REMB: relay the lowest
        # estimate of its subscribers, within bounds, so one slow subscriber slows the source.
        while not self.closed:
            await asyncio.sleep(REMB_INTERVAL)
            for receiver, publication in list(self._bound.values()):
                if publication.kind != "video":
                    continue
                if publication.layers:
                    # Simulcast: slow subscribers get a lower layer; never slow the source for them.
                    receiver.send_remb(SIMULCAST_BITRATE)
                    continue
                ceiling = MAX_BITRATE.get(publication.source, MAX_BITRATE["camera"])
                estimates = [s.remb for s in publication.subscriptions if s.remb]
                bitrate = max(MIN_BITRATE, min([ceiling, *estimates]))
                receiver.send_remb(bitrate)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for mid in list(self._bound):
            self.unbind(mid)
        if self._remb_task is not None:
            self._remb_task.cancel()
        await self.pc.close()


class RtcDownTrack:
    """A DownTrack on a Subscriber connection: one sendonly transceiver."""

    def __init__(self, transceiver: RTCRtpTransceiver, kind: str, track_id: str, participant_id: str,
                 source: str) -> None:
        self.transceiver = transceiver
        self.sender = sender_of(transceiver)
        self.kind = kind
        self.track_id = track_id
        self.participant_id = participant_id
        self.source = source
        self.closed = False
        self._feedback: DownFeedback | None = None

    def attach(self, feedback: DownFeedback) -> None:
        self._feedback = feedback
        self.sender.feedback = feedback
        # Called once the subscriber has answered and DTLS is up: the subscription forwards from then on, from a
        # keyframe it asks for then (one asked for at subscribe time may have come and gone before this sender
        # could send).
        self.sender.on_started = feedback.on_ready

    @property
    def ready(self) -> bool:
        return not self.closed and self.sender.started

    def payload_type_for(self, mime_type: str) -> int | None:
        return offer_payload_type(self.kind, mime_type)

    def send(self, packet: RtpPacket, payload_type: int, seq: int, timestamp: int) -> None:
        if not self.closed:
            self.sender.write(packet, payload_type, seq, timestamp)

    def resend(self, packet: RtpPacket, payload_type: int, seq: int, timestamp: int) -> None:
        if not self.closed:
            self.sender.write(packet, payload_type, seq, timestamp, rtx=True)

    def batch_sender(self) -> ForwardingSender | None:
        """The sender a batched fan-out (sfu/fanout.py) may write for, while this track is open."""
        return None if self.closed else self.sender

    def set_sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        self.sender.set_sender_report(ntp_timestamp, rtp_timestamp)

    def last_sent(self) -> tuple[int, int, float] | None:
        return self.sender.last_sent

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        leave_batch = getattr(self._feedback, "leave_batch", None)
        if leave_batch is not None:  # a batched fan-out must stop sending for it too
            leave_batch()
        self.sender.feedback = None
        self.sender.on_started = None


# Pairs made ahead of need (`Subscriber.expect`): a 5x5 grid and the loudest three. More are made when needed; this
# bounds what one hint may add to an offer (an m-line is ~1 KiB of SDP; answers are capped at 64 KiB).
MAX_EXPECTED_PAIRS = 28

# Which of a person's audio and video belong together on a slot pair (lip sync).
SOURCE_FAMILY = {"microphone": "main", "camera": "main", "screen_audio": "screen", "screen": "screen"}


class Subscriber:
    """A participant's receiving connection (the room's `Down`): we offer, the client answers.

    Its m-lines are slots. A subscription that becomes active takes an idle slot of its kind; one that
    becomes idle gives its slot back, which stays negotiated (sendonly, silent) for the next. So the
    connection grows only up to what is active at once (last-N videos, the loudest few voices), and
    who a slot carries changes by a `tracks` table (`on_table_changed`), not by renegotiation: in a
    hundred-person room a join no longer renegotiates everyone's connection.
    """

    kinds = frozenset({"audio", "video"})

    def __init__(self, ice_servers: list[str], on_negotiation_needed: Callable[[], None],
                 label: str = "", on_table_changed: Callable[[], None] | None = None,
                 candidate_policy: CandidatePolicy | None = None) -> None:
        self.pc = ForwardingPeerConnection(rtc_configuration(ice_servers))
        self.remote_candidates = RemoteCandidates(candidate_policy or CandidatePolicy())
        self._on_negotiation_needed = on_negotiation_needed
        self._on_table_changed = on_table_changed
        self._by_kind: dict[str, list[RTCRtpTransceiver]] = {"audio": [], "video": []}  # slot i of each is pair i
        self._tracks: dict[RTCRtpTransceiver, RtcDownTrack] = {}
        self._stream_id = label or "convene"
        self.closed = False

    # -- Down --------------------------------------------------------------------------------------

    def add_track(self, kind: str, track_id: str, participant_id: str, source: str) -> RtcDownTrack | None:
        if self.closed:
            return None
        transceiver = self._slot_for(kind, participant_id, source)
        track = RtcDownTrack(transceiver, kind, track_id, participant_id, source)
        self._tracks[transceiver] = track
        if transceiver.mid is not None:
            self._table_changed()
        return track

    # -- slot pairs: lip sync ----------------------------------------------------------------------
    #
    # A browser plays an audio and a video track in sync (libwebrtc's RtpStreamsSynchronizer, from the
    # senders' RTCP reports) only when the SDP puts them in one stream (the same a=msid stream id). A slot's
    # msid is fixed by negotiation, while the person it carries changes. So slots come in pairs: audio slot i
    # and video slot i share the stream "pair-i". A pair carries one person at a time: their voice and camera
    # (or screen sound and screen), or one of the two with the other slot idle, never two people. A track
    # goes on the partner of its person's other track; else on a slot whose partner is idle; else a new pair
    # is made (negotiated once, like any new slot). So each person received takes one pair, and a connection
    # has at most as many pairs as people it receives at once (last-N cameras plus the loudest few voices
    # that have no camera among them); in a steady meeting no speaker change renegotiates.

    def _slots_of(self, kind: str) -> list[RTCRtpTransceiver]:
        """Not a copy: callers only read it."""
        return self._by_kind[kind]

    def _partner(self, kind: str, index: int) -> RtcDownTrack | None:
        """What the other slot of pair `index` carries now (None: idle, or not made)."""
        others = self._slots_of("video" if kind == "audio" else "audio")
        return self._tracks.get(others[index]) if index < len(others) else None

    @staticmethod
    def _same(track: RtcDownTrack, participant_id: str, source: str) -> bool:
        return track.participant_id == participant_id \
            and SOURCE_FAMILY.get(track.source) == SOURCE_FAMILY.get(source, source)

    def _idle_slot(self, kind: str, participant_id: str, source: str) -> RTCRtpTransceiver | None:
        """An idle slot of `kind` this track may take: the partner of its person's other track, else one whose
        partner is idle; negotiated ones first (they carry it at once; a new one waits for an answer)."""
        best: tuple[int, int, int] | None = None
        chosen = None
        for index, transceiver in enumerate(self._slots_of(kind)):
            if transceiver in self._tracks:
                continue
            partner = self._partner(kind, index)
            if partner is not None and not self._same(partner, participant_id, source):
                continue  # someone else's pair
            rank = (0 if partner is not None else 1, 0 if transceiver.mid is not None else 1, index)
            if best is None or rank < best:
                best, chosen = rank, transceiver
        return chosen

    def _pair_for_new_slot(self, kind: str, participant_id: str, source: str) -> int:
        """The pair a new slot of `kind` must complete: the one holding its person's other track when that pair
        has no slot of this kind yet, else the first pair past this kind's slots that nobody else holds."""
        others = self._slots_of("video" if kind == "audio" else "audio")
        for index, transceiver in enumerate(others):
            track = self._tracks.get(transceiver)
            if track is not None and self._same(track, participant_id, source):
                if index >= len(self._slots_of(kind)):
                    return index
                break
        index = len(self._slots_of(kind))
        while self._partner(kind, index) is not None:
            index += 1
        return index

    def _slot_for(self, kind: str, participant_id: str, source: str) -> RTCRtpTransceiver:
        transceiver = self._idle_slot(kind, participant_id, source)
        pair = self._pair_for_new_slot(kind, participant_id, source)
        partner = self._partner(kind, pair)
        if transceiver is not None and not (partner is not None and self._same(partner, participant_id, source)):
            return transceiver
        # A new slot, with idle ones before it (each the free half of someone else's pair, kept for them).
        while True:
            transceiver = self._new_slot(kind)
            if len(self._by_kind[kind]) > pair:
                break
        self._on_negotiation_needed()
        return transceiver

    def _new_slot(self, kind: str) -> RTCRtpTransceiver:
        transceiver = self.pc.addTransceiver(kind, direction="sendonly")
        slots = self._by_kind[kind]
        index = len(slots)
        sender_of(transceiver).set_msid(f"{self._stream_id}/pair-{index}", f"{kind}-{index}")
        slots.append(transceiver)
        return transceiver

    def expect(self, people: int) -> None:
        """Makes idle pairs up to `people` (up to MAX_EXPECTED_PAIRS; never takes any away), negotiated with the
        next offer."""
        if self.closed:
            return
        pairs = min(people, MAX_EXPECTED_PAIRS)
        by_kind = self._by_kind
        if len(by_kind["audio"]) >= pairs and len(by_kind["video"]) >= pairs:
            return  # the usual case: the room reselects everyone at each join and speaker change
        for kind in ("audio", "video"):
            while len(by_kind[kind]) < pairs:
                self._new_slot(kind)
        self._on_negotiation_needed()

    def remove_track(self, track: Any) -> None:
        if not isinstance(track, RtcDownTrack):
            return
        track.close()
        if self._tracks.get(track.transceiver) is track:
            del self._tracks[track.transceiver]
            if track.transceiver.mid is not None:
                self._table_changed()

    def _table_changed(self) -> None:
        if self._on_table_changed is not None and not self.closed:
            self._on_table_changed()

    # -- negotiation -------------------------------------------------------------------------------

    def has_tracks(self) -> bool:
        return any(self._by_kind.values())

    def table(self) -> dict[str, dict[str, str]]:
        """What each negotiated slot carries now (idle slots are left out)."""
        return {
            str(t.mid): {"track_id": d.track_id, "participant_id": d.participant_id, "kind": d.kind,
                         "source": d.source}
            for t, d in self._tracks.items() if t.mid is not None
        }

    async def create_offer(self) -> tuple[str, dict[str, dict[str, str]]]:
        # Once ICE has gathered, aiortc's offer already names every candidate: the local description is the same
        # text, which aiortc would write out again from the start (tens of m-lines at each renegotiation).
        gathered = self.pc.iceGatheringState == "complete"
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        if gathered:
            return offer.sdp, self.table()
        description = self.pc.localDescription
        assert description is not None
        return str(description.sdp), self.table()

    async def apply_answer(self, answer_sdp: str) -> None:
        parse_sdp(answer_sdp)
        counted = set(self.remote_candidates.accepted)
        try:
            answer = self.remote_candidates.filter_sdp(answer_sdp)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        except (ValueError, KeyError, IndexError) as exc:
            self.remote_candidates.accepted = counted
            raise SdpError(f"answer rejected: {exc}") from exc

    async def add_candidate(self, candidate: dict[str, Any] | None) -> None:
        await add_ice_candidate(self.pc, candidate, self.remote_candidates)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for track in self._tracks.values():
            track.close()
        self._tracks.clear()
        await self.pc.close()
