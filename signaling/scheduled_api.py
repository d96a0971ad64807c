"""Scheduled meetings over REST (docs/meetings.md), for chat users: signed-in people (a session with its CSRF
header on writes, or a user token) and API keys as their own user, as chat's routes take them (a calendar
integration plans as its key's user); meeting and record tokens are out of scope:

- `POST /v1/meetings/scheduled` plans one (start_meeting), invites people of the organiser's organisation and sends
  each a direct message; a room holds one plan at a time and no plan takes over a room in use (409
  room_already_planned, room_in_use), and an organiser has at most PER_ORGANIZER_MAX plans that have not ended;
- `GET /v1/meetings/scheduled?from=&to=` lists what the caller organises or is invited to;
- `GET|PATCH|DELETE /v1/meetings/scheduled/{id}`: anyone it reaches reads it (and an admin of its organisation);
  the organiser or an admin changes or cancels it, and the invitees hear of it from whoever did (an admin's
  change also reaches the organiser);
- `GET /v1/meetings/scheduled/{id}.ics`: the same as an iCalendar event, its link without a token.

A plan the caller may not see answers 404 scheduled_meeting_not_found, as one that does not exist (another
organisation's too).

Writes are rate limited as chat writes, one token for the request and one per notice it sends (the chat limiter's
bucket of the caller), so swapping a long invitee list costs what sending those messages one by one would.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import replace
from typing import Any

from aiohttp import web

from audit import AuditEvent
from audit.appkeys import AUDIT
from chat.auth import Principal
from chat.model import User
from chat.web import CHAT_API, ChatApi
from common.errors import BadRequest, Forbidden, InvalidField, NotPermitted, NotReady, ScheduledMeetingNotFound, \
    UnknownInvitees
from common.wire import read_json_object
from identity.icalendar import event_calendar
from identity.orgs import plain, qualify
from identity.schedule import PER_ORGANIZER_MAX, ScheduledMeeting, ScheduleStore, new_schedule_id
from signaling.appkeys import SCHEDULE
from signaling.member_join import MEMBER_ROLES, MODERATING_ROLES, check_may_start_meeting
from signaling.rest import base_url, valid_room_name
from signaling.scheduled_input import (AHEAD_MAX_SECONDS, CHANGEABLE, DURATION_MAX, DURATION_MIN, FIELDS,
                                       INVITEES_MAX, TITLE_MAX, parse_fields, parse_rfc3339, require_fields)
from signaling.scheduled_notices import Notice, cancelled, changed, invitation, recipients, send

log = logging.getLogger("convene.signaling.scheduled_api")

BASE = "/v1/meetings/scheduled"
SCHEDULE_ID = re.compile(r"^sm_[A-Za-z0-9_-]{22}$")
LIST_DAYS_DEFAULT = 30
LIST_LIMIT = 500
ROOM_LETTERS = "abcdefghijkmnopqrstuvwxyz"


def random_room() -> str:
    """A room name like the home page's "Start a meeting" makes: `abc-defg-hij`."""
    return "-".join("".join(secrets.choice(ROOM_LETTERS) for _ in range(n)) for n in (3, 4, 3))


def chat_api(request: web.Request) -> ChatApi:
    if CHAT_API not in request.app:
        raise NotReady("scheduling needs the chat part of the server, which this process does not run")
    return request.app[CHAT_API]


def to_wire(request: web.Request, plan: ScheduledMeeting) -> dict[str, Any]:
    return {**plan.to_wire(), "join_url": f"{base_url(request)}/r/{plain(plan.room)}",
            "ics_url": f"{BASE}/{plan.id}.ics"}


async def check_invitees(request: web.Request, org: str, logins: tuple[str, ...]) -> None:
    """Every invitee is a person (owner, admin or member) of `org` whose account is not deactivated."""
    api = chat_api(request)
    users = await api.service.users_in(org, logins)
    accounts = await api.accounts.get_many(list(users)) if api.accounts is not None else {}
    wrong = [login for login in logins
             if (user := users.get(login)) is None or user.role not in MEMBER_ROLES
             or (login in accounts and not accounts[login].active)]
    if wrong:
        raise UnknownInvitees(f"not people of this organisation: {', '.join(wrong)}", logins=wrong)


