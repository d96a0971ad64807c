"""Pipes between workers (after mediasoup's pipeToRouter): one room hosted by several worker processes.

A `PipeLink` joins the two halves of one room on two workers over one TCP connection (loopback here;
the same link works between machines). Each side tells the other who is in its half and what they
publish, and forwards the packets of its local publications as they arrive. The other side mirrors
each remote participant as a Participant without a connection of its own and each remote track as a
Publication whose UpTrack is the pipe: its local subscribers subscribe to it as to any other track,
and their keyframe requests travel back over the pipe to the worker that holds the publisher.

Frames: 1 byte type, 4 bytes length, payload. Type 0: a JSON control message; type 1: a packet,
2 bytes channel (the remote track) + the RTP packet as received (original SSRC, sequence, timestamp).
A link starts only after both workers proved the server's secret (sfu/pipe_auth.py). Even so, what
arrives is checked: a malformed frame closes this pipe (never the worker), and a mirrored participant
or track may not take an id the room already has.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections.abc import Callable
from typing import Any, TypeVar

from sfu.participant import Participant, Permissions
from sfu.publication import SOURCES, Codec, Publication
from sfu.room import Room, RoomFull
from sfu.rtp import AUDIO_LEVEL_URI, RID_URI, HeaderExtensionsMap, RtpPacket, extensions_map

log = logging.getLogger("convene.sfu.pipe")

CONTROL, PACKET = 0, 1
HEADER = struct.Struct("!BI")
CHANNEL = struct.Struct("!H")
MAX_FRAME = 1 << 20
MAX_TEXT = 256  # ids, names and identities a pipe may carry
T = TypeVar("T")


class PipeProtocolError(ValueError):
    """A frame a well-behaved worker never sends: the pipe is closed (the worker carries on)."""


def _field(message: dict[str, Any], key: str, kind: type[T]) -> T:
    value = message.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PipeProtocolError(f"{message.get('type')}: bad {key!r}")
    return value


def _text(message: dict[str, Any], key: str) -> str:
    value = _field(message, key, str)
    if not 0 < len(value) <= MAX_TEXT:
        raise PipeProtocolError(f"{message.get('type')}: bad {key!r}")
    return value


def _codecs(value: object) -> dict[int, Codec]:
    if not isinstance(value, list) or not value:
        raise PipeProtocolError("track: bad 'codecs'")
    codecs = {}
    for entry in value:
        if not (isinstance(entry, list) and len(entry) == 3 and type(entry[0]) is int and 0 <= entry[0] < 128
                and isinstance(entry[1], str) and "/" in entry[1] and len(entry[1]) <= 64
                and type(entry[2]) is int and entry[2] > 0):
            raise PipeProtocolError("track: bad 'codecs'")
        codecs[entry[0]] = Codec(entry[1], entry[2])
    return codecs


def _layers(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 8 or not all(isinstance(r, str) and 0 < len(r) <= 16 for r in value):
        raise PipeProtocolError("track: bad 'layers'")
    return list(value)


def pipe_extensions() -> HeaderExtensionsMap:
    """The header extensions a pipe carries: those the room logic reads (level, layer name)."""
    return extensions_map([AUDIO_LEVEL_URI, RID_URI])


class PipeUpTrack:
    """The UpTrack of a remote publication: keyframe requests go back over the pipe."""

    def __init__(self, link: "PipeLink", track_id: str) -> None:
        self._link = link
        self._track_id = track_id

    def request_keyframe(self, ssrc: int | None = None) -> None:
        self._link.send_control({"type": "keyframe", "track_id": self._track_id, "ssrc": ssrc})


class PipeLink:
    def __init__(self, room: Room, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 peer: str, on_closed: Callable[["PipeLink"], None] | None = None, opened_by: str = "") -> None:
        self.room = room
        self.peer = peer
        self.opened_by = opened_by  # the worker that connected (when both do at once, one link stays)
        self._reader = reader
        self._writer = writer
        self._on_closed = on_closed
        self._ext = pipe_extensions()
        # Ours: local publication id -> channel; theirs: channel -> mirrored publication.
        self._out_channels: dict[str, int] = {}
        self._taps: dict[str, Callable[[RtpPacket], None]] = {}
        self._in_channels: dict[int, Publication] = {}
        self._remote_participants: dict[str, Participant] = {}
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        self.packets_out = 0
        self.packets_in = 0
        self._log = logging.LoggerAdapter(log, {"room": room.name, "peer": peer})

    # -- start -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Announces our half of the room and starts reading theirs."""
        self.room.add_listener(self)
        for participant in list(self.room.participants.values()):
            if self._is_local(participant):
                self._announce_participant(participant)
                for publication in participant.publications.values():
                    self._announce_track(participant, publication)
        self._task = asyncio.get_running_loop().create_task(self._read())

    def _is_local(self, participant: Participant) -> bool:
        return not participant.hidden and getattr(participant, "pipe", None) is None

    # -- outbound --------------------------------------------------------------------------------

    def send_control(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        data = json.dumps(message, separators=(",", ":")).encode()
        self._writer.write(HEADER.pack(CONTROL, len(data)) + data)

    def _send_packet(self, channel: int, packet: RtpPacket) -> None:
        if self.closed:
            return
        data = CHANNEL.pack(channel) + packet.serialize(self._ext)
        self._writer.write(HEADER.pack(PACKET, len(data)) + data)
        self.packets_out += 1

    def _announce_participant(self, participant: Participant) -> None:
        self.send_control({"type": "participant", "id": participant.id, "identity": participant.identity,
                           "name": participant.name})

    def _announce_track(self, participant: Participant, publication: Publication) -> None:
        if publication.id in self._out_channels:
            return
        channel = len(self._out_channels) + 1
        self._out_channels[publication.id] = channel
        self.send_control({
            "type": "track", "participant_id": participant.id, "channel": channel, "id": publication.id,
            "source": publication.source, "muted": publication.muted, "layers": publication.layers,
            "codecs": [[pt, c.mime_type, c.clock_rate] for pt, c in publication.codecs.items()],
        })

        def tap(packet: RtpPacket, channel: int = channel) -> None:
            self._send_packet(channel, packet)

        self._taps[publication.id] = tap
        publication.taps.append(tap)
        publication.update_demand()

    def on_room_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        participant = self.room.participants.get(str(event.get("participant_id", "")))
        if kind == "participant_joined":
            joined = self.room.participants.get(event["participant"]["id"])
            if joined is not None and self._is_local(joined):
                self._announce_participant(joined)
        elif kind == "participant_left":
            if event["participant_id"] not in self._remote_participants:
                self.send_control({"type": "participant_left", "id": event["participant_id"]})
        elif kind == "track_published" and participant is not None and self._is_local(participant):
            publication = event.get("publication")
            if isinstance(publication, Publication):
                self._announce_track(participant, publication)
        elif kind == "track_unpublished" and event["track_id"] in self._out_channels:
            self._out_channels.pop(event["track_id"])
            self._taps.pop(event["track_id"], None)
            self.send_control({"type": "untrack", "id": event["track_id"]})
        elif kind == "track_muted" and event["track_id"] in self._out_channels:
            self.send_control({"type": "mute", "id": event["track_id"], "muted": event["muted"]})

    # -- inbound ---------------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:
                kind, length = HEADER.unpack(await self._reader.readexactly(HEADER.size))
                if length > MAX_FRAME:
                    raise PipeProtocolError(f"pipe frame of {length} bytes")
                data = await self._reader.readexactly(length)
                if kind == PACKET:
                    self._on_packet(data)
                elif kind == CONTROL:
                    self._on_control(self._decode(data))
                else:
                    raise PipeProtocolError(f"unknown frame type {kind}")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self._log.info("pipe closed: %r", exc)
        except PipeProtocolError as exc:
            self._log.warning("malformed pipe frame, closing the pipe: %s", exc)
        except Exception:
            # The pipe is the boundary: whatever a peer sends ends this link, never the worker.
            self._log.exception("pipe failed, closing it")
        finally:
            await self.close()

    @staticmethod
    def _decode(data: bytes) -> dict[str, Any]:
        try:
            message = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PipeProtocolError(f"control frame is not JSON: {exc}") from exc
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise PipeProtocolError("control frame is not a typed object")
        return message

    def _on_packet(self, data: bytes) -> None:
        if len(data) < CHANNEL.size:
            raise PipeProtocolError("packet frame without a channel")
        (channel,) = CHANNEL.unpack_from(data)
        publication = self._in_channels.get(channel)
        if publication is None:
            return
        try:
            packet = RtpPacket.parse(data[CHANNEL.size:], self._ext)
        except ValueError as exc:
            raise PipeProtocolError(f"bad RTP packet on channel {channel}: {exc}") from exc
        self.packets_in += 1
        publication.on_rtp(packet)

    def _on_control(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "participant":
            self._on_participant(message)
        elif kind == "participant_left":
            participant_id = _text(message, "id")
            if self._remote_participants.pop(participant_id, None) is not None:
                self.room.leave(participant_id, reason="left")
        elif kind == "track":
            self._on_track(message)
        elif kind == "untrack":
            track_id = _text(message, "id")
            for channel, publication in list(self._in_channels.items()):
                if publication.id == track_id:
                    del self._in_channels[channel]
                    owner = self._remote_participants.get(publication.participant_id)
                    if owner is not None:
                        self.room.unpublish(owner, publication.id)
        elif kind == "mute":
            track_id, muted = _text(message, "id"), _field(message, "muted", bool)
            for publication in self._in_channels.values():
                owner = self._remote_participants.get(publication.participant_id)
                if publication.id == track_id and owner is not None:
                    self.room.set_muted(owner, publication.id, muted)
        elif kind == "keyframe":
            ssrc = message.get("ssrc")
            if ssrc is not None and (type(ssrc) is not int or not 0 <= ssrc < 1 << 32):
                raise PipeProtocolError("keyframe: bad 'ssrc'")
            self._request_local_keyframe(_text(message, "track_id"), ssrc)
        else:
            self._log.debug("ignoring pipe message %r", kind)

    def _on_participant(self, message: dict[str, Any]) -> None:
        participant_id = _text(message, "id")
        identity, name = _text(message, "identity"), _field(message, "name", str)[:MAX_TEXT]
        if participant_id in self.room.participants:
            # Never replace or shadow someone already here (a local participant, or one another pipe mirrors).
            self._log.warning("refused mirrored participant %s: the room already has that id", participant_id)
            return
        remote = Participant(identity, name, Permissions(subscribe=False), participant_id=participant_id)
        remote.pipe = self  # before joining: the join event must not be announced back over pipes
        try:
            self.room.join(remote)
        except RoomFull:
            self._log.warning("refused mirrored participant %s: the room is full", participant_id)
            return
        self._remote_participants[remote.id] = remote

    def _on_track(self, message: dict[str, Any]) -> None:
        owner = self._remote_participants.get(_text(message, "participant_id"))
        track_id, channel, source = _text(message, "id"), _field(message, "channel", int), _text(message, "source")
        if not 0 < channel <= 0xFFFF or source not in SOURCES:
            raise PipeProtocolError("track: bad 'channel' or 'source'")
        codecs, layers = _codecs(message.get("codecs")), _layers(message.get("layers"))
        if owner is None:
            return
        if channel in self._in_channels or any(track_id in p.publications for p in self.room.participants.values()):
            self._log.warning("refused mirrored track %s: its id or channel is taken", track_id)
            return
        publication = Publication(track_id, owner.id, source, PipeUpTrack(self, track_id), codecs,
                                  muted=message.get("muted") is True, layers=layers)
        self._in_channels[channel] = publication
        self.room.publish(owner, publication)

    def _request_local_keyframe(self, track_id: str, ssrc: object) -> None:
        for participant in self.room.participants.values():
            publication = participant.publications.get(track_id)
            if publication is not None and self._is_local(participant):
                layer = 0
                for index, layer_ssrc in publication.ssrc_of_layer.items():
                    if layer_ssrc == ssrc:
                        layer = index
                publication.request_keyframe(layer)

    # -- end -------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Idempotent: removes the mirrored half of the room and stops tapping ours."""
        if self.closed:
            return
        self.closed = True
        self.room.remove_listener(self)
        for participant in self.room.participants.values():
            for publication in participant.publications.values():
                tap = self._taps.get(publication.id)
                if tap is not None and tap in publication.taps:
                    publication.taps.remove(tap)
                    publication.update_demand()
        self._taps.clear()
        for participant_id in list(self._remote_participants):
            self.room.leave(participant_id, reason="worker link closed")
        self._remote_participants.clear()
        self._in_channels.clear()
        self._writer.close()
        if self._on_closed is not None:
            self._on_closed(self)
