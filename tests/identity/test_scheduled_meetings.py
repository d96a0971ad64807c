"""Scheduled meetings (#10) on a real server: plan, list, change and cancel over REST; the invitees hear of it in
their direct chat with the organiser; the .ics reads back in a real RFC 5545 parser (the `icalendar` package);
invitees are checked (people of the organiser's organisation only, unknown ones named); what the caller neither
organises nor is invited to, and another organisation's, answers 404; the organiser (and whoever started a
meeting) moderates it again on rejoining signed in, which the ledger now remembers, and only the ledger: a plan
made for someone else's live meeting is refused and would grant nothing; a room holds one plan at a time (also
when two people ask at once); an organiser's plans are capped; notices are charged to the rate limiter one per
recipient; an admin's change is told in the admin's name."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chat.web import CHAT_API
from common.errors import RateLimited
from common.ratelimit import RateLimiter
from identity.appkeys import MEETINGS
from identity.appkeys import ORGS as IDENTITY_ORGS
from identity.schedule import PER_ORGANIZER_MAX, ScheduledMeeting, new_schedule_id
from signaling.appkeys import SCHEDULE
from store.schema import scheduled_meetings as plans_t
from tests.conftest import RunningServer, running_server, server_config
from tests.postgres import PostgresServer

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


@contextlib.asynccontextmanager
async def make_world(data_dir: Path, database_url: str | None = None) -> AsyncIterator[World]:
    """A real server with PEOPLE signed in (and alice of organisation acme)."""
    async with running_server(server_config(data_dir, database_url=database_url)) as server, aiohttp.ClientSession(
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


@pytest.fixture
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    """A server on SQLite, or on a real PostgreSQL (tests/postgres.py) for tests parametrized `postgres`."""
    backend = getattr(request, "param", "sqlite")
    url = request.getfixturevalue("postgres").create_database() if backend == "postgres" else None
    async with make_world(tmp_path / "data", url) as world:
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


async def test_a_plan_on_someone_elses_live_meeting_is_refused_and_grants_nothing(world: World) -> None:
    # The reviewer's scenario: cat starts ceo-allhands, dan joins it as a participant and plans his own meeting on
    # the same room starting now, then rejoins hoping to moderate.
    assert (await join(world, "cat", "ceo-allhands"))["moderator"]
    assert not (await join(world, "dan", "ceo-allhands"))["moderator"]
    error = await world.refused("POST", "/v1/meetings/scheduled", "dan",
                                plan_body(room="ceo-allhands", starts_at=at(0), duration_minutes=5, invitees=[]),
                                409, "room_in_use")
    assert error["details"]["room"] == "ceo-allhands"
    assert not (await join(world, "dan", "ceo-allhands"))["moderator"]
    assert (await world.ok("GET", "/v1/meetings/scheduled", "dan"))["meetings"] == []
    # Even a plan that got there some other way (written straight into the store here, as one whose window
    # opened while cat's meeting went on) gives its organiser nothing: moderation comes from the ledger only.
    now = time.time()
    await world.server.app[SCHEDULE].db.write(lambda conn: conn.execute(plans_t.insert().values(
        id=new_schedule_id(), org_id="default", room="ceo-allhands", title="mine", organizer="dan", starts_at=now,
        duration_minutes=5, timezone="", created_at=now, updated_at=now, sequence=0)))
    assert (await world.server.app[SCHEDULE].open_in_room("ceo-allhands", time.time())) is not None
    again = await join(world, "dan", "ceo-allhands")
    assert not again["moderator"] and not again["started"]
    live = await world.server.app[MEETINGS].live("ceo-allhands")
    assert live is not None and (live.started_by, live.organizer) == ("cat", None)
    assert (await join(world, "cat", "ceo-allhands"))["moderator"]  # the starter still does


@BOTH_STORES
async def test_a_room_holds_one_plan_at_a_time(world: World) -> None:
    url = "/v1/meetings/scheduled"
    ann = await world.ok("POST", url, "ann", plan_body(room="weekly", starts_at=at(2 * 3600), duration_minutes=30),
                         status=201)
    # Overlapping ann's window (15 minutes before her start to her end): refused, whoever asks.
    for who, start, minutes in (("ben", 2 * 3600 + 15 * 60, 30), ("cat", 3600 + 50 * 60, 15), ("olga", 2 * 3600, 5)):
        error = await world.refused("POST", url, who, plan_body(room="weekly", starts_at=at(start),
                                                                 duration_minutes=minutes, invitees=[]),
                                    409, "room_already_planned")
        assert "scheduled_id" not in error.get("details", {})  # which plan is not said
    # Windows that only touch are fine: ben's opens (15 minutes early) as ann's ends.
    ben = await world.ok("POST", url, "ben", plan_body(room="weekly", starts_at=at(2 * 3600 + 45 * 60),
                                                       duration_minutes=30, invitees=[]), status=201)
    # Another room at the same time, and the same room name in another organisation, are other rooms.
    await world.ok("POST", url, "cat", plan_body(room="weekly-2", starts_at=at(2 * 3600), invitees=[]), status=201)
    await world.ok("POST", url, "alice", plan_body(room="weekly", starts_at=at(2 * 3600), invitees=[]), status=201,
                   host=ACME)
    # Moving a plan onto another's time is refused the same way and changes nothing; a change that does not move
    # it (the title), or a move to a free time, is fine.
    await world.refused("PATCH", f"{url}/{ben['id']}", "ben", {"starts_at": at(2 * 3600 + 20 * 60)}, 409,
                        "room_already_planned")
    assert (await world.ok("GET", f"{url}/{ben['id']}", "ben"))["starts_at"] == ben["starts_at"]
    await world.ok("PATCH", f"{url}/{ann['id']}", "ann", {"title": "Weekly, renamed"})
    await world.ok("PATCH", f"{url}/{ben['id']}", "ben", {"starts_at": at(5 * 3600)})
    # Two people asking for the same free slot at once: the check is in the insert's transaction, one wins.
    answers = await asyncio.gather(*(world.call("POST", url, who, plan_body(
        room="contested", starts_at=at(4 * 3600), invitees=[])) for who in ("ann", "ben", "cat", "dan")))
    assert sorted(status for status, _ in answers) == [201, 409, 409, 409], answers
    assert {body["error"]["code"] for status, body in answers if status == 409} == {"room_already_planned"}


async def test_a_plan_moves_while_its_own_meeting_goes_on_but_not_onto_anothers(world: World) -> None:
    url = "/v1/meetings/scheduled"
    made = await world.ok("POST", url, "ann", plan_body(room="standup", starts_at=at(60), duration_minutes=15),
                          status=201)
    assert (await join(world, "ann", "standup"))["started"]
    live = await world.server.app[MEETINGS].live("standup")
    assert live is not None and live.organizer == "ann"
    # Her meeting runs long: she stretches the plan, which its own live meeting does not stop.
    assert (await world.ok("PATCH", f"{url}/{made['id']}", "ann", {"duration_minutes": 45}))["duration_minutes"] == 45
    # Nobody plans the room while that meeting goes on, not even for tomorrow.
    await world.refused("POST", url, "ben", plan_body(room="standup", starts_at=at(86400), invitees=[]), 409,
                        "room_in_use")
    # A plan of ben's is not moved onto a room in use by a meeting it did not start.
    assert (await join(world, "cat", "retro"))["started"]
    other = await world.ok("POST", url, "ben", plan_body(room="quiet", starts_at=at(3600), invitees=[]), status=201)
    assert other["room"] == "quiet"
    await world.refused("POST", url, "ben", plan_body(room="retro", starts_at=at(3600), invitees=[]), 409,
                        "room_in_use")


async def test_an_organisers_plans_are_capped(world: World) -> None:
    store = world.server.app[SCHEDULE]
    base = time.time() + 86400

    def plan(i: int, starts_at: float) -> ScheduledMeeting:
        return ScheduledMeeting(id=new_schedule_id(), room=f"cap-{i}", title=f"plan {i}", organizer="ann",
                                starts_at=starts_at, duration_minutes=30, invitees=())
    # One short of the cap straight into the store (the same store the server uses), plus one that has ended,
    # which does not count.
    await asyncio.gather(*(store.create(plan(i, base + i * 3600)) for i in range(PER_ORGANIZER_MAX - 1)))
    await store.create(plan(-1, time.time() - 7200))
    url = "/v1/meetings/scheduled"
    last = await world.ok("POST", url, "ann", plan_body(invitees=[]), status=201)
    error = await world.refused("POST", url, "ann", plan_body(invitees=[]), 409, "too_many_scheduled_meetings")
    assert error["details"]["limit"] == PER_ORGANIZER_MAX
    await world.ok("POST", url, "ben", plan_body(invitees=[]), status=201)  # per organiser: ben is not ann
    await world.ok("DELETE", f"{url}/{last['id']}", "ann")
    await world.ok("POST", url, "ann", plan_body(invitees=[]), status=201)


async def test_notices_are_charged_one_per_recipient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A chat limiter of 6 with (almost) no refill: the plan with four invitees costs 1 + 4.
    monkeypatch.setenv("CONVENE_CHAT_RATE", "0.001")
    monkeypatch.setenv("CONVENE_CHAT_BURST", "6")
    async with make_world(tmp_path / "data") as world:
        await charged_per_recipient(world)


async def charged_per_recipient(world: World) -> None:
    made = await world.ok("POST", "/v1/meetings/scheduled", "ann",
                          plan_body(invitees=["ben", "cat", "dan", "olga"]), status=201)
    assert sorted(made["notified"]) == ["ben", "cat", "dan", "olga"]
    # Swapping the list would send four cancellations: one token left is not enough, and nothing changes.
    error = await world.refused("PATCH", f"/v1/meetings/scheduled/{made['id']}", "ann", {"invitees": []}, 429,
                                "rate_limited")
    assert error["details"]["retry_after"] > 1000
    assert (await world.ok("GET", f"/v1/meetings/scheduled/{made['id']}", "ann"))["invitees"] == made["invitees"]
    assert len(await world.direct_texts("ann", "ben")) == 1  # only the invitation
    # Another caller has a bucket of its own.
    await world.ok("POST", "/v1/meetings/scheduled", "ben", plan_body(invitees=["cat"]), status=201)


async def test_an_admins_change_is_told_in_the_admins_name(world: World) -> None:
    made = await world.ok("POST", "/v1/meetings/scheduled", "ann", plan_body(invitees=["ben"]), status=201)
    assert len(await world.direct_texts("ann", "ben")) == 1
    renamed = await world.ok("PATCH", f"/v1/meetings/scheduled/{made['id']}", "olga", {"title": "Board review"})
    assert sorted(renamed["notified"]) == ["ann", "ben"]  # the organiser hears of it too
    for who in ("ben", "ann"):
        told = await world.direct_texts("olga", who)
        assert len(told) == 1 and "Olga (admin, for ann's meeting) changed \"Board review\"" in told[0], told
    assert len(await world.direct_texts("ann", "ben")) == 1  # nothing more in ann's name
    gone = await world.ok("DELETE", f"/v1/meetings/scheduled/{made['id']}", "olga")
    assert sorted(gone["notified"]) == ["ann", "ben"]
    assert "Olga (admin, for ann's meeting) cancelled" in (await world.direct_texts("olga", "ben"))[-1]
    assert "cancelled" in (await world.direct_texts("olga", "ann"))[-1]
    assert len(await world.direct_texts("ann", "ben")) == 1


def test_a_write_worth_more_than_the_burst_passes_once_and_leaves_a_debt() -> None:
    # A plan with 100 invitees against a burst of 60 must be possible, and still cost 101 tokens.
    limiter = RateLimiter(rate=10.0, burst=60)
    limiter.take("ann", now=0.0, cost=101)
    with pytest.raises(RateLimited) as refused:
        limiter.take("ann", now=1.0)  # 60 - 101 + 10 = -31: 3.2 s more until a whole token
    assert refused.value.details["retry_after"] == pytest.approx(3.2)
    limiter.take("ann", now=4.3)
    with pytest.raises(RateLimited):
        limiter.take("ann", now=4.4, cost=60)  # a big one waits for a full bucket
    limiter.take("ann", now=10.3, cost=60)


async def test_two_servers_on_one_postgresql_give_a_slot_once(tmp_path: Path, postgres: PostgresServer) -> None:
    """Two processes' write groups check and insert at once: the advisory lock on the room makes one wait for the
    other's commit, so exactly one plan gets the slot."""
    url = postgres.create_database()
    secret = tmp_path / "token_secret"
    secret.write_text(secrets.token_hex(32))
    configs = [server_config(tmp_path / name, database_url=url, token_secret_file=secret) for name in ("a", "b")]
    async with running_server(configs[0]) as a, running_server(configs[1]) as b, aiohttp.ClientSession() as http:
        async def ask(server: RunningServer, i: int) -> tuple[int, str]:
            body = plan_body(room=f"contested-{i}", starts_at=at(4 * 3600), invitees=[])
            async with http.post(f"{server.url}/v1/meetings/scheduled", json=body,
                                 headers={"Authorization": f"Bearer {server.api_key}"}) as r:
                answer = await r.json()
                return r.status, "" if r.status == 201 else answer["error"]["code"]
        for i in range(5):  # five rooms, each asked for by both servers four times at once
            got = await asyncio.gather(*(ask(server, i) for server in (a, b) * 4))
            assert sorted(got) == [(201, "")] + [(409, "room_already_planned")] * 7, got
