"""Scheduled and recurring posts on a real server: a one-time post arrives when due, recurring posts are listed
with their next run, a cancelled post never arrives, the author's permission is checked again at send time
(a run fails with `not_a_member` after the author left the channel, `user_deactivated` after deactivation), and
admins see everyone's while members see their own."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from identity.appkeys import DATABASE
from integrations.scheduled_web import SCHEDULER
from store.schema import scheduled_posts
from tests.conftest import RunningServer, running_server, server_config


# Posts meant to fire during a test are due this far ahead: the HTTP calls that must land before the scheduler
# fires (the history check, the cancel, removing a member) take well under a second, but a loaded 2-core CI box
# can stall them for seconds; 1 s flaked there.
DUE = 6.0


def iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


class Client:
    def __init__(self, server: RunningServer, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.http = http

    async def call(self, method: str, path: str, key: str, body: Any = None, expect: int = 200) -> Any:
        async with self.http.request(method, self.server.url + path, json=body,
                                     headers={"Authorization": f"Bearer {key}"}) as r:
            got = await r.json()
            assert r.status == expect, (method, path, r.status, got)
            return got

    async def user(self, login: str) -> str:
        admin = self.server.api_key
        await self.call("POST", "/v1/users", admin, {"login": login, "role": "member"}, expect=201)
        token: str = (await self.call("POST", f"/v1/users/{login}/tokens", admin, {}, expect=201))["token"]
        return token

    async def history(self, key: str, channel: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = (await self.call("GET", f"/v1/channels/{channel}/messages", key))["messages"]
        return messages

    async def until(self, key: str, post_id: str, runs: int, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            post: dict[str, Any] = await self.call("GET", f"/v1/scheduled_posts/{post_id}", key)
            if post["runs"] >= runs and post["last_run"] is not None:
                return post
            assert time.monotonic() < deadline, f"no run of {post_id} within {timeout}s: {post}"
            await asyncio.sleep(0.1)


@pytest.fixture
async def client(tmp_path: Path) -> Any:
    async with running_server(server_config(tmp_path / "data")) as server:
        async with aiohttp.ClientSession() as http:
            yield Client(server, http)


async def team(c: Client, name: str, members: list[str]) -> str:
    made = await c.call("POST", "/v1/channels", c.server.api_key, {"kind": "team", "name": name, "members": members},
                        expect=201)
    channel_id: str = made["id"]
    return channel_id


async def test_a_one_time_post_arrives_when_due_and_its_outcome_is_stored(client: Client) -> None:
    alice = await client.user("alice")
    channel = await team(client, "standup", ["alice"])
    made = await client.call("POST", "/v1/scheduled_posts", alice,
                             {"channel": "standup", "text": "stand-up in 5", "at": iso_in(DUE)}, expect=201)
    assert made["status"] == "scheduled" and made["recurrence"] is None and made["last_run"] is None
    assert made["next_run"] == pytest.approx(time.time() + DUE, abs=1.0)
    assert not [m for m in await client.history(alice, channel) if m["content"] == "stand-up in 5"]

    post = await client.until(alice, made["id"], runs=1)
    assert post["status"] == "done" and post["next_run"] is None
    assert post["last_run"]["outcome"] == "sent" and post["last_run"]["error_code"] is None
    sent = [m for m in await client.history(alice, channel) if m["content"] == "stand-up in 5"]
    assert len(sent) == 1 and sent[0]["author"] == "alice" and sent[0]["id"] == post["last_run"]["message_id"]
    assert sent[0]["created_at"] >= made["next_run"]
    assert [r["outcome"] for r in post["history"]] == ["sent"]
    # Done: cancelling it now is refused, and it is not sent again.
    await client.call("DELETE", f"/v1/scheduled_posts/{made['id']}", alice, expect=409)
    await asyncio.sleep(1.2)
    assert len([m for m in await client.history(alice, channel) if m["content"] == "stand-up in 5"]) == 1


async def test_recurring_posts_list_their_next_run_and_cancel(client: Client) -> None:
    bob = await client.user("bob")
    await team(client, "leaderboard", ["bob"])
    made = await client.call("POST", "/v1/scheduled_posts", bob,
                             {"channel": "leaderboard", "text": "today's leaderboard", "cron": "0 18 * * 1-5",
                              "timezone": "Asia/Shanghai"}, expect=201)
    assert made["recurrence"] == {"kind": "cron", "rule": "0 18 * * 1-5", "timezone": "Asia/Shanghai"}
    next_local = datetime.fromtimestamp(made["next_run"], ZoneInfo("Asia/Shanghai"))
    assert (next_local.hour, next_local.minute) == (18, 0) and next_local.weekday() < 5
    assert made["next_run"] > time.time()
    weekly = await client.call("POST", "/v1/scheduled_posts", bob,
                               {"channel": "leaderboard", "text": "weekly", "timezone": "Europe/Berlin",
                                "rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9"}, expect=201)
    listed = (await client.call("GET", "/v1/scheduled_posts", bob))["scheduled_posts"]
    assert {p["id"] for p in listed} == {made["id"], weekly["id"]}
    assert all(p["next_run"] and p["last_run"] is None for p in listed)

    cancelled = await client.call("DELETE", f"/v1/scheduled_posts/{made['id']}", bob)
    assert cancelled["status"] == "cancelled" and cancelled["next_run"] is None
    await client.call("DELETE", f"/v1/scheduled_posts/{made['id']}", bob, expect=409)


async def test_a_cancelled_post_never_arrives(client: Client) -> None:
    cleo = await client.user("cleo")
    channel = await team(client, "cancelled", ["cleo"])
    made = await client.call("POST", "/v1/scheduled_posts", cleo,
                             {"channel": channel, "text": "never", "at": iso_in(DUE)}, expect=201)
    await client.call("DELETE", f"/v1/scheduled_posts/{made['id']}", cleo)
    await asyncio.sleep(DUE + 1.0)
    assert not [m for m in await client.history(cleo, channel) if m["content"] == "never"]
    post = await client.call("GET", f"/v1/scheduled_posts/{made['id']}", cleo)
    assert post["status"] == "cancelled" and post["runs"] == 0 and post["history"] == []


async def test_permission_is_checked_again_when_the_post_is_sent(client: Client) -> None:
    admin = client.server.api_key
    dana, eve = await client.user("dana"), await client.user("eve")
    channel = await team(client, "ops", ["dana", "eve"])
    left = await client.call("POST", "/v1/scheduled_posts", dana,
                             {"channel": "ops", "text": "from a leaver", "at": iso_in(DUE)}, expect=201)
    gone = await client.call("POST", "/v1/scheduled_posts", eve,
                             {"channel": "ops", "text": "from a deactivated user", "at": iso_in(DUE)}, expect=201)
    await client.call("POST", f"/v1/channels/{channel}/members", admin, {"remove": ["dana"]})
    await client.call("POST", "/v1/users/eve/deactivate", admin)

    left_post = await client.until(admin, left["id"], runs=1)
    assert left_post["last_run"] == {**left_post["last_run"], "outcome": "failed", "error_code": "not_a_member",
                                     "message_id": None}
    gone_post = await client.until(admin, gone["id"], runs=1)
    assert gone_post["last_run"]["outcome"] == "failed"
    assert gone_post["last_run"]["error_code"] == "user_deactivated"
    contents = {m["content"] for m in await client.history(admin, channel)}
    assert not contents & {"from a leaver", "from a deactivated user"}
    # The failed runs show in the author's list as the last outcome.
    mine = (await client.call("GET", "/v1/scheduled_posts", dana))["scheduled_posts"]
    assert [(p["id"], p["last_run"]["error_code"]) for p in mine] == [(left["id"], "not_a_member")]


async def test_members_see_their_own_and_admins_see_all(client: Client) -> None:
    admin = client.server.api_key
    fay, gil = await client.user("fay"), await client.user("gil")
    await team(client, "shared", ["fay", "gil"])
    faye = await client.call("POST", "/v1/scheduled_posts", fay,
                             {"channel": "shared", "text": "fay's", "at": iso_in(3600)}, expect=201)
    await client.call("POST", "/v1/scheduled_posts", gil,
                      {"channel": "shared", "text": "gil's", "at": iso_in(3600)}, expect=201)
    assert [p["text"] for p in (await client.call("GET", "/v1/scheduled_posts", fay))["scheduled_posts"]] == ["fay's"]
    assert {p["text"] for p in (await client.call("GET", "/v1/scheduled_posts", admin))["scheduled_posts"]} == {
        "fay's", "gil's"}
    # Another member's post does not exist for gil; an admin may cancel it.
    await client.call("GET", f"/v1/scheduled_posts/{faye['id']}", gil, expect=404)
    await client.call("DELETE", f"/v1/scheduled_posts/{faye['id']}", gil, expect=404)
    assert (await client.call("DELETE", f"/v1/scheduled_posts/{faye['id']}", admin))["status"] == "cancelled"


@pytest.mark.parametrize("body,field", [
    ({"channel": "x", "text": "t"}, "at"),
    ({"channel": "x", "text": "t", "at": "2026-12-01T18:00:00"}, "at"),  # no offset
    ({"channel": "x", "text": "t", "at": "2001-01-01T00:00:00Z"}, "at"),  # past
    ({"channel": "x", "text": "", "at": "2999-01-01T00:00:00Z"}, "text"),
    ({"channel": "x", "text": "t", "cron": "0 18 * * 1-5", "rrule": "FREQ=DAILY"}, "cron"),
    ({"channel": "x", "text": "t", "cron": "0 18 * * 1-5", "timezone": "Nowhere/Else"}, "timezone"),
    ({"channel": "x", "text": "t", "rrule": "FREQ=DAILY;COUNT=1", "at": "2001-01-01T00:00:00Z"}, "rrule"),
    ({"channel": "x", "text": "t", "cron": "0 0 30 2 *"}, "cron"),  # February 30th never comes
    ({"channel": "x", "text": "t", "rrule": "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30"}, "rrule"),
])
async def test_bad_requests_are_refused_with_the_field(client: Client, body: dict[str, Any], field: str) -> None:
    hal = await client.user("hal")
    got = await client.call("POST", "/v1/scheduled_posts", hal, body, expect=400)
    assert got["error"]["code"] == "invalid_field" and got["error"]["details"]["field"] == field
    assert (await client.call("GET", "/v1/scheduled_posts", hal))["scheduled_posts"] == []


async def test_a_channel_one_is_not_in_is_refused_when_scheduling(client: Client) -> None:
    ivy = await client.user("ivy")
    await team(client, "closed-circle", [])
    got = await client.call("POST", "/v1/scheduled_posts", ivy,
                            {"channel": "closed-circle", "text": "t", "at": iso_in(60)}, expect=403)
    assert got["error"]["code"] == "not_a_member"


async def test_after_downtime_a_recurring_post_sends_its_latest_missed_occurrence_once(client: Client) -> None:
    jon = await client.user("jon")
    channel = await team(client, "reports", ["jon"])
    made = await client.call("POST", "/v1/scheduled_posts", jon,
                             {"channel": "reports", "text": "weekday report", "cron": "0 18 * * 1-5",
                              "timezone": "Asia/Shanghai"}, expect=201)
    # As if the server had been down for a week: its due time lies seven days back, five weekdays missed since.
    week_ago = made["next_run"] - 7 * 86400
    db = client.server.app[DATABASE]

    async def rewind(conn: AsyncConnection) -> None:
        await conn.execute(update(scheduled_posts).where(scheduled_posts.c.id == made["id"]).values(
            next_run=week_ago, start=week_ago - 86400))
    await db.write(rewind)
    client.server.app[SCHEDULER].wake()

    post = await client.until(jon, made["id"], runs=1)
    await asyncio.sleep(1.5)  # a catch-up burst would have landed by now
    sent = [m for m in await client.history(jon, channel) if m["content"] == "weekday report"]
    assert len(sent) == 1
    (run,) = (await client.call("GET", f"/v1/scheduled_posts/{made['id']}", jon))["history"]
    latest = datetime.fromtimestamp(run["due_at"], ZoneInfo("Asia/Shanghai"))
    assert (latest.hour, latest.minute) == (18, 0) and latest.weekday() < 5
    assert made["next_run"] - 86400 * 4 <= run["due_at"] < time.time()  # the latest one missed, not the first
    assert post["status"] == "scheduled" and post["next_run"] == made["next_run"]  # goes on as planned


async def test_admins_see_no_text_of_posts_in_channels_they_are_not_in(client: Client) -> None:
    admin = client.server.api_key
    fay, _ = await client.user("fay"), await client.user("gil")
    group = await client.call("POST", "/v1/channels", fay, {"kind": "group", "name": "fay-gil", "members": ["gil"]},
                              expect=201)
    private = await client.call("POST", "/v1/scheduled_posts", fay,
                                {"channel": group["id"], "text": "our secret plan", "at": iso_in(3600)}, expect=201)
    assert private["text"] == "our secret plan"  # the author sees their own text
    listed = (await client.call("GET", "/v1/scheduled_posts", admin))["scheduled_posts"]
    assert [p["id"] for p in listed] == [private["id"]] and "text" not in listed[0]
    assert listed[0]["author"] == "fay" and listed[0]["channel"] == group["id"]
    got = await client.call("GET", f"/v1/scheduled_posts/{private['id']}", admin)
    assert "text" not in got and got["status"] == "scheduled"
    cancelled = await client.call("DELETE", f"/v1/scheduled_posts/{private['id']}", admin)
    assert cancelled["status"] == "cancelled" and "text" not in cancelled
    assert (await client.call("GET", f"/v1/scheduled_posts/{private['id']}", fay))["text"] == "our secret plan"
