"""Signed-in people join meetings as themselves: `POST /v1/rooms/{room}/join-as-member`.

The meeting page `/r/{room}` opened without a token asks here with the session cookie (and its CSRF header), or
a client with a user token asks with it as bearer. The answer carries a meeting token for the member's own login
and name, in the JSON body only: no link with a token in it is ever made, so none ends up in history or logs.

It is a route of its own rather than a second mode of `POST /v1/rooms/{room}/join`: that one is the anonymous
guest door (a typed name, a per-address limit, rooms open to guests only), this one admits only people who
signed in, under their account, into any live meeting of the organisation, and lets them start one. Who started
a meeting, and the organiser of the scheduled meeting it was started under (identity/schedule.py), moderate it
whenever they join it: both as the ledger recorded them when the meeting started, never from a plan alone (a plan
made for a room while someone else's meeting goes on there grants its organiser nothing).
API keys are refused (they mint invites through `/tokens`); meeting and record tokens are out of scope.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from chat.auth import Principal
from chat.errors import NotPermitted
from chat.model import User
from chat.web import CHAT_API
from common.errors import Forbidden, NotReady, OutOfScope
from identity.apikeys import PREFIX
from identity.appkeys import PERMISSIONS
from identity.auth import credential_of
from identity.permissions import Permission
from identity.signin import SESSION_COOKIE
from identity.tokens import Grants
from signaling.appkeys import CONFIG, GUEST_JOINS, MEETINGS_DESK, SCHEDULE, TOKENS
from identity.orgs import org_name, plain, request_org
from signaling.rest import valid_room_name

log = logging.getLogger("convene.signaling.member_join")

MODERATING_ROLES = ("owner", "admin")
MEMBER_ROLES = ("owner", "admin", "member")


async def signed_in_person(request: web.Request) -> Principal:
    """The session cookie's person (a write: its CSRF header is checked), or a user token's; nothing else."""
    if CHAT_API not in request.app:
        raise NotReady("signing in needs the chat part of the server, which this process does not run")
    auth = request.app[CHAT_API].auth
    if not request.headers.get("Authorization") and request.cookies.get(SESSION_COOKIE):
        return await auth.from_session(request, request.cookies[SESSION_COOKIE])
    value = credential_of(request)
    if value is None:
        return await auth.principal(request)  # says what is missing (401)
    if value.startswith(PREFIX):
        raise Forbidden("joining as a member needs a signed-in person (a session or a user token), not an API key")
    if not request.app[TOKENS].verify(value).is_user_token:  # a record token raises out_of_scope itself
        raise OutOfScope("a meeting token joins only its own meeting, through the signaling socket")
    return await auth.from_credential(value, request_org(request))


async def check_may_start_meeting(request: web.Request, user: User) -> None:
    """The organisation's start_meeting row (identity/permissions.py; PUT /v1/admin/permissions)."""
    await request.app[PERMISSIONS].require(user, Permission.START_MEETING, user.org)


async def join_as_member(request: web.Request) -> web.Response:
    room_name = org_name(request, valid_room_name(request.match_info["room"]))
    person = await signed_in_person(request)
    user = person.user
    if user.role not in MEMBER_ROLES:  # guests come through invite links; bots through API-minted tokens
        raise NotPermitted(f"a {user.role} joins meetings through an invite link", role=user.role)
    request.app[GUEST_JOINS].take(f"member-join:{user.login}")
    config = request.app[CONFIG]
    desk = request.app[MEETINGS_DESK]
    # A scheduled meeting whose window is open: its invitees may start it before the organiser comes (who held
    # start_meeting to plan it), and a meeting started now records the organiser, who moderates it whoever started
    # it. A meeting already going on keeps the moderators the ledger has: the plan adds none.
    plan = await request.app[SCHEDULE].open_in_room(room_name, time.time()) if SCHEDULE in request.app else None
    if await desk.ledger.live(room_name) is None and not (plan is not None and plan.reaches(user.login)):
        await check_may_start_meeting(request, user)
    # A meeting members start is invite-only for anonymous guests: they come with a link a moderator makes.
    meeting, _, started = await desk.open(room_name, guests=False, captions=config.captions_default,
                                          started_by=user.login, organizer=plan.organizer if plan else None)
    # Who started it and the organiser moderate, also when they come back in a new tab (the ledger keeps them).
    moderator = started or user.role in MODERATING_ROLES or meeting.moderated_by(user.login)
    name = user.name or user.login
    token = request.app[TOKENS].mint(room_name, user.login, name=name, grants=Grants(moderator=moderator),
                                     ttl_seconds=config.default_token_ttl_seconds, meeting=meeting.meeting_id)
    if CHAT_API in request.app:  # the meeting is on the member's home page from now on, through its channel
        await request.app[CHAT_API].service.join_meeting(meeting.meeting_id, room_name, user.login)
    log.info("room %s: %s joined as a member%s", room_name, user.login, " (started it)" if started else "")
    return web.json_response({"token": token, "room": plain(room_name), "meeting_id": meeting.meeting_id,
                              "moderator": moderator, "started": started, "identity": user.login, "name": name},
                             status=201)


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/rooms/{room}/join-as-member", join_as_member)
