"""Scheduled meetings (#10) on a real server: plan, list, change and cancel over REST; the invitees hear of it in
their direct chat with the organiser; the .ics reads back in a real RFC 5545 parser (the `icalendar` package);
invitees are checked (people of the organiser's organisation only, unknown ones named); what the caller neither
organises nor is invited to, and another organisation's, answers 404; and the organiser (and whoever started a
meeting) moderates it again on rejoining signed in, which the ledger now remembers."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chat.web import CHAT_API
from identity.appkeys import MEETINGS
from identity.appkeys import ORGS as IDENTITY_ORGS
from tests.conftest import RunningServer, running_server, server_config

PASSWORD = "correct horse battery staple"
PEOPLE = {"olga": "owner", "ann": "member", "ben": "member", "cat": "member", "dan": "member"}
ACME = "acme.test"


def at(seconds_from_now: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds_from_now, UTC).replace(microsecond=0).isoformat()


@dataclass
class World:
    server: RunningServer
    http: aiohttp.ClientSession
    tokens: dict[str, str]

    async def call(self, method: str, path: str, who: str | None, body: Any = None,
                   host: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}
        if who is not None and who.startswith("cvk_"):
            headers = {"Authorization": f"Bearer {who}"}
        if host:
            headers["Host"] = host
        async with self.http.request(method, self.server.url + path, json=body, headers=headers) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()

    async def ok(self, method: str, path: str, who: str, body: Any = None, status: int = 200,
                 host: str | None = None) -> Any:
        got, answer = await self.call(method, path, who, body, host)
        assert got == status, (method, path, who, got, answer)
        return answer

    async def refused(self, method: str, path: str, who: str | None, body: Any, status: int, code: str) -> Any:
        got, answer = await self.call(method, path, who, body)
        assert (got, answer["error"]["code"]) == (status, code), (method, path, who, body, got, answer)
        return answer["error"]

    async def direct_texts(self, a: str, b: str) -> list[str]:
        """What `a` wrote in the direct chat of `a` and `b`, read as `b` over REST."""
        channels = (await self.ok("GET", "/v1/channels", b))["channels"]
        direct = [c for c in channels if c["kind"] == "direct" and c["name"] == "dm:" + ":".join(sorted((a, b)))]
        if not direct:
            return []
        messages = (await self.ok("GET", f"/v1/channels/{direct[0]['id']}/messages", b))["messages"]
        return [m["content"] for m in messages if m["author"] == a]


@pytest.fixture
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    """A server on SQLite, or on a real PostgreSQL (tests/postgres.py) for tests parametrized `postgres`."""
    backend = getattr(request, "param", "sqlite")
    url = request.getfixturevalue("postgres").create_database() if backend == "postgres" else None
    async with running_server(server_config(tmp_path / "data", database_url=url)) as server, aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar()) as http:
        api = server.app[CHAT_API]
        assert api.accounts is not None
        for login, role in PEOPLE.items():
            await api.service.add_user(None, login, role, name=login.title())
            await api.accounts.set_password(login, PASSWORD)
        await api.service.add_user(None, "robot", "bot")
        await server.app[IDENTITY_ORGS].add("acme", [ACME])
        await api.service.add_user(None, "alice", "owner", org="acme")
        await api.accounts.set_password("alice", PASSWORD)
        world = World(server, http, {})
        for login in [*PEOPLE, "alice"]:
            signed = await world.ok("POST", "/v1/auth/login", login, {"login": login, "password": PASSWORD},
                                    host=ACME if login == "alice" else None)
            world.tokens[login] = signed["token"]
        yield world


def plan_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"title": "Design review", "starts_at": at(2 * 3600), "duration_minutes": 30,
                            "invitees": ["ben"], "timezone": "Europe/Berlin"}
    body.update(over)
    return body


BOTH_STORES = pytest.mark.parametrize("world", ["sqlite", "postgres"], indirect=True)


@BOTH_STORES
async def test_plan_list_change_cancel_and_the_invitees_hear_of_it(world: World) -> None:
    made = await world.ok("POST", "/v1/meetings/scheduled", "ann", plan_body(), status=201)
    plan_id = made["id"]
    assert plan_id.startswith("sm_") and len(plan_id) == 25  # 128 random bits
    assert made["organizer"] == "ann" and made["invitees"] == ["ben"] and made["notified"] == ["ben"]
    assert made["join_url"] == f"{world.server.url}/r/{made['room']}" and "token" not in made["join_url"]
    assert made["ends_at"] > made["starts_at"] and made["timezone"] == "Europe/Berlin"
    invite = await world.direct_texts("ann", "ben")
    assert len(invite) == 1 and "Design review" in invite[0] and made["join_url"] in invite[0]
    assert "(Europe/Berlin)" in invite[0]

    window = f"?from={at(-60).replace('+', '%2B')}&to={at(86400).replace('+', '%2B')}"
    for who, sees in (("ann", True), ("ben", True), ("cat", False)):
        listed = (await world.ok("GET", "/v1/meetings/scheduled" + window, who))["meetings"]
        assert [m["id"] for m in listed] == ([plan_id] if sees else []), who
    assert (await world.ok("GET", f"/v1/meetings/scheduled/{plan_id}", "ben"))["title"] == "Design review"
    await world.refused("GET", f"/v1/meetings/scheduled/{plan_id}", "cat", None, 404, "scheduled_meeting_not_found")
    await world.ok("GET", f"/v1/meetings/scheduled/{plan_id}", "olga")  # an admin of the organisation
    # Outside the window: not listed (the default window is now to 30 days on).
    later = f"?from={at(3 * 86400).replace('+', '%2B')}"
    assert (await world.ok("GET", "/v1/meetings/scheduled" + later, "ben"))["meetings"] == []

    # Only the organiser (or an admin) changes it; invitees get 403, others 404.
    await world.refused("PATCH", f"/v1/meetings/scheduled/{plan_id}", "ben", {"title": "Mine now"}, 403, "forbidden")
    await world.refused("PATCH", f"/v1/meetings/scheduled/{plan_id}", "cat", {"title": "x"}, 404,
                        "scheduled_meeting_not_found")
    moved = await world.ok("PATCH", f"/v1/meetings/scheduled/{plan_id}", "ann",
                           {"starts_at": at(3 * 3600), "invitees": ["ben", "cat"]})
    assert moved["sequence"] == 1 and moved["invitees"] == ["ben", "cat"] and sorted(moved["notified"]) == ["ben", "cat"]
    assert moved["room"] == made["room"] and moved["starts_at"] != made["starts_at"]
    assert "changed" in (await world.direct_texts("ann", "ben"))[-1]
    assert "invited you" in (await world.direct_texts("ann", "cat"))[-1]
    assert [m["id"] for m in (await world.ok("GET", "/v1/meetings/scheduled", "cat"))["meetings"]] == [plan_id]
    renamed = await world.ok("PATCH", f"/v1/meetings/scheduled/{plan_id}", "olga", {"title": "Design review II"})
    assert renamed["title"] == "Design review II" and renamed["organizer"] == "ann"

    await world.refused("DELETE", f"/v1/meetings/scheduled/{plan_id}", "cat", None, 403, "forbidden")
    gone = await world.ok("DELETE", f"/v1/meetings/scheduled/{plan_id}", "ann")
    assert gone["deleted"] == plan_id and sorted(gone["notified"]) == ["ben", "cat"]
    assert "cancelled" in (await world.direct_texts("ann", "ben"))[-1]
    await world.refused("GET", f"/v1/meetings/scheduled/{plan_id}", "ann", None, 404, "scheduled_meeting_not_found")
    assert (await world.ok("GET", "/v1/meetings/scheduled", "ben"))["meetings"] == []

    # The audit log has who planned, changed and cancelled it.
    status, log = await world.call("GET", "/v1/audit?format=ndjson", "olga")
    assert status == 200
    rows = [json.loads(line)["event"] for line in log.splitlines() if '"scheduled_meeting.' in line]
    assert [(r["event"], r["actor"]["login"]) for r in rows] == [
        ("scheduled_meeting.create", "ann"), ("scheduled_meeting.update", "ann"),
        ("scheduled_meeting.update", "olga"), ("scheduled_meeting.delete", "ann")]
    assert rows[1]["before"]["invitees"] == ["ben"] and rows[1]["after"]["invitees"] == ["ben", "cat"]


async def test_what_a_plan_may_hold(world: World) -> None:
    url = "/v1/meetings/scheduled"
    bad = {
        "title": [None, "", "x" * 201, "two\nlines"],
        "starts_at": ["2026-12-02T09:00:00", "tomorrow", at(-3600), at(400 * 86400), 1767000000],
        "duration_minutes": [0, 4, 24 * 60 + 1, "30", True],
        "invitees": ["ben", [5], [f"user{i}" for i in range(101)]],
        "timezone": ["Mars/Olympus", "../../etc/passwd", 3],
        "room": ["no spaces", ""],
    }
    for field, values in bad.items():
        for value in values:
            error = await world.refused("POST", url, "ann", plan_body(**{field: value}), 400, "invalid_field")
            assert error["details"]["field"] == field, (field, value, error)
    for field in ("title", "starts_at", "duration_minutes"):
        body = plan_body()
        del body[field]
        await world.refused("POST", url, "ann", body, 400, "invalid_field")
    await world.refused("POST", url, "ann", plan_body(colour="red"), 400, "bad_request")

    # Invitees: people of the organiser's organisation; every other login is named.
    error = await world.refused("POST", url, "ann", plan_body(invitees=["ben", "ghost", "robot", "alice"]), 400,
                                "unknown_invitees")
    assert error["details"]["logins"] == ["ghost", "robot", "alice"]
    api = world.server.app[CHAT_API]
    assert api.accounts is not None
    await api.accounts.disable("dan")  # a deactivated account is no invitee either
    error = await world.refused("POST", url, "ann", plan_body(invitees=["dan"]), 400, "unknown_invitees")
    assert error["details"]["logins"] == ["dan"]

    # Who may plan: people holding start_meeting (an API key plans as its own user); not anonymous callers.
    by_key = await world.ok("POST", url, world.server.api_key, plan_body(), status=201)
    assert by_key["organizer"] == "tests" and by_key["notified"] == ["ben"]
    await world.refused("POST", url, None, plan_body(), 401, "unauthorized")
    await world.ok("PUT", "/v1/admin/permissions", "olga", {"start_meeting": ["owner", "admin"]})
    error = await world.refused("POST", url, "ann", plan_body(), 403, "not_permitted")
    assert error["details"]["permission"] == "start_meeting"
    await world.ok("POST", url, "olga", plan_body(), status=201)
    # The list's window: RFC 3339 with an offset, `to` after `from`, nothing else asked.
    await world.refused("GET", url + "?from=yesterday", "ann", None, 400, "invalid_field")
    await world.refused("GET", url + f"?from={at(0).replace('+', '%2B')}&to={at(-60).replace('+', '%2B')}", "ann",
                        None, 400, "invalid_field")
    await world.refused("GET", url + "?colour=red", "ann", None, 400, "bad_request")
    await world.refused("GET", url + "/sm_notavalidid", "ann", None, 404, "scheduled_meeting_not_found")


async def test_the_ics_reads_back_in_an_rfc_5545_parser(world: World) -> None:
    icalendar = pytest.importorskip("icalendar")
    title = "Q4 plan; budget, hiring \\ 季度计划 — a long title that has to be folded across several lines of text"
    made = await world.ok("POST", "/v1/meetings/scheduled", "ann", plan_body(title=title, duration_minutes=45),
                          status=201)
    status, text = await world.call("GET", f"/v1/meetings/scheduled/{made['id']}.ics", "ben")
    assert status == 200
    raw = text.encode("utf-8")
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))  # folded at 75 octets
    assert "token" not in text.lower()
    calendar = icalendar.Calendar.from_ical(text)
    assert str(calendar["VERSION"]) == "2.0" and str(calendar["PRODID"]).startswith("-//Convene//")
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    event = events[0]
    assert str(event["SUMMARY"]) == title
    starts = datetime.fromisoformat(made["starts_at"].replace("Z", "+00:00"))
    assert event.decoded("DTSTART") == starts
    assert (event.decoded("DTEND") - event.decoded("DTSTART")).total_seconds() == 45 * 60
    assert str(event["URL"]) == made["join_url"] and str(event["LOCATION"]) == made["join_url"]
    assert str(event["UID"]).startswith(made["id"] + "@")
    assert int(event["SEQUENCE"]) == 0 and "Ann" in str(event["DESCRIPTION"])
    await world.refused("GET", f"/v1/meetings/scheduled/{made['id']}.ics", "cat", None, 404,
                        "scheduled_meeting_not_found")
    # A change shows in the next download (a calendar that imports it again sees SEQUENCE move on).
    await world.ok("PATCH", f"/v1/meetings/scheduled/{made['id']}", "ann", {"duration_minutes": 60})
    _, again = await world.call("GET", f"/v1/meetings/scheduled/{made['id']}.ics", "ann")
    event = icalendar.Calendar.from_ical(again).walk("VEVENT")[0]
    assert int(event["SEQUENCE"]) == 1
    assert (event.decoded("DTEND") - event.decoded("DTSTART")).total_seconds() == 3600


async def test_another_organisation_sees_nothing(world: World) -> None:
    ours = await world.ok("POST", "/v1/meetings/scheduled", "ann", plan_body(), status=201)
    theirs = await world.ok("POST", "/v1/meetings/scheduled", "alice", plan_body(invitees=[]), status=201, host=ACME)
    assert theirs["join_url"].startswith("http://acme.test")
    for path in (f"/v1/meetings/scheduled/{ours['id']}", f"/v1/meetings/scheduled/{ours['id']}.ics"):
        status, body = await world.call("GET", path, "alice", host=ACME)
        assert (status, body["error"]["code"]) == (404, "scheduled_meeting_not_found")
    status, body = await world.call("DELETE", f"/v1/meetings/scheduled/{ours['id']}", "alice", host=ACME)
    assert (status, body["error"]["code"]) == (404, "scheduled_meeting_not_found")
    await world.refused("GET", f"/v1/meetings/scheduled/{theirs['id']}", "olga", None, 404,
                        "scheduled_meeting_not_found")
    listed = (await world.ok("GET", "/v1/meetings/scheduled", "alice", host=ACME))["meetings"]
    assert [m["id"] for m in listed] == [theirs["id"]]
    # Same room name in both organisations, kept apart.
    assert (await world.ok("GET", f"/v1/meetings/scheduled/{ours['id']}", "ann"))["title"] == "Design review"


async def join(world: World, who: str, room: str) -> dict[str, Any]:
    answer: dict[str, Any] = await world.ok("POST", f"/v1/rooms/{room}/join-as-member", who, status=201)
    return answer


@BOTH_STORES
async def test_the_organiser_and_the_starter_moderate_again_when_they_rejoin(world: World) -> None:
    made = await world.ok("POST", "/v1/meetings/scheduled", "ann",
                          plan_body(room="weekly-sync", starts_at=at(5 * 60), invitees=["ben"]), status=201)
    assert made["room"] == "weekly-sync"
    # Ben, invited, comes first: he starts the meeting (its starter moderates); the ledger names the organiser.
    first = await join(world, "ben", "weekly-sync")
    assert first["started"] and first["moderator"]
    live = await world.server.app[MEETINGS].live("weekly-sync")
    assert live is not None and (live.started_by, live.organizer) == ("ben", "ann")
    # Ann, the organiser, joins and moderates; reopening her tab (a new join) she still does.
    for _ in range(2):
        again = await join(world, "ann", "weekly-sync")
        assert not again["started"] and again["moderator"] and again["meeting_id"] == live.meeting_id
    # Cat, a member who is not invited, joins the live meeting as a participant.
    assert not (await join(world, "cat", "weekly-sync"))["moderator"]
    # The gap this fixes, without any schedule: who started a meeting moderates it again when they come back.
    opened = await join(world, "cat", "ad-hoc")
    assert opened["started"] and opened["moderator"]
    assert not (await join(world, "dan", "ad-hoc"))["moderator"]
    back = await join(world, "cat", "ad-hoc")
    assert back["moderator"] and not back["started"]


async def test_invitees_may_open_a_planned_meeting_without_start_meeting(world: World) -> None:
    await world.ok("POST", "/v1/meetings/scheduled", "ann",
                   plan_body(room="board", starts_at=at(5 * 60), invitees=["ben"]), status=201)
    await world.ok("PUT", "/v1/admin/permissions", "olga", {"start_meeting": ["owner", "admin"]})
    # Ben may not start meetings, but this one's window is open and he is invited.
    assert (await join(world, "ben", "board"))["started"]
    await world.refused("POST", "/v1/rooms/elsewhere/join-as-member", "cat", None, 403, "not_permitted")