async def caller(request: web.Request) -> User:
    """The chat user calling (not a meeting token), for a read."""
    return (await chat_api(request).who(request)).user


async def writer(request: web.Request) -> Principal:
    """The chat user calling, for a write: one chat-write token of the rate limiter."""
    return await chat_api(request).who(request, write=True)


def charge(request: web.Request, person: Principal, notices: list[Notice]) -> None:
    """One more chat-write token per direct message the write is about to send, taken before anything is stored
    (429 rate_limited leaves the plan as it was)."""
    count = recipients(notices, person.user.login)
    if count:
        chat_api(request).limiter.take(person.rate_key, cost=count)


async def visible_plan(request: web.Request, user: User) -> ScheduledMeeting:
    """The path's plan, when the caller organises it, is invited, or is an admin of its organisation."""
    schedule_id = request.match_info["id"]
    plan = await request.app[SCHEDULE].get(schedule_id, user.org) if SCHEDULE_ID.match(schedule_id) else None
    if plan is None or not (plan.reaches(user.login) or user.role in MODERATING_ROLES):
        raise ScheduledMeetingNotFound(f"no scheduled meeting {schedule_id!r}")
    return plan


def audited(plan: ScheduledMeeting) -> dict[str, Any]:
    """What the audit log keeps of a plan (docs/audit.md)."""
    return {"room": plain(plan.room), "title": plan.title, "organizer": plan.organizer, "starts_at": plan.starts_at,
            "duration_minutes": plan.duration_minutes, "invitees": list(plan.invitees)}


async def audit(request: web.Request, verb: str, old: ScheduledMeeting | None, new: ScheduledMeeting | None) -> None:
    if AUDIT in request.app:
        plan = new or old
        assert plan is not None
        await request.app[AUDIT].record(AuditEvent(
            f"scheduled_meeting.{verb}", "scheduled_meeting", plan.id, before=audited(old) if old else None,
            after=audited(new) if new else None, org_id=plan.org))


def require_organizer(plan: ScheduledMeeting, user: User) -> None:
    if user.login != plan.organizer and user.role not in MODERATING_ROLES:
        raise Forbidden("only the organiser or an admin changes or cancels a scheduled meeting")


async def create_plan(request: web.Request) -> web.Response:
    person = await writer(request)
    user = person.user
    if user.role not in MEMBER_ROLES:
        raise NotPermitted(f"a {user.role} does not schedule meetings", role=user.role)
    await check_may_start_meeting(request, user)
    body = await read_json_object(request, allowed=FIELDS)
    require_fields(body, "title", "starts_at", "duration_minutes")
    fields = parse_fields(body, user.login)
    room = valid_room_name(body["room"], field="room") if "room" in body else random_room()
    invitees = fields.invitees or ()
    await check_invitees(request, user.org, invitees)
    assert fields.title is not None and fields.starts_at is not None and fields.duration_minutes is not None
    plan = ScheduledMeeting(
        id=new_schedule_id(), room=qualify(user.org, room), title=fields.title, organizer=user.login,
        starts_at=fields.starts_at, duration_minutes=fields.duration_minutes, invitees=invitees,
        timezone=fields.timezone or "")
    notices = [Notice(invitees, invitation(plan, user, to_wire(request, plan)["join_url"]))]
    charge(request, person, notices)
    plan = await request.app[SCHEDULE].create(plan)
    await audit(request, "create", None, plan)
    out = to_wire(request, plan)
    notified = await send(chat_api(request).service, user, notices)
    log.info("scheduled meeting %s by %s: %d invitees", plan.id[:8], user.login, len(invitees))
    return web.json_response({**out, "notified": notified}, status=201)


def list_bound(value: str | None, field: str, default: float) -> float:
    return default if value is None else parse_rfc3339(value, field)


async def list_plans(request: web.Request) -> web.Response:
    user = await caller(request)
    unknown = sorted(set(request.query) - {"from", "to"})
    if unknown:
        raise BadRequest(f"unknown parameters: {', '.join(unknown)}", fields=unknown)
    start = list_bound(request.query.get("from"), "from", time.time())
    end = list_bound(request.query.get("to"), "to", start + LIST_DAYS_DEFAULT * 86400)
    if not start < end <= start + AHEAD_MAX_SECONDS:
        raise InvalidField("to must be after from, at most 366 days", field="to")
    plans = await request.app[SCHEDULE].of_person(user.org, user.login, start, end, LIST_LIMIT)
    return web.json_response({"meetings": [to_wire(request, p) for p in plans]})


