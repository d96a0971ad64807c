"""One participant's signaling session: the WebSocket, its two peer connections, and its room membership."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import WSMsgType, web

from audit import AuditEvent, note_caller

from sfu.participant import Participant, Permissions, new_id
from sfu.publication import SOURCES, Publication
from sfu.room import Room, RoomFull
from sfu.rooms import RoomRegistry
from sfu.selection import VideoPreferences
from sfu.webrtc import CandidatePolicy, Publisher, RefusedCandidate, SdpError, Subscriber, parse_sdp
from common.errors import (
    BadRequest,
    CandidateRefused,
    ConveneError,
    InvalidField,
    InvalidState,
    MalformedJson,
    MalformedSdp,
    MessageTooLarge,
    MissingGrant,
    NotFound,
    RateLimited,
    UnknownMessageType,
)
from identity.orgs import plain
from identity.tokens import AccessToken, TokenIssuer
from signaling.event_text import EventText, encode
from signaling.meetings import Meetings
from transcribe.settings import ROOM_LANGUAGES

log = logging.getLogger("convene.signaling.session")

MAX_MESSAGE_BYTES = 64 * 1024
# Messages that carry SDP grow with the room (~0.7 KB per m-line; a subscriber of 100 people has 200).
MAX_SDP_MESSAGE_BYTES = 1024 * 1024
SDP_MESSAGES = frozenset({"publish", "unpublish", "offer", "answer"})
OUTBOX_LIMIT = 2000
# Per-socket rate limit: a burst of 200 messages, refilled at 50 per second.
RATE_BURST = 200.0
RATE_PER_SECOND = 50.0
NEGOTIATION_DELAY = 0.05
# `video_paused` goes out at once, then at most this often: in a growing meeting each new camera changes the
# set of every participant (a list of everyone's cameras), ten times a second while people join at 10/s.
VIDEO_PAUSED_INTERVAL = 0.25
LAYERS = ("low", "mid", "high")

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_ROOM_FULL = 4409
CLOSE_REMOVED = 4000
# The same identity joined again (a client reconnecting, or a second tab): this socket's participant is gone.
CLOSE_REPLACED = 4001
# The person's account was deactivated (an admin, `convene users disable`, the directory sync): as chat's 4410.
CLOSE_DEACTIVATED = 4410
# The server is restarting (SIGTERM): the meeting goes on, rejoin with the same token (RFC 6455 1012).
CLOSE_SERVICE_RESTART = 1012
JOIN_CLOSE_CODES = {"room_full": CLOSE_ROOM_FULL, "server_full": CLOSE_ROOM_FULL, "token_revoked": CLOSE_DEACTIVATED}


class NotJoined(ConveneError):
    code, status = "not_joined", 400


class JoinTimeout(ConveneError):
    code, status = "join_timeout", 408


class RoomFullError(ConveneError):
    code, status = "room_full", 409


def _field(msg: dict[str, Any], name: str, kind: type | tuple[type, ...], optional: bool = False) -> Any:
    value = msg.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise InvalidField(f"'{name}' must be a {expected}", field=name)
    return value


class TokenBucket:
    def __init__(self, burst: float, rate: float) -> None:
        self._burst, self._rate = burst, rate
        self._tokens, self._stamp = burst, time.monotonic()

    def take(self) -> float:
        """Returns 0 when allowed, else seconds until the next message would be."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


def apply_subscription_fields(msg: dict[str, Any], prefs: VideoPreferences) -> frozenset[str] | None:
    """Validates the `set_subscriptions` fields present in `msg`, then applies them (all or nothing). Returns the
    track ids whose layer changed (None: every video's may have)."""
    max_video = _field(msg, "max_video", int, optional=True)
    pinned = _field(msg, "pinned", list, optional=True)
    explicit = _field(msg, "video", list, optional=True)
    layers = _field(msg, "layers", dict, optional=True)
    default_layer = _field(msg, "default_layer", str, optional=True)
    for name, value in (("pinned", pinned), ("video", explicit)):
        if value is not None and not all(isinstance(t, str) for t in value):
            raise InvalidField(f"'{name}' must list track ids", field=name)
    if max_video is not None and not 0 <= max_video <= 100:
        raise InvalidField("'max_video' must be 0-100", field="max_video")
    if layers is not None and not all(isinstance(v, str) and v in LAYERS for v in layers.values()):
        raise InvalidField("layers must be low, mid or high", field="layers")
    if default_layer is not None and default_layer not in LAYERS:
        raise InvalidField("'default_layer' must be low, mid or high", field="default_layer")
    if max_video is not None:
        prefs.max_video = max_video
    if pinned is not None:
        prefs.pinned = list(pinned)
    if "video" in msg:
        prefs.explicit = list(explicit) if explicit is not None else None
    return prefs.set_layers(layers, default_layer)


