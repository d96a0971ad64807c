"""The authorization matrix: every route of a real server × every kind of credential → the status it must get.

The table below is the policy (issue #8). The test walks `app.router.routes()` of a running server, so a route
added without a row fails here, and a row whose route is gone fails too. Path parameters are filled with real
objects made in setup: a live room and its meeting, a team channel the member key is in, messages, a task and
files in it and in the meeting's channel.

Policy, in short: the admin API key reaches admin things; member and bot keys reach chat as users of their role;
a meeting token reaches only its meeting (its room's REST, its chat channel, its messages and files; transcript
and notes only with the moderator grant); a token of an ended meeting or of a removed participant gets 403
(`meeting_ended` / `removed`) everywhere; a chat user token is a chat user and reaches no room; a record token
(the moderator's, of the room's meeting) reaches that meeting's record (`/v1/meetings/{id}…`) and nothing else
(`out_of_scope`); without a credential everything but the public pages answers 401.

The sockets get their own matrices below: each signaling message type (taken from a live `Session._handlers`)
× (not joined, participant, moderator), and each chat socket frame type (read from `ChatApi._on_ws_text`).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from chat.web import ChatApi
from identity.apikeys import ApiKeyStore
from signaling.appkeys import API_KEYS
from signaling.client import SignalingClient
from signaling.ws import SESSIONS
from tests.conftest import RunningServer, running_server, server_config

CREDENTIALS = ("admin", "member", "bot", "moderator", "guest", "ended", "removed", "user", "record", "none")
ROOM = "matrix"
TEAM = "matrix-team"
CAROL = "carol"

Expect = dict[str, str]  # credential -> "STATUS[|STATUS…] [code]", e.g. "403 meeting_ended", "200|201"


def expect(default: str | None = None, **cells: str) -> Expect:
    """A row: every credential gets `default` unless named; ended/removed/none get their refusals unless named."""
    row = {c: default for c in CREDENTIALS if default is not None}
    row.update({"ended": "403 meeting_ended", "removed": "403 removed", "none": "401 unauthorized",
                "record": "403 out_of_scope"})
    row.update(cells)
    missing = [c for c in CREDENTIALS if c not in row]
    assert not missing, f"row leaves out {missing}"
    return row


PUBLIC = {c: "200" for c in CREDENTIALS}
# Room REST (identity.auth): a key that is not admin is refused, a chat user token is out of scope.
ROOM_ADMIN = expect(admin="200", member="403 forbidden", bot="403 forbidden", moderator="403 forbidden",
                    guest="403 forbidden", user="403 out_of_scope")
ROOM_MEMBERS = {**ROOM_ADMIN, "moderator": "200", "guest": "200"}
# Chat endpoints a meeting token does not reach (not `meeting=True` in chat/web.py).
CHAT_UNSCOPED = expect("200", moderator="403 out_of_scope", guest="403 out_of_scope")
# The team channel's things: its members (admin, member and bot keys, carol) reach them; meeting tokens don't.
TEAM_THING = expect("200", moderator="403 out_of_scope", guest="403 out_of_scope")
# The meeting channel's things: its participants reach them; keys and users who are not in it (the admin key's
# user neither: reading a channel takes membership, for admins too) don't. What names a thing inside the
# channel (a message, a file, the channel by its room name) answers 404 to outsiders, as if it did not exist.
MEETING_THING = expect("200", **{c: "403 not_a_member" for c in ("admin", "member", "bot", "user")})
TEAM_ITEM = {**TEAM_THING, "moderator": "404", "guest": "404"}
MEETING_ITEM = expect("200", **{c: "404" for c in ("admin", "member", "bot", "user")})
# A group channel only carol is in (with its creator, the admin key's user): others reach nothing in it.
OTHERS_GROUP = expect("403 not_a_member", admin="200", user="200", moderator="403 out_of_scope",
                      guest="403 out_of_scope")

# A meeting's record: an admin key, its moderators (live meeting token or record token); attendees only where the
# organisation allows (not here); member and bot keys are not admins; another meeting's credentials are out of scope.
RECORD_OWN = expect("200", member="403 forbidden", bot="403 forbidden", guest="403 forbidden",
                    user="403 out_of_scope", record="200")
RECORD_OTHER = {**RECORD_OWN, "moderator": "403 out_of_scope", "guest": "403 out_of_scope",
                "record": "403 out_of_scope"}


@dataclass
class Row:
    expect: Expect
    body: Any = None  # JSON body; the string "multipart" uploads a file
    fill: dict[str, str] = field(default_factory=dict)  # path parameter -> a World attribute
    query: str = ""
    # Made again before each credential's call (destructive rows): returns path fills and credential overrides.
    fresh: Callable[["World", str], Awaitable[tuple[dict[str, str], dict[str, str]]]] | None = None
    websocket: bool = False  # a socket: a plain GET is refused; the socket matrices below cover it


async def fresh_doomed_user(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    """A member to deactivate, made again for each credential (deactivating carol would end the matrix's user)."""
    world.counter += 1
    login = f"doomed{world.counter}"
    await world.call_ok("POST", "/v1/users", world.creds["admin"], {"login": login, "role": "member"})
    return {"login": login}, {}


async def fresh_room(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    world.counter += 1
    room = f"doomed-{world.counter}"
    opener = await world.guest_join(room, "Opener")
    other = await world.guest_join(room, "Other")
    assert opener["moderator"] and not other["moderator"]
    return {"room": room}, {"moderator": opener["token"], "guest": other["token"]}


async def fresh_other_room(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    """A live room whose meeting the moderator and guest tokens are not of."""
    world.counter += 1
    room = f"elsewhere-{world.counter}"
    await world.guest_join(room, "Stranger")
    return {"room": room}, {}


async def fresh_team_message(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    msg = await world.call_ok("POST", "/v1/messages", world.creds["member"], {"to": world.team, "content": "x"})
    return {"id": msg["id"]}, {}


async def fresh_meeting_message(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    msg = await world.call_ok("POST", "/v1/messages", world.creds["guest"], {"to": ROOM, "content": "x"})
    return {"id": msg["id"]}, {}


async def fresh_key(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    """A key made for this call alone (revoking it is destructive)."""
    key, _ = await world.server.app[API_KEYS].create(f"doomed-key-{cred}", "bot")
    return {"key_id": key.key_id}, {}


async def fresh_scheduled_post(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    """A post the member key scheduled in the team channel, far ahead (cancelling it is destructive)."""
    post = await world.call_ok("POST", "/v1/scheduled_posts", world.creds["member"],
                               {"channel": world.team, "text": "later", "at": "2999-01-01T00:00:00Z"})
    return {"id": post["id"]}, {}


async def fresh_channel(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    """A team channel the admin key's user made, for this call alone (archiving is destructive)."""
    world.counter += 1
    made = await world.call_ok("POST", "/v1/channels", world.creds["admin"],
                               {"name": f"archivable-{world.counter}", "kind": "team"})
    return {"id": made["id"]}, {}


async def fresh_archived_channel(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    fill, _ = await fresh_channel(world, cred)
    await world.call_ok("POST", f"/v1/channels/{fill['id']}/archive", world.creds["admin"])
    return fill, {}


async def fresh_legal_hold(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    """A legal hold on carol, placed by the admin key for this call alone (lifting it is destructive)."""
    hold = await world.call_ok("POST", "/v1/admin/legal_holds", world.creds["admin"],
                               {"name": f"matrix {cred}", "users": [CAROL]})
    return {"id": hold["id"]}, {}


async def fresh_scheduled_meeting(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    """A meeting carol (the user token) scheduled a month ahead, for this call alone (cancelling is destructive)."""
    plan = await world.call_ok("POST", "/v1/meetings/scheduled", world.creds["user"], SCHEDULED_BODY)
    return {"id": plan["id"]}, {}


# Scheduled meetings (signaling/scheduled_api.py): chat users (keys as their own user, carol's user token, sessions);
# scheduling takes start_meeting (not bots); a plan carol made is hers to read and change (and the admin key's user's,
# an admin), others get 404 as if it did not exist; meeting tokens are out of scope.
SCHEDULED_BODY = {"title": "matrix", "duration_minutes": 30, "starts_at": datetime.fromtimestamp(
    time.time() + 30 * 86400, timezone.utc).replace(microsecond=0).isoformat()}
PLAN_OWN = {**CHAT_UNSCOPED, "member": "404 scheduled_meeting_not_found", "bot": "404 scheduled_meeting_not_found"}


# Retention and legal holds: edit_org (owners and admins); archive and unarchive: the channel's creator (here the
# admin key's user) or manage_any_channel. Meeting tokens are out of scope.
EDIT_ORG = {**CHAT_UNSCOPED, "member": "403 not_permitted", "bot": "403 not_permitted", "user": "403 not_permitted"}

# Scheduled posts (integrations/scheduled_web.py): chat users schedule into channels they are in; the author and
# admins reach a post, others get 404 as if it did not exist; meeting tokens are out of scope.
SCHEDULED_OWN = {**CHAT_UNSCOPED, "bot": "404 scheduled_post_not_found", "user": "404 scheduled_post_not_found"}

def fresh_hook(kind: str) -> Callable[["World", str], Awaitable[tuple[dict[str, str], dict[str, str]]]]:
    """A hook of `kind` in the team channel, made by the admin key for this call alone (its id, and an incoming
    hook's URL secret)."""
    async def make(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
        world.counter += 1
        body = {"channel": world.team, "name": f"matrix {kind} {world.counter}"}
        if kind == "outgoing":
            body["url"] = "https://hooks.example/matrix"
        made = await world.call_ok("POST", f"/v1/hooks/{kind}", world.creds["admin"], body)
        return {"id": made["id"], "secret": made["url"].rsplit("/", 1)[1]}, {}
    return make


# Webhooks: managing them takes manage_integrations (owners and admins by default); meeting tokens are out of scope.
MANAGE_HOOKS = {**CHAT_UNSCOPED, "member": "403 not_permitted", "bot": "403 not_permitted", "user": "403 not_permitted"}
MAKE_HOOK = {**MANAGE_HOOKS, "admin": "201"}


async def fresh_command(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    """A slash command made by the admin key for this call alone (deleting it is destructive)."""
    world.counter += 1
    made = await world.call_ok("POST", "/v1/commands", world.creds["admin"],
                               {"trigger": f"doomed{world.counter}", "url": "https://hooks.example/command"})
    return {"id": made["id"]}, {}


async def no_response_url(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    return {"id": "inv_0000000000000000", "secret": "not-the-secret"}, {}


async def team_message_button(world: "World", cred: str) -> tuple[dict[str, str], dict[str, str]]:
    return {"id": world.team_message, "action_id": "approve"}, {}


# Interactive messages: only bots made with POST /v1/bots (an owner, a signing secret) post buttons; the matrix's
# keys are not such bots. A click needs membership of the message's channel (the team message has no buttons).
BUTTON_POST = {**CHAT_UNSCOPED, **{c: "403 not_permitted" for c in ("admin", "member", "bot", "user")}}
CLICK = expect("404 action_not_found", moderator="404 message_not_found", guest="404 message_not_found")

TABLE: dict[tuple[str, str], list[Row]] = {
    # Pages and static files: public.
    ("GET", "/"): [Row(PUBLIC)],
    ("GET", "/r/{room}"): [Row(PUBLIC)],
    ("GET", "/m/{meeting_id}"): [Row(PUBLIC)],
    ("GET", "/chat"): [Row(PUBLIC)],
    ("GET", "/signin"): [Row(PUBLIC)],
    ("GET", "/admin"): [Row(PUBLIC)],  # the page; its data APIs check the caller
    ("GET", "/admin/stats"): [Row(PUBLIC)],  # the analytics page; GET /v1/admin/stats checks the caller
    # Whether this browser is signed in: only the session cookie counts, bearer credentials change nothing.
    ("GET", "/v1/auth/session"): [Row(PUBLIC)],
    ("GET", "/v1/auth/methods"): [Row(PUBLIC)],
    # Single sign-on is not configured here (tests/identity/test_oidc.py runs it against a real provider).
    ("GET", "/v1/auth/oidc/start"): [Row({c: "404 oidc_not_configured" for c in CREDENTIALS})],
    ("GET", "/v1/auth/oidc/callback"): [Row({c: "404 oidc_not_configured" for c in CREDENTIALS})],
    ("GET", "/static"): [Row(PUBLIC)],
    ("GET", "/v1/openapi.json"): [Row(PUBLIC)],
    # Health probes for load balancers and supervisors: public, they tell nothing but whether the server works.
    ("GET", "/healthz"): [Row(PUBLIC)],
    ("GET", "/readyz"): [Row(PUBLIC)],
    # Rooms.
    ("DELETE", "/v1/keys/{key_id}"): [Row(ROOM_ADMIN, fresh=fresh_key)],
    # Signed-in people (the user token: carol, a member) start meetings and invite guests where their role holds
    # start_meeting / invite_guests (identity/permissions.py); other keys and meeting tokens are refused as before.
    ("POST", "/v1/rooms"): [Row({**ROOM_ADMIN, "admin": "200|201", "user": "200|201"}, body={"name": "made-by-api"})],
    ("GET", "/v1/rooms"): [Row(ROOM_ADMIN)],
    ("GET", "/v1/rooms/{room}"): [Row(ROOM_MEMBERS), Row(ROOM_ADMIN, fill={"room": "other_room"})],
    ("DELETE", "/v1/rooms/{room}"): [Row({**ROOM_ADMIN, "moderator": "200"}, fresh=fresh_room),
                                     Row(ROOM_ADMIN, fresh=fresh_other_room)],
    ("POST", "/v1/rooms/{room}/tokens"): [Row({**ROOM_ADMIN, "admin": "201", "user": "201"},
                                              body={"identity": "dave"})],
    # Anyone may ask to join a room open to guests: the credential plays no part.
    ("POST", "/v1/rooms/{room}/join"): [Row({c: "201" for c in CREDENTIALS}, body={"name": "Walk In"})],
    # Signed-in people only (a session, or a user token): keys mint invites instead, meeting and record tokens are
    # out of scope. A fresh room: joining puts carol in its meeting's channel, which other rows keep her out of.
    ("POST", "/v1/rooms/{room}/join-as-member"): [Row(expect(
        admin="403 forbidden", member="403 forbidden", bot="403 forbidden", moderator="403 out_of_scope",
        guest="403 out_of_scope", ended="403 out_of_scope", removed="403 out_of_scope", user="201"),
        fresh=fresh_other_room)],
    ("GET", "/v1/rooms/{room}/placement"): [Row(ROOM_MEMBERS), Row(ROOM_ADMIN, fill={"room": "other_room"})],
    ("GET", "/v1/rooms/{room}/ws"): [Row({}, websocket=True)],
    ("GET", "/v1/rooms/{room}/transcript"): [Row({**ROOM_ADMIN, "moderator": "200"}),
                                             Row(ROOM_ADMIN, fill={"room": "other_room"})],
    ("GET", "/v1/rooms/{room}/notes"): [Row({**ROOM_ADMIN, "moderator": "200"}),
                                        Row(ROOM_ADMIN, fill={"room": "other_room"})],
    ("POST", "/v1/rooms/{room}/record-token"): [Row({**ROOM_ADMIN, "admin": "403 forbidden", "moderator": "201"}),
                                               Row({**ROOM_ADMIN, "admin": "403 forbidden"},
                                                   fill={"room": "other_room"})],
    ("POST", "/v1/meetings/scheduled"): [Row({**CHAT_UNSCOPED, "admin": "201", "member": "201", "user": "201",
                                              "bot": "403 not_permitted"}, body=SCHEDULED_BODY)],
    ("GET", "/v1/meetings/scheduled"): [Row(CHAT_UNSCOPED)],
    ("GET", "/v1/meetings/scheduled/{id}"): [Row(PLAN_OWN, fresh=fresh_scheduled_meeting)],
    ("GET", "/v1/meetings/scheduled/{id}.ics"): [Row(PLAN_OWN, fresh=fresh_scheduled_meeting)],
    ("PATCH", "/v1/meetings/scheduled/{id}"): [Row(PLAN_OWN, body={"title": "renamed"},
                                                   fresh=fresh_scheduled_meeting)],
    ("DELETE", "/v1/meetings/scheduled/{id}"): [Row(PLAN_OWN, fresh=fresh_scheduled_meeting)],
    # Meeting records (the meeting page's REST): the room's meeting, and a meeting of another room.
    ("GET", "/v1/meetings"): [Row(expect("403 out_of_scope", admin="200", member="403 forbidden",
                                         bot="403 forbidden", record="200", ended="403 out_of_scope",
                                         removed="403 out_of_scope"))],
    ("GET", "/v1/meetings/{meeting_id}"): [Row(RECORD_OWN), Row(RECORD_OTHER, fill={"meeting_id": "other_meeting"})],
    ("GET", "/v1/meetings/{meeting_id}/transcript"): [Row(RECORD_OWN),
                                                      Row(RECORD_OTHER, fill={"meeting_id": "other_meeting"})],
    ("GET", "/v1/meetings/{meeting_id}/notes"): [Row(RECORD_OWN),
                                                 Row(RECORD_OTHER, fill={"meeting_id": "other_meeting"})],
    ("PUT", "/v1/meetings/{meeting_id}/notes"): [Row(RECORD_OWN, body={"summary": ["matrix"]}),
                                                 Row(RECORD_OTHER, body={"summary": ["matrix"]},
                                                     fill={"meeting_id": "other_meeting"})],
    # The meeting still runs: who gets past the checks learns it may not post yet (409 invalid_state).
    ("POST", "/v1/meetings/{meeting_id}/notes/publish"): [
        Row({**RECORD_OWN, **{c: "409 invalid_state" for c in ("admin", "moderator", "record")}}),
        Row({**RECORD_OTHER, "admin": "409 invalid_state"}, fill={"meeting_id": "other_meeting"})],
    ("GET", "/v1/metrics"): [Row(ROOM_ADMIN)],
    # Prometheus (signaling/prometheus.py): the admin key, as the JSON metrics above.
    ("GET", "/metrics"): [Row(ROOM_ADMIN)],
    ("GET", "/v1/captions/metrics"): [Row(ROOM_ADMIN)],
    # Chat: directory and organisation.
    ("GET", "/v1/me"): [Row(expect("200"))],
    # Watermark tamper reports: anyone a page draws the watermark for (meeting tokens too); the audit row is rate
    # limited per person, the answer is 200 either way.
    ("POST", "/v1/watermark/tamper"): [Row(expect("200"), body={"page": "chat", "what": "removed"})],
    # Sign-in: open to everyone (a credential changes nothing); an incomplete form is refused before any check, so
    # the matrix's calls from one address never count as failed sign-ins (tests/chat/test_signin.py covers those).
    ("POST", "/v1/auth/login"): [Row({c: "400 invalid_field" for c in CREDENTIALS}, body={"login": "carol"})],
    ("POST", "/v1/auth/logout"): [Row(PUBLIC, body={})],
    ("GET", "/v1/org"): [Row(CHAT_UNSCOPED)],
    # The organisation's permission table: for those who hold edit_org (owners, admins).
    ("GET", "/v1/admin/permissions"): [Row({**CHAT_UNSCOPED, "member": "403 not_permitted", "bot": "403 not_permitted",
                                            "user": "403 not_permitted"})],
    ("PUT", "/v1/admin/permissions"): [Row({**CHAT_UNSCOPED, "member": "403 not_permitted", "bot": "403 not_permitted",
                                            "user": "403 not_permitted"}, body={"create_group": None})],
    ("PATCH", "/v1/org"): [Row({**CHAT_UNSCOPED, "member": "403 not_permitted", "bot": "403 not_permitted",
                                "user": "403 not_permitted"}, body={"recall_window_seconds": 600})],
    ("GET", "/v1/users"): [Row(CHAT_UNSCOPED)],
    ("POST", "/v1/users"): [Row({**CHAT_UNSCOPED, "member": "403 not_permitted", "bot": "403 not_permitted",
                                 "user": "403 not_permitted", "admin": "200|201"},
                                body={"login": "erin", "role": "member"})],
    ("PATCH", "/v1/users/{login}"): [Row({**CHAT_UNSCOPED, "member": "403 not_permitted", "bot": "403 not_permitted",
                                          "user": "403 not_permitted"}, body={"department": "eng"})],
    ("POST", "/v1/users/{login}/tokens"): [Row({**CHAT_UNSCOPED, "admin": "201", "member": "403 not_permitted",
                                                "bot": "403 not_permitted", "user": "403 not_permitted"},
                                               body={"ttl": 3600})],
    ("POST", "/v1/users/{login}/deactivate"): [Row({**CHAT_UNSCOPED, "member": "403 not_permitted",
                                                    "bot": "403 not_permitted", "user": "403 not_permitted"},
                                                   fresh=fresh_doomed_user)],
    ("GET", "/v1/departments"): [Row(CHAT_UNSCOPED)],
    # The directory (LDAP / AD): manage_users (owners and admins by default). The matrix server has no directory,
    # so a sync is 409 directory_not_configured and the status says configured: false.
    ("POST", "/v1/admin/ldap/sync"): [Row({**CHAT_UNSCOPED, "admin": "409 directory_not_configured",
                                           "member": "403 not_permitted", "bot": "403 not_permitted",
                                           "user": "403 not_permitted"})],
    ("GET", "/v1/admin/ldap/status"): [Row({**CHAT_UNSCOPED, "member": "403 not_permitted",
                                            "bot": "403 not_permitted", "user": "403 not_permitted"})],
    # Usage analytics: read_stats (owners and admins by default); meeting tokens are out of scope.
    ("GET", "/v1/admin/stats"): [Row({**CHAT_UNSCOPED, "member": "403 not_permitted", "bot": "403 not_permitted",
                                      "user": "403 not_permitted"})],
    # The audit log: read_audit (owners and admins by default); meeting tokens are out of scope.
    ("GET", "/v1/audit"): [Row({**CHAT_UNSCOPED, "member": "403 not_permitted", "bot": "403 not_permitted",
                                "user": "403 not_permitted"})],
    # Channels.
    ("POST", "/v1/channels"): [Row({**CHAT_UNSCOPED, "admin": "200|201", "member": "200|201", "bot": "200|201",
                                    "user": "200|201"}, body={"kind": "group", "members": [CAROL]})],
    ("GET", "/v1/channels"): [Row(expect("200"))],
    ("GET", "/v1/channels/browse"): [Row({**CHAT_UNSCOPED, "bot": "403 not_permitted"})],
    ("GET", "/v1/channels/{id}"): [Row(TEAM_THING, fill={"id": "team"}),
                                   Row(MEETING_THING, fill={"id": "meeting_channel"})],
    ("PATCH", "/v1/channels/{id}"): [Row({**TEAM_THING, "member": "403 not_permitted", "bot": "403 not_permitted",
                                          "user": "403 not_permitted"}, body={"topic": "matrix"},
                                         fill={"id": "team"})],
    ("POST", "/v1/channels/{id}/archive"): [Row(EDIT_ORG, fresh=fresh_channel)],
    ("POST", "/v1/channels/{id}/unarchive"): [Row(EDIT_ORG, fresh=fresh_archived_channel)],
    ("POST", "/v1/admin/legal_holds"): [Row({**EDIT_ORG, "admin": "201"}, body={"name": "matrix", "users": [CAROL]})],
    ("GET", "/v1/admin/legal_holds"): [Row(EDIT_ORG)],
    ("DELETE", "/v1/admin/legal_holds/{id}"): [Row(EDIT_ORG, fresh=fresh_legal_hold)],
    ("GET", "/v1/admin/legal_holds/{id}/messages"): [Row(EDIT_ORG, fresh=fresh_legal_hold)],
    ("POST", "/v1/admin/retention/run"): [Row(EDIT_ORG)],
    ("GET", "/v1/channels/{id}/members"): [Row(TEAM_THING, fill={"id": "team"}),
                                           Row(OTHERS_GROUP, fill={"id": "group"}),
                                           Row(MEETING_THING, fill={"id": "meeting_channel"})],
    ("POST", "/v1/channels/{id}/members"): [Row({**TEAM_THING, "member": "403 not_permitted",
                                                 "bot": "403 not_permitted", "user": "403 not_permitted"},
                                                body={"add": ["erin"]}, fill={"id": "team"}),
                                            Row(OTHERS_GROUP, body={"add": [], "remove": []}, fill={"id": "group"})],
    ("POST", "/v1/channels/{id}/read"): [Row(TEAM_THING, body={"ord": 1}, fill={"id": "team"}),
                                         Row(MEETING_THING, body={"ord": 1}, fill={"id": "meeting_channel"})],
    ("GET", "/v1/channels/{id}/messages"): [Row(TEAM_THING, fill={"id": "team"}),
                                            Row(MEETING_THING, fill={"id": "meeting_channel"})],
    # Messages.
    ("POST", "/v1/messages"): [Row({**TEAM_THING, "admin": "201", "member": "201", "bot": "201", "user": "201"},
                                   body={"to": TEAM, "content": "hello team"}),
                               Row({**MEETING_ITEM, "moderator": "201", "guest": "201"},
                                   body={"to": ROOM, "content": "hello meeting"})],
    ("GET", "/v1/messages/{id}"): [Row(TEAM_THING, fill={"id": "team_message"}),
                                   Row(MEETING_ITEM, fill={"id": "meeting_message"})],
    ("PATCH", "/v1/messages/{id}"): [Row({**TEAM_THING, "admin": "403 not_permitted", "bot": "403 not_permitted",
                                          "user": "403 not_permitted"}, body={"content": "edited"},
                                         fill={"id": "team_message"})],
    ("DELETE", "/v1/messages/{id}"): [Row({**TEAM_THING, "bot": "403 not_permitted", "user": "403 not_permitted"},
                                          fresh=fresh_team_message),
                                      Row({**MEETING_ITEM, "moderator": "403 not_permitted"},
                                          fresh=fresh_meeting_message)],
    ("POST", "/v1/messages/{id}/reactions"): [Row(TEAM_THING, body={"emoji": "👍"}, fill={"id": "team_message"}),
                                              Row(MEETING_ITEM, body={"emoji": "👍"},
                                                  fill={"id": "meeting_message"})],
    ("DELETE", "/v1/messages/{id}/reactions/{emoji}"): [Row(TEAM_THING, fill={"id": "team_message"}),
                                                        Row(MEETING_ITEM, fill={"id": "meeting_message"})],
    # Tasks, search, sync.
    ("GET", "/v1/tasks"): [Row(CHAT_UNSCOPED)],
    # Its author and assignee (the member key) and admins change a task; other members of the channel don't.
    ("PATCH", "/v1/tasks/{id}"): [Row({**TEAM_THING, "bot": "403 not_permitted", "user": "403 not_permitted"},
                                      body={"status": "in_progress"}, fill={"id": "team_task"})],
    ("GET", "/v1/search"): [Row(CHAT_UNSCOPED, query="?q=hello")],
    ("GET", "/v1/sync"): [Row(CHAT_UNSCOPED)],
    # Files.
    ("POST", "/v1/files"): [Row(expect("201"), body="multipart")],
    ("GET", "/v1/files/{id}"): [Row(TEAM_ITEM, fill={"id": "team_file"}),
                                Row(MEETING_ITEM, fill={"id": "meeting_file"})],
    ("POST", "/v1/files/{id}/link"): [Row(TEAM_ITEM, fill={"id": "team_file"}),
                                      Row(MEETING_ITEM, fill={"id": "meeting_file"})],
    ("GET", "/v1/chat/ws"): [Row({}, websocket=True)],
    # Webhooks. Managing them: manage_integrations.
    ("POST", "/v1/hooks/incoming"): [Row(MAKE_HOOK, body={"channel": TEAM, "name": "matrix"})],
    ("POST", "/v1/hooks/github"): [Row(MAKE_HOOK, body={"channel": TEAM, "name": "matrix"})],
    ("POST", "/v1/hooks/gitlab"): [Row(MAKE_HOOK, body={"channel": TEAM, "name": "matrix"})],
    ("POST", "/v1/hooks/outgoing"): [Row(MAKE_HOOK, body={"channel": TEAM, "name": "matrix",
                                                          "url": "https://hooks.example/matrix"})],
    ("GET", "/v1/hooks"): [Row(MANAGE_HOOKS)],
    ("GET", "/v1/hooks/{id}"): [Row(MANAGE_HOOKS, fresh=fresh_hook("outgoing"))],
    ("DELETE", "/v1/hooks/{id}"): [Row(MANAGE_HOOKS, fresh=fresh_hook("incoming"))],
    # Receiving: the URL's secret, or the delivery's signature or token, is the credential; a bearer changes nothing.
    ("POST", "/v1/hooks/incoming/{id}/{secret}"): [Row({c: "200" for c in CREDENTIALS}, body={"text": "matrix"},
                                                       fresh=fresh_hook("incoming"))],
    ("POST", "/v1/hooks/github/{id}"): [Row({c: "401 invalid_signature" for c in CREDENTIALS}, body={},
                                            fresh=fresh_hook("github"))],
    ("POST", "/v1/hooks/gitlab/{id}"): [Row({c: "401 invalid_signature" for c in CREDENTIALS}, body={},
                                            fresh=fresh_hook("gitlab"))],
    # Bots, slash commands, interactive messages (integrations/interaction_web.py).
    ("POST", "/v1/bots"): [Row(MAKE_HOOK, body={"login": "matrix-bot", "name": "Matrix"})],
    ("GET", "/v1/bots"): [Row(MANAGE_HOOKS)],
    ("POST", "/v1/commands"): [Row(MAKE_HOOK, body={"trigger": "matrix", "url": "https://hooks.example/command"})],
    ("GET", "/v1/commands"): [Row(MANAGE_HOOKS)],
    ("DELETE", "/v1/commands/{id}"): [Row(MANAGE_HOOKS, fresh=fresh_command)],
    # A response_url is its own credential: a bearer changes nothing, a wrong one is not found.
    ("POST", "/v1/commands/responses/{id}/{secret}"): [
        Row({c: "404 response_url_not_found" for c in CREDENTIALS}, body={"text": "matrix"}, fresh=no_response_url)],
    ("POST", "/v1/interactive/messages"): [Row(BUTTON_POST, body={
        "to": TEAM, "content": "approve?", "url": "https://hooks.example/click",
        "actions": [{"action_id": "approve", "text": "Approve"}]})],
    ("POST", "/v1/messages/{id}/actions/{action_id}"): [Row(CLICK, fresh=team_message_button)],
    # Scheduled posts.
    ("POST", "/v1/scheduled_posts"): [Row({**TEAM_THING, "admin": "201", "member": "201", "bot": "201", "user": "201"},
                                          body={"channel": TEAM, "text": "later", "at": "2999-01-01T00:00:00Z"})],
    ("GET", "/v1/scheduled_posts"): [Row(CHAT_UNSCOPED)],
    ("GET", "/v1/scheduled_posts/{id}"): [Row(SCHEDULED_OWN, fresh=fresh_scheduled_post)],
    ("DELETE", "/v1/scheduled_posts/{id}"): [Row(SCHEDULED_OWN, fresh=fresh_scheduled_post)],
}

# Which World attribute fills a path parameter when a row does not say.
DEFAULT_FILL = {"key_id": "key_id", "room": "room", "login": "carol", "emoji": "emoji", "id": "team", "meeting_id": "meeting_id"}


def auth(credential: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"} if credential else {}


@dataclass
class World:
    server: RunningServer
    http: aiohttp.ClientSession
    creds: dict[str, str | None] = field(default_factory=dict)
    room: str = ROOM
    carol: str = CAROL
    emoji: str = "👍"
    team: str = ""
    group: str = ""
    other_room: str = ""
    meeting_id: str = ""  # the room's live meeting
    other_meeting: str = ""  # other_room's
    meeting_channel: str = ""
    team_message: str = ""
    meeting_message: str = ""
    team_task: str = ""
    team_file: str = ""
    meeting_file: str = ""
    counter: int = 0

    async def call(self, method: str, path: str, credential: str | None, body: Any = None) -> tuple[int, Any]:
        data: Any = None
        if body == "multipart":
            data = aiohttp.FormData()
            data.add_field("file", b"minutes of the meeting\n", filename="notes.txt", content_type="text/plain")
            body = None
        async with self.http.request(method, self.server.url + path, json=body, data=data,
                                     headers=auth(credential)) as r:
            text = await r.text()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
            return r.status, parsed

    async def call_ok(self, method: str, path: str, credential: str | None, body: Any = None) -> Any:
        status, got = await self.call(method, path, credential, body)
        assert 200 <= status < 300, (method, path, status, got)
        return got

    async def guest_join(self, room: str, name: str) -> dict[str, Any]:
        got: dict[str, Any] = await self.call_ok("POST", f"/v1/rooms/{room}/join", None, {"name": name})
        return got

    async def post_file(self, credential: str | None, to: str) -> str:
        uploaded = await self.call_ok("POST", "/v1/files", credential, "multipart")
        file_id: str = uploaded["file"]["id"]
        await self.call_ok("POST", "/v1/messages", credential,
                           {"to": to, "type": "file", "attachments": [{"type": "file", "file_id": file_id}]})
        return file_id


async def removed_token(world: World, moderator: str) -> str:
    """A participant of the room whom its moderator removed over signaling."""
    victim = await world.guest_join(ROOM, "Mallory")
    mod = SignalingClient(world.server.url, ROOM, moderator)
    target = SignalingClient(world.server.url, ROOM, victim["token"])
    try:
        await mod.connect()
        joined = await target.connect()
        await mod.send({"type": "remove_participant", "participant_id": joined["participant"]["id"]})
        await target.wait_for("removed")
        await asyncio.wait_for(target.closed.wait(), 5)
    finally:
        await target.close()
        await mod.close()
    token: str = victim["token"]
    return token


async def build_world(server: RunningServer, http: aiohttp.ClientSession) -> World:
    world = World(server, http)
    keys: ApiKeyStore = server.app[API_KEYS]
    _, member = await keys.create("member-key", "member")
    _, bot = await keys.create("bot-key", "bot")
    admin = server.api_key
    for key in (admin, member, bot):
        await world.call_ok("GET", "/v1/me", key)  # the key's chat user exists from its first call on
    for login in (CAROL, "erin"):
        await world.call_ok("POST", "/v1/users", admin, {"login": login, "role": "member"})
    user = (await world.call_ok("POST", f"/v1/users/{CAROL}/tokens", admin, {}))["token"]

    opener, guest = await world.guest_join(ROOM, "Mona"), await world.guest_join(ROOM, "Gus")
    assert opener["moderator"] and not guest["moderator"]
    moderator = opener["token"]
    ended = (await world.guest_join("gone", "Old"))["token"]
    await world.call_ok("DELETE", "/v1/rooms/gone", admin)
    removed = await removed_token(world, moderator)
    world.meeting_id = opener["meeting_id"]
    # The moderator's record token for the room's meeting (its page's credential once the meeting ends).
    record = (await world.call_ok("POST", f"/v1/rooms/{ROOM}/record-token", moderator))["token"]
    world.creds = {"admin": admin, "member": member, "bot": bot, "moderator": moderator, "guest": guest["token"],
                   "ended": ended, "removed": removed, "user": user, "record": record, "none": None}

    team = await world.call_ok("POST", "/v1/channels", admin, {"name": TEAM, "kind": "team",
                                                               "members": ["member-key", "bot-key", CAROL]})
    world.team = team["id"]
    world.group = (await world.call_ok("POST", "/v1/channels", admin, {"kind": "group", "members": [CAROL]}))["id"]
    world.other_room = "elsewhere"
    world.other_meeting = (await world.guest_join(world.other_room, "Stranger"))["meeting_id"]
    world.meeting_channel = (await world.call_ok("GET", "/v1/me", guest["token"]))["channel"]
    await world.call_ok("GET", "/v1/me", moderator)  # joins the meeting channel too
    world.team_message = (await world.call_ok("POST", "/v1/messages", member, {"to": TEAM, "content": "hello"}))["id"]
    world.meeting_message = (await world.call_ok("POST", "/v1/messages", guest["token"],
                                                 {"to": ROOM, "content": "hello"}))["id"]
    world.team_task = (await world.call_ok("POST", "/v1/messages", member, {
        "to": TEAM, "type": "task", "task": {"title": "ship it", "assignee": "member-key"}}))["id"]
    world.team_file = await world.post_file(member, TEAM)
    world.meeting_file = await world.post_file(guest["token"], ROOM)
    return world


def pattern_of(route: web.AbstractRoute) -> str:
    info = route.resource.get_info() if route.resource is not None else {}
    return str(info.get("formatter") or info.get("path") or info.get("prefix") or "").rstrip("/") or "/"


def walked_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, pattern) of every route; HEAD is aiohttp's automatic twin of GET and follows its row."""
    routes = {(r.method, pattern_of(r)) for r in app.router.routes()}
    heads = {("GET", p) for m, p in routes if m == "HEAD"}
    assert heads <= routes, f"HEAD routes without their GET: {sorted(heads - routes)}"
    return {(m, p) for m, p in routes if m != "HEAD"}


def matches(spec: str, status: int, body: Any) -> bool:
    statuses, _, code = spec.partition(" ")
    if str(status) not in statuses.split("|"):
        return False
    if code:
        got = body.get("error", {}).get("code") if isinstance(body, dict) else None
        return bool(got == code)
    return True


def concrete_path(pattern: str, world: World, fill: dict[str, str], fresh_fill: dict[str, str]) -> str:
    if pattern == "/static":
        return "/static/app.css" if (Path(__file__).parent.parent / "web" / "app.css").exists() else \
            "/static/" + next(p.name for p in (Path(__file__).parent.parent / "web").iterdir() if p.is_file())
    path = pattern
    for name in ("key_id", "room", "login", "emoji", "id", "meeting_id", "secret", "action_id"):
        if "{" + name + "}" in path:
            value = fresh_fill.get(name) or getattr(world, fill.get(name, DEFAULT_FILL[name]))
            path = path.replace("{" + name + "}", str(value))
    return path


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    monkeypatch.setenv("CONVENE_CHAT_RATE", "1000")
    monkeypatch.setenv("CONVENE_CHAT_BURST", "1000")
    async with running_server(server_config(tmp_path / "data", guest_joins_per_minute=10_000)) as server:
        async with aiohttp.ClientSession() as http:
            yield await build_world(server, http)


async def test_every_route_has_a_row_and_every_credential_gets_what_the_policy_says(world: World) -> None:
    routes = walked_routes(world.server.app)
    missing = sorted(routes - set(TABLE))
    assert not missing, f"routes without a row in the authorization matrix (add one): {missing}"
    stale = sorted(set(TABLE) - routes)
    assert not stale, f"rows for routes the server no longer has: {stale}"

    wrong: list[str] = []
    for (method, pattern), rows in TABLE.items():
        for row in rows:
            if row.websocket:
                status, _ = await world.call(method, concrete_path(pattern, world, row.fill, {}), world.creds["admin"])
                if status != 400:  # not an upgrade: refused before anything is read
                    wrong.append(f"{method} {pattern}: a plain GET of a socket got {status}")
                continue
            for cred in CREDENTIALS:
                fresh_fill, overrides = await row.fresh(world, cred) if row.fresh else ({}, {})
                path = concrete_path(pattern, world, row.fill, fresh_fill) + row.query
                credential = overrides.get(cred, world.creds[cred])
                status, body = await world.call(method, path, credential, row.body)
                if not matches(row.expect[cred], status, body):
                    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
                    wrong.append(f"{method} {path} as {cred}: want {row.expect[cred]}, got {status} {code or ''}")
    assert not wrong, "authorization matrix broken:\n" + "\n".join(wrong)


# -- the signaling socket ----------------------------------------------------------------------------------------

SIGNAL_STATES = ("not_joined", "participant", "moderator")
# A message of each type, and what each state gets: "error CODE", "reply TYPE", "none" (nothing, socket open) or
# "closed". Moderator-only messages give participants `missing_grant`; before `join` everything is `not_joined`.
NOT_JOINED = "error not_joined"
SIGNAL_TABLE: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "publish": ({"sdp": "v=0", "tracks": [{"mid": "0", "source": "microphone"}]},
                {"participant": "error malformed_sdp", "moderator": "error malformed_sdp"}),
    "unpublish": ({"track_id": "TR_nope"}, {"participant": "error not_found", "moderator": "error not_found"}),
    "offer": ({"target": "publisher", "sdp": "v=0"},
              {"participant": "error malformed_sdp", "moderator": "error malformed_sdp"}),
    "answer": ({"target": "subscriber", "sdp": "v=0"},
               {"participant": "error invalid_state", "moderator": "error invalid_state"}),
    "candidate": ({"target": "publisher", "candidate": None}, {"participant": "none", "moderator": "none"}),
    "mute": ({"track_id": "TR_nope", "muted": True}, {"participant": "error not_found", "moderator": "error not_found"}),
    "mute_participant": ({"participant_id": "PA_nope"},
                         {"participant": "error missing_grant", "moderator": "error not_found"}),
    "remove_participant": ({"participant_id": "PA_nope"},
                           {"participant": "error missing_grant", "moderator": "error not_found"}),
    "end_room": ({}, {"participant": "error missing_grant", "moderator": "reply room_ended"}),
    "set_captions": ({"enabled": False}, {"participant": "error missing_grant", "moderator": "reply captions"}),
    "set_language": ({"language": "zh"}, {"participant": "error missing_grant", "moderator": "reply language"}),
    "set_subscriptions": ({"max_video": 4}, {"participant": "none", "moderator": "none"}),
    "leave": ({}, {"participant": "closed", "moderator": "closed"}),
    "ping": ({"id": "p"}, {"participant": "reply pong", "moderator": "reply pong"}),
    "join": ({}, {"not_joined": "reply joined", "participant": "error invalid_state", "moderator": "error invalid_state"}),
}


async def live_handlers(world: World) -> set[str]:
    """The message types a signaling session handles, read from a live session of the running server."""
    room = f"probe-{id(world)}"
    token = (await world.guest_join(room, "Probe"))["token"]
    client = SignalingClient(world.server.url, room, token)
    try:
        joined = await client.connect()
        session = world.server.app[SESSIONS][joined["participant"]["id"]]
        return set(session._handlers)
    finally:
        await client.close()


async def signal_outcome(client: SignalingClient, kind: str, message: dict[str, Any], joined: bool) -> list[str]:
    """What the server answered `message` with: its error codes (ref'd to it), message types and whether the
    socket closed, up to the pong of a ping sent after it (before join, each message is answered itself)."""
    start = len(client.messages)
    await client.send({"type": kind, **message})
    if joined:
        await client.send({"type": "ping", "id": "sync"})
    seen: list[str] = []
    deadline = asyncio.get_running_loop().time() + 5
    while asyncio.get_running_loop().time() < deadline:
        for m in client.messages[start:]:
            if m.get("type") == "error":
                seen.append(f"error {m.get('code')}" if m.get("ref") in (kind, None) else "")
            else:
                seen.append(f"reply {m.get('type')}")
        start = len(client.messages)
        if client.closed.is_set() or (joined and any(s == "reply pong" for s in seen if kind != "ping")) or (
                not joined and seen) or (kind == "ping" and seen.count("reply pong") >= 2):
            break
        await asyncio.sleep(0.02)
    if client.closed.is_set():
        seen.append("closed")
    return seen


def signal_matches(spec: str, seen: list[str], kind: str) -> bool:
    errors = [s for s in seen if s.startswith("error ")]
    if spec.startswith("error "):
        return spec in errors
    if errors:
        return False
    if spec == "closed":
        return "closed" in seen
    if spec == "none":
        return "closed" not in seen
    return spec in seen


async def test_every_signaling_message_type_in_every_state(world: World) -> None:
    handled = await live_handlers(world)
    assert handled == set(SIGNAL_TABLE), (
        f"signaling message types without a row: {sorted(handled - set(SIGNAL_TABLE))}; "
        f"rows without a handler: {sorted(set(SIGNAL_TABLE) - handled)}")
    wrong: list[str] = []
    for kind, (message, cells) in SIGNAL_TABLE.items():
        for state in SIGNAL_STATES:
            world.counter += 1
            room = f"sig-{world.counter}"
            opener = await world.guest_join(room, "Mod")
            other = await world.guest_join(room, "Pat")
            token = opener["token"] if state == "moderator" else other["token"]
            client = SignalingClient(world.server.url, room, token)
            try:
                if state == "not_joined":
                    client._session = aiohttp.ClientSession()
                    client._ws = await client._session.ws_connect(client.url)
                    client._reader = asyncio.get_running_loop().create_task(client._read())
                    body = {**message, "token": token} if kind == "join" else message
                    seen = await signal_outcome(client, kind, body, joined=False)
                else:
                    await client.connect()
                    seen = await signal_outcome(client, kind, message, joined=True)
            finally:
                await client.close()
            spec = cells.get(state, NOT_JOINED)
            if not signal_matches(spec, seen, kind):
                wrong.append(f"{kind} as {state}: want {spec}, got {[s for s in seen if s]}")
    assert not wrong, "signaling matrix broken:\n" + "\n".join(wrong)


# What each credential gets when it joins the room's signaling (the join message's token).
JOIN_TABLE = {"admin": "error invalid_token", "member": "error invalid_token", "bot": "error invalid_token",
              "moderator": "reply joined", "guest": "reply joined", "ended": "error meeting_ended",
              "removed": "error removed", "user": "error out_of_scope", "record": "error out_of_scope",
              "none": "error invalid_field"}


async def test_every_credential_joining_the_signaling_socket(world: World) -> None:
    wrong: list[str] = []
    for cred, room in [(c, "gone" if c == "ended" else ROOM) for c in CREDENTIALS] + [("moderator", "elsewhere")]:
        client = SignalingClient(world.server.url, room, world.creds[cred] or "")
        try:
            client._session = aiohttp.ClientSession()
            client._ws = await client._session.ws_connect(client.url)
            client._reader = asyncio.get_running_loop().create_task(client._read())
            token = world.creds[cred]
            seen = await signal_outcome(client, "join", {"token": token} if token else {}, joined=False)
        finally:
            await client.close()
        want = JOIN_TABLE[cred] if room != "elsewhere" else "error wrong_room"  # its own room only
        if not signal_matches(want, seen, "join"):
            wrong.append(f"join {room} as {cred}: want {want}, got {seen}")
    assert not wrong, "\n".join(wrong)


# -- the chat socket -----------------------------------------------------------------------------------------------

def chat_frame_types() -> set[str]:
    """The frame types `ChatApi._on_ws_text` tells apart (each `kind == "…"` in it)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(ChatApi._on_ws_text)))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "kind":
            found.update(c.value for c in node.comparators if isinstance(c, ast.Constant) and isinstance(c.value, str))
    return found


CHAT_STATES = ("unauthenticated", "member", "guest")
# A frame of each type (`channel` filled with the team channel) and what each state gets; before the auth frame
# anything else closes the socket (4401, unauthorized). A meeting token's socket is its meeting's channel only.
CHAT_TABLE: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "ping": ({"id": 7}, {"member": "reply pong", "guest": "reply pong"}),
    # Typing goes to the channel's other members; the typer hears nothing back.
    "typing": ({"channel": "TEAM"}, {"member": "none", "guest": "error not_a_member"}),
    # A button click: message_id and action_id are required (tests/integrations cover clicks that reach a bot).
    "action": ({}, {"member": "error invalid_field", "guest": "error invalid_field"}),
}
# And the auth frame itself, per credential: "hello" or the close reason.
CHAT_AUTH = {"admin": "hello", "member": "hello", "bot": "hello", "moderator": "hello", "guest": "hello",
             "ended": "meeting_ended", "removed": "removed", "user": "hello", "record": "out_of_scope",
             "none": "unauthorized"}


async def chat_socket(world: World, token: str | None) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    """Opens the chat socket and sends the auth frame: the socket and "hello" or the refusal's code."""
    ws = await world.http.ws_connect(world.server.url.replace("http", "ws", 1) + "/v1/chat/ws")
    if token is not None:
        await ws.send_str(json.dumps({"type": "auth", "token": token}))
    msg = await ws.receive(timeout=5)
    frame = json.loads(msg.data) if msg.type == aiohttp.WSMsgType.TEXT else {}
    if frame.get("type") == "hello":
        return ws, "hello"
    closing = await ws.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and ws.close_code == 4401, closing
    return ws, str(frame.get("error", {}).get("code"))


async def chat_outcome(ws: aiohttp.ClientWebSocketResponse) -> str:
    """The next frame: "error CODE", "reply TYPE", "none" (the pong of the sync ping sent after) or "closed"."""
    msg = await ws.receive(timeout=5)
    if msg.type != aiohttp.WSMsgType.TEXT:
        return "closed"
    frame = json.loads(msg.data)
    if frame.get("type") == "error":
        return f"error {frame['error']['code']}"
    if frame.get("type") == "pong" and frame.get("id") == "sync":
        return "none"
    return f"reply {frame.get('type')}"


async def test_every_credential_authenticating_the_chat_socket(world: World) -> None:
    wrong = []
    for cred in CREDENTIALS:
        ws, got = await chat_socket(world, world.creds[cred] or "")
        await ws.close()
        if got != CHAT_AUTH[cred]:
            wrong.append(f"chat socket auth as {cred}: want {CHAT_AUTH[cred]}, got {got}")
    assert not wrong, "\n".join(wrong)


async def test_every_chat_frame_type_in_every_state(world: World) -> None:
    assert chat_frame_types() == set(CHAT_TABLE), (
        f"chat frame types without a row: {sorted(chat_frame_types() - set(CHAT_TABLE))}; "
        f"rows without a frame type: {sorted(set(CHAT_TABLE) - chat_frame_types())}")
    wrong: list[str] = []
    frames = {**CHAT_TABLE, "no-such-type": ({}, {"member": "error unknown_message_type",
                                                  "guest": "error unknown_message_type"})}
    for kind, (fields, cells) in frames.items():
        frame = {"type": kind, **{k: world.team if v == "TEAM" else v for k, v in fields.items()}}
        for state in CHAT_STATES:
            if state == "unauthenticated":
                ws = await world.http.ws_connect(world.server.url.replace("http", "ws", 1) + "/v1/chat/ws")
                await ws.send_str(json.dumps(frame))
                first = await chat_outcome(ws)
                after = await chat_outcome(ws)
                got, want = f"{first} {after} {ws.close_code}", "error unauthorized closed 4401"
            else:
                ws, hello = await chat_socket(world, world.creds[state])
                assert hello == "hello"
                await ws.send_str(json.dumps(frame))
                await ws.send_str(json.dumps({"type": "ping", "id": "sync"}))
                got, want = await chat_outcome(ws), cells[state]
            await ws.close()
            if got != want:
                wrong.append(f"chat frame {kind} as {state}: want {want}, got {got}")
    assert not wrong, "chat socket matrix broken:\n" + "\n".join(wrong)
