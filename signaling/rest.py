"""REST API for rooms (JSON, Bearer API key): create, list, inspect, delete, mint tokens; guest joins.

Rooms made here are invite-only unless created with `"guests": true`; every token names the room's live meeting.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from common.errors import Forbidden, InvalidField, InviteOnly, NotFound
from common.names import display_name
from common.ratelimit import RateLimiter
from common.wire import read_json_object
from identity.auth import authenticate, require_admin_key
from identity.orgs import DEFAULT_ORG, host_name, org_base_url, org_name, org_of, plain, request_org
from identity.tokens import Grants
from identity.permissions import Permission
from signaling.room_access import (admin_key_or_person, check_person_invite, guest_identity, opener_token,
                                   require_also)
from signaling.appkeys import API_KEYS, CONFIG, GUEST_JOINS, MEETINGS, MEETINGS_DESK, PIPES, ROOMS, TOKENS
from sfu.workers import least_loaded
from transcribe.settings import ROOM_LANGUAGES, room_language
from transcribe.web import TRANSCRIBE

ROOM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
IDENTITY = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")


def valid_room_name(name: object, field: str = "name") -> str:
    """`field`: the body field the name came in (rooms: `name`, scheduled meetings: `room`)."""
    if not isinstance(name, str) or not ROOM_NAME.match(name):
        raise InvalidField(f"{field} must be a room name of 1-64 letters, digits, '-', '_' or '.'", field=field)
    return name


def public(described: dict[str, Any]) -> dict[str, Any]:
    """A room as clients see it: its plain name, without the organisation the server keeps it under."""
    return {**described, "name": plain(described["name"])}


def base_url(request: web.Request) -> str:
    """Links for the request's organisation: the configured public URL, or the organisation's own Host."""
    return org_base_url(request, request.app[CONFIG].url)


async def create_room(request: web.Request) -> web.Response:
    """An admin key, or a signed-in person holding start_meeting (and invite_guests for `"guests": true`), who
    gets a moderator token for it in the answer."""
    person = await admin_key_or_person(request, Permission.START_MEETING)
    body = await read_json_object(request, allowed={"name", "captions", "max_participants", "guests", "language"})
    name = org_name(request, valid_room_name(body.get("name")))
    guests = body.get("guests", False)
    if not isinstance(guests, bool):
        raise InvalidField("guests must be true or false", field="guests")
    if guests:
        await require_also(request, person, Permission.INVITE_GUESTS)
    captions = body.get("captions", request.app[CONFIG].captions_default)
    if not isinstance(captions, bool):
        raise InvalidField("captions must be true or false", field="captions")
    max_participants = body.get("max_participants", 100)
    if not isinstance(max_participants, int) or isinstance(max_participants, bool) or not 1 <= max_participants <= 1000:
        raise InvalidField("max_participants must be an integer 1-1000", field="max_participants")
    language = body.get("language")
    if language is not None and language not in ROOM_LANGUAGES:
        raise InvalidField(f"language must be one of {', '.join(ROOM_LANGUAGES)}", field="language")
    meeting, room, created = await request.app[MEETINGS_DESK].open(
        name, guests, captions=captions, max_participants=max_participants,
        started_by=person.user.login if person is not None else None)
    if language is not None:
        room.emit({"type": "language", "language": language})  # the room's transcriber (and anyone in it)
    live = request.app[TRANSCRIBE].live(name) if TRANSCRIBE in request.app else None
    spoken = live.language if live is not None else language or room_language(request.app[CONFIG].asr_language)
    out = {**public(room.describe()), "guests": meeting.guests, "language": spoken}
    if person is not None and created:  # only who started it: a live meeting's moderation is not for the asking
        out.update(opener_token(request, person, name, meeting.meeting_id))
    return web.json_response(out, status=201 if created else 200)


async def list_rooms(request: web.Request) -> web.Response:
    await require_admin_key(request)
    org = request_org(request)
    return web.json_response({"rooms": [public(r.describe(brief=True)) for r in request.app[ROOMS].all()
                                        if org_of(r.name) == org]})


async def get_room(request: web.Request) -> web.Response:
    name = org_name(request, request.match_info["room"])
    caller = await authenticate(request)
    if not (caller.is_admin_key or caller.in_room(name)):
        raise Forbidden("not allowed to see this room")
    room = request.app[ROOMS].get(name)
    if room is None or (caller.meeting is not None and room.meeting_id != caller.meeting.meeting_id):
        raise NotFound(f"no room named {plain(name)!r}")
    return web.json_response(public(room.describe()))


async def delete_room(request: web.Request) -> web.Response:
    name = org_name(request, request.match_info["room"])
    caller = await authenticate(request)
    if not caller.may_moderate(name):
        raise Forbidden("ending a room needs an admin API key or a moderator token")
    if not await request.app[MEETINGS_DESK].end(name, reason="ended by API"):
        raise NotFound(f"no room named {plain(name)!r}")
    return web.json_response({"ended": plain(name)})


async def create_token(request: web.Request) -> web.Response:
    """An invite: an admin key's for anyone, or a signed-in person's (invite_guests) for a guest."""
    person = await admin_key_or_person(request, Permission.INVITE_GUESTS)
    room = org_name(request, valid_room_name(request.match_info["room"]))
    body = await read_json_object(request, allowed={"identity", "name", "grants", "ttl"})
    identity = body.get("identity")
    if not isinstance(identity, str) or not IDENTITY.match(identity):
        raise InvalidField("identity must be a 1-128 character string", field="identity")
    name = display_name(body.get("name", identity), "name", max_len=128)
    grants_in: Any = body.get("grants", {})
    if not isinstance(grants_in, dict) or not set(grants_in) <= {"publish", "subscribe", "screen_share", "moderator"}:
        raise InvalidField("grants may hold publish, subscribe, screen_share, moderator", field="grants")
    if not all(isinstance(v, bool) for v in grants_in.values()):
        raise InvalidField("grant values must be booleans", field="grants")
    config = request.app[CONFIG]
    ttl = body.get("ttl", config.default_token_ttl_seconds)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 10 <= ttl <= 30 * 86400:
        raise InvalidField("ttl must be 10 s to 30 days", field="ttl")
    grants = Grants(**{**Grants().to_claim(), **grants_in})
    if person is not None:
        # A person invites a guest, never a login: the guest's identity is made here (the text asked for is only
        # the name shown), so an invite cannot become `ceo`'s meeting token or squat a login chat would keep.
        await check_person_invite(request, person, grants.moderator, room)
        identity = guest_identity()
    # An invite for a room with no meeting starts one (invite-only, as rooms made through the API are). Its room
    # object comes with the first join, so an invite made a day ahead is not ended by the empty-room timeout.
    meeting, _ = await request.app[MEETINGS].live_or_start(room, guests=False)
    token = request.app[TOKENS].mint(room, identity, name=name, grants=grants, ttl_seconds=ttl,
                                     meeting=meeting.meeting_id)
    return web.json_response({"token": token, "url": f"{base_url(request)}/r/{plain(room)}#token={token}",
                              "meeting_id": meeting.meeting_id, "identity": identity}, status=201)


KEY_ID = re.compile(r"^[0-9a-f]{1,32}$")


async def revoke_key(request: web.Request) -> web.Response:
    """Revokes an API key (an admin key; also the caller's own): every process refuses it within a second."""
    await require_admin_key(request)
    key_id = request.match_info["key_id"]
    if not KEY_ID.match(key_id):
        raise InvalidField("key id must be the hex id `convene keys list` shows", field="key_id")
    key = await request.app[API_KEYS].revoke(key_id, org=request_org(request))  # the organisation's own keys
    return web.json_response(key.to_wire())


def setup(app: web.Application) -> None:
    app.router.add_delete("/v1/keys/{key_id}", revoke_key)
    app.router.add_post("/v1/rooms", create_room)
    app.router.add_get("/v1/rooms", list_rooms)
    app.router.add_get("/v1/rooms/{room}", get_room)
    app.router.add_delete("/v1/rooms/{room}", delete_room)
    app.router.add_post("/v1/rooms/{room}/tokens", create_token)
    app[GUEST_JOINS] = RateLimiter(app[CONFIG].guest_joins_per_minute / 60.0, app[CONFIG].guest_joins_per_minute)
    setup_guest(app)


async def guest_join(request: web.Request) -> web.Response:
    """`/` asks here for a token. A room with no meeting starts one, whose opener is its moderator; a live
    meeting admits guests only when it was opened this way or created with `"guests": true`."""
    config = request.app[CONFIG]
    room_name = org_name(request, valid_room_name(request.match_info["room"]))
    body = await read_json_object(request, allowed={"name"})
    display = display_name(body.get("name"), "name", max_len=64)
    # Per client address: anonymous joins create rooms, channels and users, so they are not free.
    request.app[GUEST_JOINS].take(f"join:{request.remote}")
    desk = request.app[MEETINGS_DESK]
    live = await desk.ledger.live(room_name)
    if live is not None and not live.guests:
        raise InviteOnly("this meeting admits only invited participants (ask for a link)")
    if live is None and not config.guest_rooms:
        raise InviteOnly("this server admits only invited participants (ask for a link)")
    meeting, _, started = await desk.open(room_name, guests=True, captions=config.captions_default)
    identity = f"guest-{secrets.token_hex(6)}"
    token = request.app[TOKENS].mint(room_name, identity, name=display, grants=Grants(moderator=started),
                                     ttl_seconds=config.default_token_ttl_seconds, meeting=meeting.meeting_id)
    return web.json_response({"token": token, "url": f"{base_url(request)}/r/{plain(room_name)}#token={token}",
                              "moderator": started, "meeting_id": meeting.meeting_id}, status=201)


async def placement(request: web.Request) -> web.Response:
    """Which worker a participant of this room should connect its signaling socket to (asked with the
    participant's meeting token: where a room lives is not for anyone to probe)."""
    room = org_name(request, valid_room_name(request.match_info["room"]))
    caller = await authenticate(request)
    if not (caller.is_admin_key or caller.in_room(room)):
        raise Forbidden("placement needs a token for this room")
    config = request.app[CONFIG]
    ws_path = f"/v1/rooms/{plain(room)}/ws"
    pipes = request.app.get(PIPES)
    if pipes is None:
        return web.json_response({"worker": None, "ws_url": base_url(request).replace("http", "ws", 1) + ws_path})
    worker = await least_loaded(pipes.directory, room, config.per_worker, here=pipes.info())
    elsewhere = worker is not None and worker.worker_id != config.worker_id
    base = worker_base_url(request, worker.http_url) if worker is not None and elsewhere else base_url(request)
    return web.json_response({"worker": worker.worker_id if worker else config.worker_id,
                              "ws_url": base.replace("http", "ws", 1) + ws_path})


def worker_base_url(request: web.Request, announced: str) -> str:
    """Another worker's URL for this request's participant. The default organisation's: the URL the worker
    announced. Another organisation's: its own Host name (a worker, like this process, tells organisations apart
    by Host; the announced URL's host is the default organisation's) at the worker's port, in the scheme the
    request came with (the same as the workers' without a proxy; a TLS proxy's, which then serves that port too)."""
    if request_org(request) == DEFAULT_ORG:
        return announced
    port = urlsplit(announced).port
    return f"{request.scheme}://{host_name(request.host)}" + (f":{port}" if port is not None else "")


def setup_guest(app: web.Application) -> None:
    app.router.add_post("/v1/rooms/{room}/join", guest_join)
    app.router.add_get("/v1/rooms/{room}/placement", placement)
