"""The signaling WebSocket endpoint `/v1/rooms/{room}/ws` (protocol: docs/signaling.md)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from common.config import Config
from common.origins import check_origin, refuse_token_in_url, rehosted
from signaling.appkeys import CONFIG, MEETINGS_DESK, ROOMS, TOKENS
from identity.orgs import DEFAULT_ORG, host_name, org_name, request_org
from signaling.rest import valid_room_name
from sfu.webrtc import CandidatePolicy
from signaling.event_text import EventText
from signaling.session import Session
from signaling.turn import client_ice_servers, server_ice_servers

SESSIONS = web.AppKey("sessions", dict[str, Session])
EVENT_TEXT = web.AppKey("event_text", EventText)
# aiohttp closes the socket (1009) above this; up to it we answer `message_too_large` and keep it.
HARD_FRAME_LIMIT = 2 * 1024 * 1024


async def signaling_socket(request: web.Request) -> web.WebSocketResponse:
    # The room inside the server: `org~room` for an organisation's room (a token of another organisation's room
    # then names another room and is refused at join).
    room_name = org_name(request, valid_room_name(request.match_info["room"]))
    config = request.app[CONFIG]
    # The token comes in the `join` message only: a URL is written to access logs and proxies.
    refuse_token_in_url(request, "send it in the first message: {\"type\": \"join\", \"token\": …}")
    check_origin(request, config, also=organisation_pages(request, config))
    # No per-message deflate (browsers offer it): a room event goes to every socket of the room, and compressing
    # it once per socket made each join's events cost a hundred compressions in a hundred-person meeting.
    ws = web.WebSocketResponse(heartbeat=config.heartbeat_seconds, max_msg_size=HARD_FRAME_LIMIT, compress=False)
    await ws.prepare(request)
    session = Session(ws, room_name, request.app[ROOMS], request.app[TOKENS], request.app[SESSIONS],
                      server_ice_servers(config), request.app[MEETINGS_DESK],
                      join_timeout=config.join_timeout_seconds,
                      candidate_policy=CandidatePolicy(allow_link_local=config.ice_allow_link_local),
                      client_ice_servers=lambda identity: client_ice_servers(config, identity),
                      event_text=request.app[EVENT_TEXT])
    session.attendees_see_records = config.attendees_see_records
    await session.run()
    return ws


def organisation_pages(request: web.Request, config: Config) -> set[str]:
    """Another organisation's pages come from its own Host name, at the scheme and port of the origins this process
    trusts: a media worker's socket (another port) is opened by pages the first worker served at that Host."""
    if request_org(request) == DEFAULT_ORG:
        return set()
    return rehosted((config.url, *config.allowed_origins), host_name(request.host))


async def close_all(app: web.Application) -> None:
    """On shutdown: every signaling socket gets `reconnect` and closes with 1012 (service restart), so
    clients rejoin the same meeting when the server is back (rooms closed at shutdown keep their meeting).
    Runs on `on_shutdown`, before aiohttp cancels the socket handlers; again at cleanup, by then a no-op."""
    sessions = list(app[SESSIONS].values())
    await asyncio.gather(*(s.close_for_restart() for s in sessions), return_exceptions=True)


def setup(app: web.Application) -> None:
    app[SESSIONS] = {}
    app[EVENT_TEXT] = EventText()
    app.on_shutdown.append(close_all)
    app.router.add_get("/v1/rooms/{room}/ws", signaling_socket)