async def get_plan(request: web.Request) -> web.Response:
    user = await caller(request)
    return web.json_response(to_wire(request, await visible_plan(request, user)))


async def get_ics(request: web.Request) -> web.Response:
    user = await caller(request)
    plan = await visible_plan(request, user)
    organizer = await chat_api(request).service.user_in(plan.org, plan.organizer)
    text = event_calendar(plan, to_wire(request, plan)["join_url"], request.url.host or "convene",
                          organizer.name if organizer is not None and organizer.name else plan.organizer)
    return web.Response(body=text.encode("utf-8"), content_type="text/calendar", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{plan.id}.ics"'})


async def patch_plan(request: web.Request) -> web.Response:
    person = await writer(request)
    user = person.user
    plan = await visible_plan(request, user)
    require_organizer(plan, user)
    body = await read_json_object(request, allowed=CHANGEABLE)
    if not body:
        raise BadRequest("nothing to change: give title, starts_at, duration_minutes, invitees or timezone")
    fields = parse_fields(body, plan.organizer)
    if fields.invitees is not None:
        await check_invitees(request, plan.org, fields.invitees)
    changed_plan = replace(
        plan, title=fields.title or plan.title, starts_at=fields.starts_at or plan.starts_at,
        duration_minutes=fields.duration_minutes or plan.duration_minutes,
        invitees=plan.invitees if fields.invitees is None else tuple(sorted(fields.invitees)),
        timezone=plan.timezone if fields.timezone is None else fields.timezone)
    notices = change_notices(plan, changed_plan, user, to_wire(request, changed_plan)["join_url"])
    charge(request, person, notices)
    new = await request.app[SCHEDULE].save(changed_plan, plan)
    await audit(request, "update", plan, new)
    notified = await send(chat_api(request).service, user, notices)
    return web.json_response({**to_wire(request, new), "notified": notified})


def change_notices(old: ScheduledMeeting, new: ScheduledMeeting, sender: User, join_url: str) -> list[Notice]:
    """New invitees get the invitation, removed ones a cancellation, the others word of a new time or title; when
    an admin changed someone's plan, its organiser hears of it too. All from `sender`, who made the change."""
    added = tuple(login for login in new.invitees if login not in old.invitees)
    removed = tuple(login for login in old.invitees if login not in new.invitees)
    kept = tuple(login for login in new.invitees if login in old.invitees)
    moved = (old.title, old.starts_at, old.duration_minutes) != (new.title, new.starts_at, new.duration_minutes)
    told = [Notice(added, invitation(new, sender, join_url)), Notice(removed, cancelled(old, sender))]
    if moved:
        told.append(Notice(kept, changed(new, sender, join_url)))
    if sender.login != new.organizer:
        told.append(Notice((new.organizer,), changed(new, sender, join_url)))
    return told


async def delete_plan(request: web.Request) -> web.Response:
    person = await writer(request)
    user = person.user
    plan = await visible_plan(request, user)
    require_organizer(plan, user)
    told = plan.invitees + ((plan.organizer,) if user.login != plan.organizer else ())
    notices = [Notice(told, cancelled(plan, user))]
    charge(request, person, notices)
    await request.app[SCHEDULE].delete(plan)
    await audit(request, "delete", plan, None)
    notified = await send(chat_api(request).service, user, notices)
    return web.json_response({"deleted": plan.id, "notified": notified})


def setup(app: web.Application, store: ScheduleStore) -> None:
    """Before the meeting records' routes: `/v1/meetings/{meeting_id}` would take `scheduled` for an id."""
    app[SCHEDULE] = store
    app.router.add_post(BASE, create_plan)
    app.router.add_get(BASE, list_plans)
    app.router.add_get(BASE + "/{id}.ics", get_ics)
    app.router.add_get(BASE + "/{id}", get_plan)
    app.router.add_patch(BASE + "/{id}", patch_plan)
    app.router.add_delete(BASE + "/{id}", delete_plan)


def openapi_part() -> dict[str, Any]:
    text, error = {"type": "string"}, {"description": "error ({error: {code, message}}, stable codes)", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    when = {"type": "string", "description": "RFC 3339 with an offset, e.g. 2026-12-02T09:00:00+01:00"}
    fields = {"title": {"type": "string", "minLength": 1, "maxLength": TITLE_MAX}, "starts_at": when,
              "duration_minutes": {"type": "integer", "minimum": DURATION_MIN, "maximum": DURATION_MAX},
              "invitees": {"type": "array", "maxItems": INVITEES_MAX, "items": text},
              "timezone": {"type": ["string", "null"], "description": "IANA zone, for the notices' times"}}
    plan = {"type": "object", "required": ["id", "room", "title", "organizer", "starts_at", "ends_at",
                                           "duration_minutes", "invitees", "join_url", "ics_url"],
            "properties": {**fields, "id": text, "room": text, "organizer": text, "ends_at": text,
                           "created_at": text, "updated_at": text, "sequence": {"type": "integer"},
                           "join_url": text, "ics_url": text, "notified": {"type": "array", "items": text}}}
    ident = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string",
                                                                       "pattern": SCHEDULE_ID.pattern}}]

    def op(summary: str, ok: dict[str, Any], status: str = "200", **extra: Any) -> dict[str, Any]:
        return {"summary": summary, "tags": ["meetings"], **extra,
                "responses": {status: ok, **{c: error for c in ("400", "401", "403", "404", "409", "429", "503")},
                              "default": error}}

    def body(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": props, "required": required, "additionalProperties": False}}}}

    def json_ok(schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": "ok", "content": {"application/json": {"schema": schema}}}

    who = ("a chat user: session cookie (X-CSRF-Token on writes), user token, or an API key as its own user; "
           "meeting and record tokens 403 out_of_scope")
    return {"paths": {
        BASE: {
            "post": op(f"Schedule a meeting ({who}; start_meeting): room (default: a new random one), title, "
                       "starts_at, duration_minutes, invitees (people of the organiser's organisation, else 400 "
                       "unknown_invitees naming them in details.logins), timezone. Each invitee gets a direct "
                       "message from the organiser; `notified` lists who. 409 room_already_planned when another "
                       "plan's window (15 minutes before its start to its end) overlaps in the room, 409 "
                       "room_in_use when a meeting is going on there, 409 too_many_scheduled_meetings past "
                       f"{PER_ORGANIZER_MAX} plans that have not ended (details.limit); 429 rate_limited: one chat "
                       "write for the request and one per notice", json_ok(plan), "201",
                       requestBody=body({**fields, "room": text}, ["title", "starts_at", "duration_minutes"])),
            "get": op(f"The scheduled meetings the caller organises or is invited to that overlap from..to "
                      f"(default: now to 30 days on; at most 366 days), by start ({who})",
                      json_ok({"type": "object", "required": ["meetings"], "properties": {
                          "meetings": {"type": "array", "items": plan}}}),
                      parameters=[{"name": n, "in": "query", "required": False, "schema": when}
                                  for n in ("from", "to")])},
        BASE + "/{id}": {
            "get": op(f"One scheduled meeting (its organiser, invitees and the organisation's admins; others 404 "
                      f"scheduled_meeting_not_found) ({who})", json_ok(plan), parameters=ident),
            "patch": op(f"Change title, starts_at, duration_minutes, invitees (replaces the list) or timezone (the "
                        f"organiser or an admin; invitees 403 forbidden). New invitees are invited, removed ones "
                        f"told it is cancelled, the others told of a new time or title, all from the caller (an "
                        f"admin's change also tells the organiser); a new time is checked as on POST (409) ({who})",
                        json_ok(plan),
                        parameters=ident, requestBody=body(fields, [])),
            "delete": op(f"Cancel it (the organiser or an admin); the invitees are told by the caller (and the "
                         f"organiser, when an admin cancelled it) ({who})",
                         json_ok({"type": "object", "required": ["deleted"], "properties": {
                             "deleted": text, "notified": {"type": "array", "items": text}}}), parameters=ident)},
        BASE + "/{id}.ics": {
            "get": op(f"The scheduled meeting as an iCalendar (RFC 5545) VEVENT, times in UTC, its join link "
                      f"without a token ({who})", {"description": "text/calendar", "content": {
                          "text/calendar": {"schema": text}}}, parameters=ident)},
    }}
