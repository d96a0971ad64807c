"""Pipes between workers (after mediasoup's pipeToRouter): one room hosted by several worker processes.

A `PipeLink` joins the two halves of one room on two workers over one TCP connection (loopback here;
the same link works between machines). Each side tells the other who is in its half and what they
publish, and forwards the packets of its local publications as they arrive. The other side mirrors
each remote participant as a Participant without a connection of its own and each remote track as a
Publication whose UpTrack is the pipe: its local subscribers subscribe to it as to any other track,
and their keyframe requests travel back over the pipe to the worker that holds the publisher.

Frames: 1 byte type, 4 bytes length, payload. Type 0: a JSON control message; type 1: a packet,
2 bytes channel (the remote track) + the RTP packet as received (original SSRC, sequence, timestamp).
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections.abc import Callable
from typing import Any

from sfu.participant import Participant, Permissions
from sfu.publication import Codec, Publication
from sfu.room import Room
from sfu.rtp import AUDIO_LEVEL_URI, RID_URI, HeaderExtensionsMap, RtpPacket, extensions_map

log = logging.getLogger("convene.sfu.pipe")

CONTROL, PACKET = 0, 1
HEADER = struct.Struct("!BI")
CHANNEL = struct.Struct("!H")
MAX_FRAME = 1 << 20


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
                 peer: str, on_closed: Callable[["PipeLink"], None] | None = None) -> None:
        self.room = room
        self.peer = peer
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
                    raise ValueError(f"pipe frame of {length} bytes")
                data = await self._reader.readexactly(length)
                if kind == PACKET:
                    self._on_packet(data)
                elif kind == CONTROL:
                    self._on_control(json.loads(data))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            self._log.info("pipe closed: %s", exc)
        finally:
            await self.close()

    def _on_packet(self, data: bytes) -> None:
        (channel,) = CHANNEL.unpack_from(data)
        publication = self._in_channels.get(channel)
        if publication is None:
            return
        self.packets_in += 1
        publication.on_rtp(RtpPacket.parse(data[CHANNEL.size:], self._ext))

    def _on_control(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "participant":
            if message["id"] in self._remote_participants:
                return
            remote = Participant(str(message["identity"]), str(message["name"]),
                                 Permissions(subscribe=False), participant_id=str(message["id"]))
            remote.pipe = self
            self._remote_participants[remote.id] = remote
            self.room.join(remote)
        elif kind == "participant_left":
            if self._remote_participants.pop(str(message["id"]), None) is not None:
                self.room.leave(str(message["id"]), reason="left")
        elif kind == "track":
            owner = self._remote_participants.get(str(message["participant_id"]))
            if owner is None:
                return
            codecs = {int(pt): Codec(str(mime), int(clock)) for pt, mime, clock in message["codecs"]}
            publication = Publication(str(message["id"]), owner.id, str(message["source"]),
                                      PipeUpTrack(self, str(message["id"])), codecs,
                                      muted=bool(message.get("muted")), layers=list(message.get("layers") or []))
            self._in_channels[int(message["channel"])] = publication
            self.room.publish(owner, publication)
        elif kind == "untrack":
            for channel, publication in list(self._in_channels.items()):
                if publication.id == message["id"]:
                    del self._in_channels[channel]
                    owner = self._remote_participants.get(publication.participant_id)
                    if owner is not None:
                        self.room.unpublish(owner, publication.id)
        elif kind == "mute":
            for publication in self._in_channels.values():
                owner = self._remote_participants.get(publication.participant_id)
                if publication.id == message["id"] and owner is not None:
                    self.room.set_muted(owner, publication.id, bool(message["muted"]))
        elif kind == "keyframe":
            self._request_local_keyframe(str(message["track_id"]), message.get("ssrc"))

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
