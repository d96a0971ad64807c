"""REST API for rooms (JSON, Bearer API key): create, list, inspect, delete, mint tokens."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

from aiohttp import web

from signaling.appkeys import CONFIG, PIPES, ROOMS, TOKENS
from identity.auth import authenticate, require_admin_key
from common.errors import Forbidden, InvalidField, NotFound
from identity.tokens import Grants
from common.wire import read_json_object

ROOM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
IDENTITY = re.compile(r"^[^\x00-\x1f]{1,128}$")


def valid_room_name(name: object) -> str:
    if not isinstance(name, str) or not ROOM_NAME.match(name):
        raise InvalidField("room name must be 1-64 letters, digits, '-', '_' or '.'", field="name")
    return name


async def create_room(request: web.Request) -> web.Response:
    require_admin_key(request)
    body = await read_json_object(request, allowed={"name", "captions", "max_participants"})
    name = valid_room_name(body.get("name"))
    captions = body.get("captions", request.app[CONFIG].captions_default)
    if not isinstance(captions, bool):
        raise InvalidField("captions must be true or false", field="captions")
    max_participants = body.get("max_participants", 100)
    if not isinstance(max_participants, int) or isinstance(max_participants, bool) or not 1 <= max_participants <= 1000:
        raise InvalidField("max_participants must be an integer 1-1000", field="max_participants")
    room, created = request.app[ROOMS].get_or_create(name, captions=captions, max_participants=max_participants)
    return web.json_response(room.describe(), status=201 if created else 200)


async def list_rooms(request: web.Request) -> web.Response:
    require_admin_key(request)
    return web.json_response({"rooms": [r.describe(brief=True) for r in request.app[ROOMS].all()]})


async def get_room(request: web.Request) -> web.Response:
    name = request.match_info["room"]
    caller = authenticate(request)
    if not (caller.is_admin_key or (caller.token is not None and caller.token.room == name)):
        raise Forbidden("not allowed to see this room")
    room = request.app[ROOMS].get(name)
    if room is None:
        raise NotFound(f"no room named {name!r}")
    return web.json_response(room.describe())


async def delete_room(request: web.Request) -> web.Response:
    name = request.match_info["room"]
    caller = authenticate(request)
    if not caller.may_moderate(name):
        raise Forbidden("ending a room needs an admin API key or a moderator token")
    if not await request.app[ROOMS].end(name, reason="ended by API"):
        raise NotFound(f"no room named {name!r}")
    return web.json_response({"ended": name})


async def create_token(request: web.Request) -> web.Response:
    require_admin_key(request)
    room = valid_room_name(request.match_info["room"])
    body = await read_json_object(request, allowed={"identity", "name", "grants", "ttl"})
    identity = body.get("identity")
    if not isinstance(identity, str) or not IDENTITY.match(identity):
        raise InvalidField("identity must be a 1-128 character string", field="identity")
    name = body.get("name", identity)
    if not isinstance(name, str) or len(name) > 128:
        raise InvalidField("name must be a string of at most 128 characters", field="name")
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
    token = request.app[TOKENS].mint(room, identity, name=name, grants=grants, ttl_seconds=ttl)
    return web.json_response({"token": token, "url": f"{config.url}/r/{room}?token={token}"}, status=201)


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/rooms", create_room)
    app.router.add_get("/v1/rooms", list_rooms)
    app.router.add_get("/v1/rooms/{room}", get_room)
    app.router.add_delete("/v1/rooms/{room}", delete_room)
    app.router.add_post("/v1/rooms/{room}/tokens", create_token)
    setup_guest(app)


async def guest_join(request: web.Request) -> web.Response:
    """`/` asks here for a token: whoever opens a new room becomes its moderator."""
    config = request.app[CONFIG]
    if not config.guest_rooms:
        raise Forbidden("this server admits only invited participants (ask for a link)")
    room_name = valid_room_name(request.match_info["room"])
    body = await read_json_object(request, allowed={"name"})
    display = body.get("name")
    if not isinstance(display, str) or not 1 <= len(display.strip()) <= 64:
        raise InvalidField("name must be 1-64 characters", field="name")
    rooms = request.app[ROOMS]
    existed = rooms.get(room_name) is not None
    rooms.get_or_create(room_name, captions=config.captions_default, max_participants=100)
    identity = f"guest-{secrets.token_hex(4)}"
    grants = Grants(moderator=not existed)
    token = request.app[TOKENS].mint(room_name, identity, name=display.strip(), grants=grants,
                                     ttl_seconds=config.default_token_ttl_seconds)
    return web.json_response({"token": token, "url": f"{config.url}/r/{room_name}?token={token}",
                              "moderator": not existed}, status=201)


async def placement(request: web.Request) -> web.Response:
    """Which worker a participant of this room should connect its signaling socket to."""
    room = valid_room_name(request.match_info["room"])
    config = request.app[CONFIG]
    ws_path = f"/v1/rooms/{room}/ws"
    pipes = request.app.get(PIPES)
    if pipes is None:
        return web.json_response({"worker": None, "ws_url": config.url.replace("http", "ws", 1) + ws_path})
    worker = await asyncio.to_thread(pipes.directory.least_loaded, room, config.per_worker)
    base = worker.http_url if worker is not None else config.url
    return web.json_response({"worker": worker.worker_id if worker else config.worker_id,
                              "ws_url": base.replace("http", "ws", 1) + ws_path})


def setup_guest(app: web.Application) -> None:
    app.router.add_post("/v1/rooms/{room}/join", guest_join)
    app.router.add_get("/v1/rooms/{room}/placement", placement)