class Session:
    # Whether `room_ended` brings attendees (not only moderators) a record token (Config.attendees_see_records).
    attendees_see_records = False

    def __init__(self, ws: web.WebSocketResponse, room_name: str, rooms: RoomRegistry, tokens: TokenIssuer,
                 sessions: dict[str, "Session"], ice_servers: list[str], meetings: Meetings,
                 join_timeout: float = 10.0, candidate_policy: CandidatePolicy | None = None,
                 client_ice_servers: Callable[[str], list[Any]] | None = None,
                 event_text: EventText | None = None) -> None:
        self.ws = ws
        self.room_name = room_name
        self._rooms = rooms
        self._tokens = tokens
        self._meetings = meetings
        self._join_timeout = join_timeout
        self._sessions = sessions
        self._ice_servers = ice_servers
        # What `joined` hands the client, per identity (TURN credentials name it); else the server's own list.
        self._client_ice_servers = client_ice_servers
        self._candidate_policy = candidate_policy
        self.token: AccessToken | None = None
        self.room: Room | None = None
        self.participant: Participant | None = None
        self.publisher: Publisher | None = None
        self.subscriber: Subscriber | None = None
        self._track_mid: dict[str, str] = {}
        # Room events shared by every socket of the process come encoded (text); the rest are encoded here.
        self._event_text = event_text or EventText()
        self._outbox: asyncio.Queue[dict[str, Any] | str | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._offer_in_flight = False
        self._needs_offer = False
        self._offer_task: asyncio.Task[None] | None = None
        self._table_pending = False
        self._paused_videos: frozenset[str] | None = None  # a `video_paused` set not sent yet
        self._paused_sent_at = -VIDEO_PAUSED_INTERVAL
        self._paused_timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._close_code, self._close_message = 1000, ""
        self._close_task: asyncio.Task[None] | None = None
        self._bucket = TokenBucket(RATE_BURST, RATE_PER_SECOND)
        self._log: logging.LoggerAdapter[logging.Logger] = logging.LoggerAdapter(log, {"room": room_name})
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "publish": self._on_publish,
            "unpublish": self._on_unpublish,
            "offer": self._on_offer,
            "answer": self._on_answer,
            "candidate": self._on_candidate,
            "mute": self._on_mute,
            "mute_participant": self._on_mute_participant,
            "remove_participant": self._on_remove_participant,
            "end_room": self._on_end_room,
            "set_captions": self._on_set_captions,
            "set_language": self._on_set_language,
            "set_subscriptions": self._on_set_subscriptions,
            "leave": self._on_leave,
            "ping": self._on_ping,
            "join": self._on_join_again,
        }

    # -- outbound --------------------------------------------------------------------------------

    def send(self, message: dict[str, Any] | str) -> None:
        """Queues a message (a dict, or its JSON text already encoded)."""
        if self._closing:
            return
        if self._outbox.qsize() >= OUTBOX_LIMIT:
            self._log.warning("client too slow, %d messages queued: dropping it", OUTBOX_LIMIT)
            self.close_soon(1008)
            return
        self._outbox.put_nowait(message)

    async def _write_loop(self) -> None:
        while True:
            message = await self._outbox.get()
            if message is None or self.ws.closed:
                return
            try:
                await self.ws.send_str(message if isinstance(message, str) else encode(message))
            except (ConnectionError, RuntimeError):
                return

    def send_error(self, err: ConveneError, ref: str | None = None) -> None:
        body: dict[str, Any] = {"type": "error", **err.to_wire()}
        if ref:
            body["ref"] = ref
        self.send(body)

    def close_soon(self, code: int = 1000, message: str = "") -> None:
        """Flushes what is queued, then closes the socket with `code` (whoever gets there first)."""
        if self._closing:
            return
        self._closing = True
        self._close_code, self._close_message = code, message
        self._outbox.put_nowait(None)

        async def _close() -> None:
            if self._writer is not None:
                await asyncio.wait([self._writer], timeout=2)
            await self.ws.close(code=code, message=message.encode())

        self._close_task = asyncio.get_running_loop().create_task(_close())

    async def close_for_restart(self) -> None:
        """The server stops but the meeting does not: the client is told to come back, not that it ended."""
        self.send({"type": "reconnect", "reason": "server restart"})
        self.close_soon(CLOSE_SERVICE_RESTART, "server restart")
        if self._close_task is not None:
            await asyncio.wait([self._close_task], timeout=3)

    def replaced(self) -> None:
        """Another socket joined as this identity: this one hears nothing more and closes with 4001.
        The `replaced` message goes first because a browser reports the close code only once TCP is closed,
        which is after our teardown has closed its peer connections; seeing those fail first, it would
        reconnect and take the place back from the new tab."""
        if self.room is not None:
            self.room.remove_listener(self)
        self.send({"type": "replaced"})
        self.close_soon(CLOSE_REPLACED, "replaced")

    def deactivated(self) -> None:
        """The account behind this socket was deactivated: it leaves the meeting and closes with 4410, after an
        `account_disabled` message (as `replaced`: a browser sees the close code only after TCP ends, by when
        its failed peer connections would have made it reconnect)."""
        if self.room is not None:
            self.room.remove_listener(self)
        self.send({"type": "account_disabled"})
        self.close_soon(CLOSE_DEACTIVATED, "deactivated")

    # -- room events -----------------------------------------------------------------------------

    def on_room_event(self, event: dict[str, Any]) -> None:
        me = self.participant.id if self.participant else None
        kind = event.get("type")
        if kind == "video_paused":
            paused = event["paused"].get(me)
            if paused is not None:
                self._video_paused(paused)
            return
        if "to" in event:
            if event["to"] == me:
                self.send({k: v for k, v in event.items() if k != "to"})
            return
        if kind == "participant_joined" and event["participant"]["id"] == me:
            return
        if kind == "room_ended":
            self.send(self._with_record_token(event))
            self.close_soon(1000, "room ended")
            return
        self.send(self._event_text(event))  # the same text for every socket

    def _video_paused(self, track_ids: frozenset[str]) -> None:
        self._paused_videos = track_ids
        if self._paused_timer is not None or self._closing:
            return  # the one pending sends the latest set
        loop = asyncio.get_running_loop()
        wait = self._paused_sent_at + VIDEO_PAUSED_INTERVAL - loop.time()
        if wait <= 0:
            self._send_paused()
        else:
            self._paused_timer = loop.call_later(wait, self._send_paused)

    def _send_paused(self) -> None:
        self._paused_timer = None
        track_ids, self._paused_videos = self._paused_videos, None
        if track_ids is None or self._closing:
            return
        self._paused_sent_at = asyncio.get_running_loop().time()
        self.send({"type": "video_paused", "track_ids": sorted(track_ids)})

    def _with_record_token(self, event: dict[str, Any]) -> dict[str, Any]:
        """`room_ended` to a moderator (to everyone where attendees see records) carries a record token for the
        meeting page, since the meeting token stops working now. In this message only, never in a URL."""
        token, room = self.token, self.room
        if token is None or room is None or not room.meeting_id:
            return event
        if not token.grants.moderator and not self.attendees_see_records:
            return event
        record = self._tokens.mint_record(token.room, room.meeting_id, token.identity, name=token.name,
                                          moderator=token.grants.moderator)
        return {**event, "meeting_id": room.meeting_id, "record_token": record, "record_page": f"/m/{room.meeting_id}"}

    # -- life ------------------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._writer = loop.create_task(self._write_loop())
        # A socket that never joins holds a connection and a task: it gets a few seconds, not forever.
        deadline = loop.call_later(self._join_timeout, self._join_timed_out)
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    await self._dispatch_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self.send_error(BadRequest("binary frames are not part of the protocol"))
                elif msg.type == WSMsgType.ERROR:
                    break
                if self._closing:
                    break
        finally:
            deadline.cancel()
            await self._teardown()

    def _join_timed_out(self) -> None:
        if self.participant is None and not self._closing:
            self.send_error(JoinTimeout(f"send 'join' within {self._join_timeout:g} s of connecting"), "join")
            self.close_soon(CLOSE_UNAUTHORIZED, "join_timeout")

    async def _dispatch_text(self, data: str) -> None:
        if len(data) > MAX_SDP_MESSAGE_BYTES:
            self.send_error(MessageTooLarge(f"messages are limited to {MAX_SDP_MESSAGE_BYTES} bytes"))
            return
        ref: str | None = None
        try:
            wait = self._bucket.take()
            if wait:
                # Rounded up: a wait under half a millisecond must not tell the client "retry after 0".
                raise RateLimited("too many messages", retry_after=math.ceil(wait * 1000) / 1000)
            try:
                msg = json.loads(data)
            except json.JSONDecodeError as exc:
                raise MalformedJson(f"not JSON: {exc.msg}") from exc
            if not isinstance(msg, dict):
                raise MalformedJson("a message must be a JSON object")
            kind = msg.get("type")
            if not isinstance(kind, str):  # else `kind in self._handlers` raises on a list or object
                raise UnknownMessageType(f"'type' must name a message type, not {json.dumps(kind)[:40]}")
            ref = kind
            if len(data) > MAX_MESSAGE_BYTES and kind not in SDP_MESSAGES:
                raise MessageTooLarge(f"{kind!r} messages are limited to {MAX_MESSAGE_BYTES} bytes")
            if self.participant is None:
                if kind != "join":
                    if kind in self._handlers:
                        raise NotJoined("send 'join' with a token first")
                    raise UnknownMessageType(f"unknown message type {kind!r}")
                prefs = VideoPreferences()
                fields = _field(msg, "subscriptions", dict, optional=True)
                if fields is not None:  # applied before the first offer: its slots fit them
                    apply_subscription_fields(fields, prefs)
                await self._join(_field(msg, "token", str), prefs)
                return
            handler = self._handlers.get(kind) if isinstance(kind, str) else None
            if handler is None:
                raise UnknownMessageType(f"unknown message type {kind!r}")
            await handler(msg)
        except SdpError as exc:
            self.send_error(MalformedSdp(str(exc)), ref)
        except ConveneError as err:
            self.send_error(err, ref)
        except Exception:
            # A bug must not cost the participant the meeting: report it, keep the socket.
            self._log.exception("failed to handle %r", ref)
            self.send_error(ConveneError("internal error"), ref)

    async def _join(self, token_text: str, prefs: VideoPreferences | None = None) -> None:
        try:
            token = self._tokens.verify(token_text)
            # The token's meeting, live, and this identity not removed from it; else meeting_ended/removed.
            room = await self._meetings.room_for(token, self.room_name)
            note_caller(token.identity, "meeting_token", token.org)  # who this socket's actions are, in the audit log
            participant = Participant(
                token.identity, token.name,
                Permissions(publish=token.grants.publish, subscribe=token.grants.subscribe,
                            screen_share=token.grants.screen_share, moderator=token.grants.moderator),
            )
            if prefs is not None:
                participant.video_preferences = prefs
            label = f"{self.room_name}/{token.identity}"
            subscriber = Subscriber(self._ice_servers, self._negotiation_needed, label=label,
                                    on_table_changed=self._table_changed, candidate_policy=self._candidate_policy)
            participant.down = subscriber
            self.subscriber = subscriber
            self.publisher = Publisher(self._ice_servers, label=label, candidate_policy=self._candidate_policy)
            self._replace_identity(room, token.identity)
            try:
                room.join(participant)
            except RoomFull as exc:
                raise RoomFullError(str(exc)) from exc
        except ConveneError as err:
            self.send_error(err, "join")
            self.close_soon(JOIN_CLOSE_CODES.get(err.code, CLOSE_FORBIDDEN if err.status == 403 else CLOSE_UNAUTHORIZED),
                            err.code)
            return
        self.token, self.room, self.participant = token, room, participant
        self._sessions[participant.id] = self
        self._log = logging.LoggerAdapter(log, {"room": self.room_name, "participant": participant.id})
        room.add_listener(self)
        self.send({
            "type": "joined",
            "participant": {"id": participant.id, "identity": token.identity, "name": token.name,
                            "grants": token.grants.to_claim()},
            "room": {"name": plain(room.name), "captions": room.captions,
                     "participants": [p.describe() for p in room.visible if p.id != participant.id]},
            "ice_servers": (self._client_ice_servers(token.identity) if self._client_ice_servers is not None
                            else self._ice_servers),
        })

    def _replace_identity(self, room: Room, identity: str) -> None:
        """One participant per identity: a rejoin (a client reconnecting before the server noticed its old
        socket died, or a second tab) takes the place of the one there, which leaves first, so the others see
        `participant_left` (reason `replaced`) then `participant_joined`, never the same person twice.
        Only participants with a socket here: a mirror of another worker's participant belongs to that worker."""
        for other in list(room.visible):
            session = self._sessions.get(other.id)
            if other.identity != identity or session is None or session is self:
                continue
            self._sessions.pop(other.id, None)
            session.replaced()
            room.leave(other.id, reason="replaced")
            self._log.info("identity %s rejoined: replaced participant %s", identity, other.id)

    async def _teardown(self) -> None:
        self._closing = True
        if self._offer_task is not None:
            self._offer_task.cancel()
        if self._paused_timer is not None:
            self._paused_timer.cancel()
        if self.room is not None and self.participant is not None:
            self.room.remove_listener(self)
            self.room.leave(self.participant.id, reason="left")
            self._sessions.pop(self.participant.id, None)
        for pc in (self.publisher, self.subscriber):
            if pc is not None:
                try:
                    await pc.close()
                except Exception:  # one connection failing to close must not leave the other (or the socket) open
                    self._log.exception("closing a peer connection failed")
        self._outbox.put_nowait(None)
        if self._writer is not None:
            await asyncio.wait([self._writer], timeout=2)
        if not self.ws.closed:
            await self.ws.close(code=self._close_code, message=self._close_message.encode())

    # -- subscriber negotiation (we offer) -------------------------------------------------------

    def _negotiation_needed(self) -> None:
        self._needs_offer = True
        if not self._offer_in_flight and (self._offer_task is None or self._offer_task.done()) and not self._closing:
            self._offer_task = asyncio.get_running_loop().create_task(self._send_offer())

    async def _send_offer(self) -> None:
        await asyncio.sleep(NEGOTIATION_DELAY)  # gather changes that come together into one offer
        subscriber = self.subscriber
        if self._closing or self._offer_in_flight or subscriber is None or not self._needs_offer:
            return
        if not subscriber.has_tracks():
            return
        self._needs_offer = False
        self._offer_in_flight = True
        sdp, tracks = await subscriber.create_offer()
        self.send({"type": "offer", "target": "subscriber", "sdp": sdp, "tracks": tracks})

    def _table_changed(self) -> None:
        """A slot took another track or went idle: one `tracks` message for all changes of this turn."""
        if not self._table_pending and not self._closing:
            self._table_pending = True
            asyncio.get_running_loop().call_soon(self._send_table)

    def _send_table(self) -> None:
        self._table_pending = False
        if self.subscriber is not None and not self._closing:
            self.send({"type": "tracks", "tracks": self.subscriber.table()})

    async def _on_answer(self, msg: dict[str, Any]) -> None:
        if _field(msg, "target", str) != "subscriber":
            raise InvalidField("answers are for target 'subscriber'", field="target")
        sdp = _field(msg, "sdp", str)
        if not self._offer_in_flight or self.subscriber is None:
            raise InvalidState("no subscriber offer is waiting for an answer")
        await self.subscriber.apply_answer(sdp)
        self._offer_in_flight = False
        if self._needs_offer:
            self._negotiation_needed()

    # -- publishing (the client offers) ----------------------------------------------------------

    def _require(self, grant: str) -> None:
        assert self.participant is not None
        if not getattr(self.participant.permissions, grant):
            raise MissingGrant(f"your token lacks the '{grant}' grant", grant=grant)

    async def _on_publish(self, msg: dict[str, Any]) -> None:
        assert self.participant is not None and self.publisher is not None and self.room is not None
        self._require("publish")
        sdp = _field(msg, "sdp", str)
        tracks = _field(msg, "tracks", list)
        if not tracks:
            raise InvalidField("'tracks' must list at least one track", field="tracks")
        lines = {line.mid: line for line in parse_sdp(sdp)}
        wanted: list[tuple[str, str, bool]] = []
        for entry in tracks:
            if not isinstance(entry, dict):
                raise InvalidField("each track is an object {mid, source}", field="tracks")
            mid, source = _field(entry, "mid", str), _field(entry, "source", str)
            muted = bool(entry.get("muted", False))
            if source not in SOURCES:
                raise InvalidField(f"source must be one of {', '.join(SOURCES)}", field="source")
            if source.startswith("screen"):
                self._require("screen_share")
            line = lines.get(mid)
            if line is None or line.kind != SOURCES[source]:
                raise MalformedSdp(f"the offer has no {SOURCES[source]} m-line with mid {mid!r}")
            if line.direction not in ("sendonly", "sendrecv"):
                raise MalformedSdp(f"m-line {mid!r} does not send")
            if mid in self.publisher.bound_mids():
                raise InvalidField(f"mid {mid!r} is already published", field="mid")
            wanted.append((mid, source, muted))
        answer = await self.publisher.answer(sdp)
        self.send({"type": "answer", "target": "publisher", "sdp": answer})
        published = []
        for mid, source, muted in wanted:
            incoming = self.publisher.incoming(mid)
            if incoming is None or not incoming.codecs:
                self.send_error(MalformedSdp(f"no common codec for mid {mid!r}"), "publish")
                continue
            publication = Publication(new_id("TR"), self.participant.id, source, self.publisher.up_track(mid),
                                      incoming.codecs, pli_throttle=self._rooms.pli_throttle, muted=muted,
                                      layers=self.publisher.layers_by_mid.get(mid))
            self.publisher.bind(mid, publication)
            self._track_mid[publication.id] = mid
            published.append({"mid": mid, "track": publication.describe()})
            self.room.publish(self.participant, publication)
        self.send({"type": "published", "tracks": published})

    async def _on_unpublish(self, msg: dict[str, Any]) -> None:
        assert self.participant is not None and self.publisher is not None and self.room is not None
        track_id = _field(msg, "track_id", str)
        sdp = _field(msg, "sdp", str, optional=True)
        if track_id not in self.participant.publications:
            raise NotFound(f"you publish no track {track_id!r}")
        if sdp is not None:
            parse_sdp(sdp)
        mid = self._track_mid.pop(track_id, None)
        if mid is not None:
            self.publisher.unbind(mid)
        self.room.unpublish(self.participant, track_id)
        if sdp is not None:
            answer = await self.publisher.answer(sdp)
            self.send({"type": "answer", "target": "publisher", "sdp": answer})

    async def _on_offer(self, msg: dict[str, Any]) -> None:
        assert self.publisher is not None
        if _field(msg, "target", str) != "publisher":
            raise InvalidField("offers are for target 'publisher'", field="target")
        answer = await self.publisher.answer(_field(msg, "sdp", str))
        self.send({"type": "answer", "target": "publisher", "sdp": answer})

    async def _on_candidate(self, msg: dict[str, Any]) -> None:
        target = _field(msg, "target", str)
        candidate = msg.get("candidate")
        if candidate is not None and not isinstance(candidate, dict):
            raise InvalidField("'candidate' must be an object or null", field="candidate")
        connection = {"publisher": self.publisher, "subscriber": self.subscriber}.get(target)
        if connection is None:
            raise InvalidField("target must be 'publisher' or 'subscriber'", field="target")
        try:
            await connection.add_candidate(candidate)
        except RefusedCandidate as exc:
            # The connection goes on with the candidates it has; the client learns which one and why.
            raise CandidateRefused(str(exc), target=target, reason=exc.reason, address=exc.address) from None

    # -- control ---------------------------------------------------------------------------------

    async def _on_mute(self, msg: dict[str, Any]) -> None:
        assert self.participant is not None and self.room is not None
        track_id = _field(msg, "track_id", str)
        muted = _field(msg, "muted", bool)
        if not self.room.set_muted(self.participant, track_id, muted):
            raise NotFound(f"you publish no track {track_id!r}")

    def _moderated_target(self, msg: dict[str, Any]) -> Participant:
        assert self.room is not None
        self._require("moderator")
        target = self.room.participants.get(_field(msg, "participant_id", str))
        if target is None or target.hidden:
            raise NotFound("no such participant in this room")
        return target

    async def _on_mute_participant(self, msg: dict[str, Any]) -> None:
        assert self.participant is not None and self.room is not None
        target = self._moderated_target(msg)
        track_id = _field(msg, "track_id", str, optional=True)
        if track_id is not None:
            if not self.room.set_muted(target, track_id, True, by=self.participant.id):
                raise NotFound(f"{target.name} publishes no track {track_id!r}")
        else:
            for publication in list(target.publications.values()):
                if publication.kind == "audio":
                    self.room.set_muted(target, publication.id, True, by=self.participant.id)
        await self._moderated("meeting.mute", target, {"muted": True, "track": track_id or "audio"})

    async def _on_remove_participant(self, msg: dict[str, Any]) -> None:
        target = self._moderated_target(msg)
        if self.room is not None and self.room.meeting_id:
            # Before the socket closes: the tokens this identity holds no longer bring it back in.
            await self._meetings.ledger.remove(self.room.meeting_id, target.identity)
        session = self._sessions.get(target.id)
        if session is not None:
            session.send({"type": "removed", "reason": "removed by a moderator"})
            session.close_soon(CLOSE_REMOVED, "removed")
        if self.room is not None:
            self.room.leave(target.id, reason="removed")
        await self._moderated("meeting.remove", target, {"removed": True})

    async def _audit(self, event: AuditEvent) -> None:
        """Moderator actions go to the audit log (the ledger's recorder: same store), the moderator as actor."""
        actor = self.token.identity if self.token is not None else None
        await self._meetings.ledger.audit.record(replace(event, actor=actor))

    async def _moderated(self, name: str, target: Participant, after: dict[str, Any]) -> None:
        assert self.room is not None
        await self._audit(AuditEvent(name, "participant", target.identity, after={
            **after, "meeting": self.room.meeting_id or "", "room": self.room_name}))

    async def _on_end_room(self, msg: dict[str, Any]) -> None:
        self._require("moderator")
        await self._meetings.end(self.room_name, reason="ended by a moderator")

    async def _on_set_captions(self, msg: dict[str, Any]) -> None:
        assert self.room is not None
        self._require("moderator")
        enabled = _field(msg, "enabled", bool)
        before = self.room.captions
        self.room.set_captions(enabled)
        await self._audit(AuditEvent("captions.on" if enabled else "captions.off", "meeting",
                                     self.room.meeting_id or self.room_name, before={"captions": before},
                                     after={"captions": enabled}))

    async def _on_set_language(self, msg: dict[str, Any]) -> None:
        """The room's spoken language for captions (en, zh, auto); everyone, the transcriber included, is told."""
        assert self.room is not None and self.participant is not None
        self._require("moderator")
        language = _field(msg, "language", str)
        if language not in ROOM_LANGUAGES:
            raise InvalidField(f"'language' must be one of {', '.join(ROOM_LANGUAGES)}", field="language")
        self.room.emit({"type": "language", "language": language, "by": self.participant.id})

    async def _on_set_subscriptions(self, msg: dict[str, Any]) -> None:
        """Which videos to receive: at most `max_video` (last-N), `pinned` first, or exactly `video`."""
        assert self.participant is not None and self.room is not None
        changed = apply_subscription_fields(msg, self.participant.video_preferences)
        self.room.reselect([self.participant])
        self.room.apply_layers(self.participant, changed)

    async def _on_leave(self, msg: dict[str, Any]) -> None:
        self.close_soon(1000, "left")

    async def _on_ping(self, msg: dict[str, Any]) -> None:
        self.send({"type": "pong", "id": msg.get("id")})

    async def _on_join_again(self, msg: dict[str, Any]) -> None:
        raise InvalidState("already joined")
