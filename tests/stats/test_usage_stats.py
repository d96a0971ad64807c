"""Usage analytics on a real server: posts from a browser session, an API key, a bot, a webhook and the
scheduler; a meeting two people join; a file. `convene stats backfill` rolls the day up to the expected numbers,
and a second run leaves the same rows; GET /v1/admin/stats answers JSON series and CSV to holders of read_stats
only."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

import chat.service
import integrations.hook_poster
import stats.rollup
from identity.appkeys import DATABASE
from stats.rollup import roll_up_day
from store.database import Database
from store.schema import usage_daily
from tests.conftest import RunningServer, running_server, server_config
from tests.stats.seed import call, seed

ROOT = Path(__file__).resolve().parents[2]


def test_stats_names_the_servers_own_voice_and_hook_users_as_chat_and_integrations_do() -> None:
    assert stats.rollup.SYSTEM_LOGIN == chat.service.SYSTEM_LOGIN
    assert stats.rollup.HOOK_PREFIX == integrations.hook_poster.BOT_PREFIX


async def backfill(data_dir: Path, first: str, last: str, database_url: str | None = None) -> str:
    args = [sys.executable, "-m", "signaling.cli", "stats", "backfill", "--from", first, "--to", last,
            "--data-dir", str(data_dir)]
    if database_url:
        args += ["--database-url", database_url]
    proc = await asyncio.create_subprocess_exec(*args, cwd=ROOT, env={**os.environ},
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def stored_rows(db: Database) -> list[tuple[Any, ...]]:
    async with db.read() as conn:
        result = await conn.execute(select(usage_daily.c.org_id, usage_daily.c.day, usage_daily.c.metric,
                                           usage_daily.c.dimension, usage_daily.c.value)
                                    .order_by(usage_daily.c.day, usage_daily.c.metric, usage_daily.c.dimension))
        return [tuple(r) for r in result]


@pytest.fixture(params=["sqlite", "postgres"])
async def seeded_server(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = request.getfixturevalue("postgres").create_database() if request.param == "postgres" else None
    async with running_server(server_config(tmp_path / "data", database_url=url)) as server:
        yield server, await seed(server), tmp_path / "data", url


async def test_backfill_counts_the_day_and_twice_gives_the_same_rows(seeded_server: Any) -> None:
    server, seeded, data_dir, url = seeded_server
    today = datetime.now(timezone.utc).date().isoformat()
    out = await backfill(data_dir, today, today, url)
    assert f"{today}: rolled up" in out and "1 days rolled up" in out
    first = await stored_rows(server.app[DATABASE])
    assert first
    await backfill(data_dir, today, today, url)
    assert await stored_rows(server.app[DATABASE]) == first  # idempotent: the day's rows replaced, not added
    # Two processes recomputing the day at once (the job and a backfill): neither fails, the rows stay the same.
    other = Database.for_config(url, data_dir)
    await other.open()
    try:
        day = datetime.now(timezone.utc).date()
        await asyncio.gather(*(roll_up_day(db, day) for db in (server.app[DATABASE], other, other)))
    finally:
        await other.close()
    assert await stored_rows(server.app[DATABASE]) == first

    value = {(metric, dim): v for _, day, metric, dim, v in first if day == today}
    assert value[("messages_by_client", "web")] == seeded.session_posts
    assert value[("messages_by_client", "api")] == seeded.key_posts
    assert value[("messages_by_client", "bot")] == seeded.bot_posts
    assert value[("messages_by_client", "webhook")] == seeded.hook_posts
    assert value[("messages_by_client", "scheduled")] == seeded.scheduled_posts
    # The server's own notice in the meeting's channel.
    assert value[("messages_by_client", "system")] == value[("messages_by_kind", "meeting")] == 1
    by_client = sum(v for (metric, _), v in value.items() if metric == "messages_by_client")
    by_kind = sum(v for (metric, _), v in value.items() if metric == "messages_by_kind")
    assert value[("messages", "")] == by_client == by_kind
    assert value[("messages_by_kind", "team")] == (seeded.session_posts + seeded.key_posts + seeded.bot_posts
                                                   + seeded.hook_posts + seeded.scheduled_posts)
    assert value[("meetings", "")] == 1
    assert value[("meeting_participants", "")] == 2 and value[("meeting_people", "")] == 2
    assert 0 < value[("meeting_minutes", "")] < 5
    assert value[("files", "")] == 1 and value[("file_bytes", "")] == seeded.file_bytes
    assert value[("caption_minutes", "")] == 0  # no captions ran
    # Active people: ann (her session), the admin key's person, carol and dave (the meeting); never the bot or
    # the webhook's bot user. olga only has an account.
    assert value[("active_users", "dau")] == 4
    assert value[("active_users", "wau")] == value[("active_users", "mau")] == 4


async def test_the_stats_api_answers_series_and_csv_to_read_stats_only(seeded_server: Any) -> None:
    server, seeded, data_dir, url = seeded_server
    if url:
        pytest.skip("the API reads the same rows on both backends; once is enough")
    today = datetime.now(timezone.utc).date()
    await backfill(data_dir, today.isoformat(), today.isoformat())
    async with aiohttp.ClientSession() as http:
        body = await call(http, server, "GET", "/v1/admin/stats", params={"from": "2026-11-01", "to": today.isoformat()})
        assert body["days"][0] == "2026-11-01" and body["days"][-1] == today.isoformat()
        web = body["metrics"]["messages_by_client"]["web"]
        assert len(web) == len(body["days"]) and web[-1] == seeded.session_posts and web[0] == 0
        assert body["metrics"]["active_users"]["dau"][-1] == 4
        assert today.isoformat() in body["computed"]
        text = await call(http, server, "GET", "/v1/admin/stats", params={"format": "csv"})
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == ["day", "metric", "dimension", "value"]
        assert [today.isoformat(), "messages_by_client", "webhook", str(seeded.hook_posts)] in rows
        assert [today.isoformat(), "file_bytes", "", str(seeded.file_bytes)] in rows
        # Refusals: bad ranges, a member, a meeting token.
        await call(http, server, "GET", "/v1/admin/stats", params={"from": "2026-12-05", "to": "2026-12-01"},
                   expect=400)
        await call(http, server, "GET", "/v1/admin/stats", params={"from": "2020-01-01", "to": "2026-12-01"},
                   expect=400)
        await call(http, server, "GET", "/v1/admin/stats", params={"from": "yesterday"}, expect=400)
        await call(http, server, "GET", "/v1/admin/stats", params={"to": "0001-01-01"}, expect=400)
        await call(http, server, "GET", "/v1/admin/stats", params={"since": "2026-12-01"}, expect=400)
        member = await call(http, server, "POST", "/v1/users/ann/tokens", json={"ttl": 600})
        refused = await call(http, server, "GET", "/v1/admin/stats", member["token"], expect=403)
        assert refused["error"]["code"] == "not_permitted" and refused["error"]["details"]["permission"] == "read_stats"
        meeting = await server.token("weekly2", "erin")
        assert (await call(http, server, "GET", "/v1/admin/stats", meeting, expect=(401, 403)))["error"]["code"] in (
            "out_of_scope", "unauthorized", "meeting_ended")
        # An organisation may grant read_stats to members.
        await call(http, server, "PUT", "/v1/admin/permissions", json={"read_stats": ["owner", "admin", "member"]})
        await call(http, server, "GET", "/v1/admin/stats", member["token"], expect=200)


async def test_the_running_server_rolls_up_today_by_itself(tmp_path: Path) -> None:
    """The job (every --stats-rollup-minutes) and the activity hooks, with no backfill."""
    async with running_server(server_config(tmp_path / "data", stats_rollup_seconds=0.5)) as server:
        async with aiohttp.ClientSession() as http:
            channel = await call(http, server, "POST", "/v1/channels", json={"name": "x", "kind": "team"})
            await call(http, server, "POST", "/v1/messages", json={"to": channel["id"], "content": "hello"})
            for _ in range(50):
                body = await call(http, server, "GET", "/v1/admin/stats")
                if body["metrics"].get("messages_by_client", {}).get("api", [0])[-1] == 1:
                    break
                await asyncio.sleep(0.2)
            assert body["metrics"]["messages_by_client"]["api"][-1] == 1
            assert body["metrics"]["active_users"]["dau"][-1] == 1
