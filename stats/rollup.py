"""One UTC day of the store, rolled up into usage_daily rows (docs/analytics.md lists the metrics).

Every organisation has its own rows (usage_daily.org_id): a message counts for its channel's organisation (one
whose channel row is gone counts nowhere, and is logged: a message row names no organisation of its own), a
meeting, its captions and its participants for the meeting's, a file for its uploader's, an active person for
their own. Recomputing a day replaces its rows: the delete and the inserts run in one transaction, so a backfill
run twice leaves the same rows, and a reader never sees a day half written. Active users come from user_activity, which
the rollup first completes with the day's posters and meeting participants (insert-or-ignore), so the weekly
and monthly counts read one small table instead of a month of messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from datetime import date, timedelta

from sqlalchemy import Float, and_, case, delete, distinct, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from stats.days import span
from store.database import Database
from store.orgs import org_ids
from store.schema import (
    DEFAULT_ORG,
    chat_channels,
    chat_files,
    chat_messages,
    chat_users,
    hooks,
    meeting_participants,
    meetings,
    transcripts,
    usage_daily,
    user_activity,
)
from store.upsert import insert_ignoring, insert_replacing

log = logging.getLogger("convene.stats.rollup")

SEPARATOR = "~"  # a room of another organisation is stored `org~room` (identity.orgs.qualify)
CLIENTS = ("web", "api", "bot", "webhook", "scheduled", "system", "other")
# chat's SYSTEM_LOGIN, the server's own voice (task reminders, meeting channel notices): stats does not import
# chat (tests/stats checks the two agree).
SYSTEM_LOGIN = "convene"
HOOK_PREFIX = "hook-"  # integrations' webhook bot users are hook-<id>


@dataclass(frozen=True)
class Row:
    metric: str
    dimension: str
    value: float


def _client(author: str, via: str | None, role: str | None, hook: bool, scheduled: bool) -> str:
    if author == SYSTEM_LOGIN:
        return "system"
    if hook:
        return "webhook"
    if role == "bot":
        return "bot"  # bots' API keys, slash command replies, interactive posts
    if scheduled:
        return "scheduled"
    return via if via in ("web", "api") else "other"


@dataclass(frozen=True)
class DayMessages:
    rows: list[Row]
    posters: set[str]  # people (not bots, not the server) who posted


Key = tuple[str, str, "str | None", bool]  # author, channel id, via, scheduled
DayRows = dict[str, list[Row]]  # organisation -> its rows of the day


def _group(rows: list[Any]) -> Counter[Key]:
    return Counter((r.author, r.channel_id, r.via, (r.client_id or "").startswith("sched:")) for r in rows)


def _classify(counted: Counter[Key], kinds: dict[str, str], bots: set[str], hook_users: set[str]) -> DayMessages:
    by_kind: Counter[str] = Counter()
    by_client: Counter[str] = Counter({c: 0 for c in CLIENTS})
    posters: set[str] = set()
    for (author, channel_id, via, sched), n in counted.items():
        by_kind[kinds.get(channel_id, "unknown")] += n
        bot = author in bots
        # A deleted hook's bot user keeps its login (hook-<id>): its posts stay webhook posts on a recompute.
        hook = author in hook_users or (bot and author.startswith(HOOK_PREFIX))
        by_client[_client(author, via, "bot" if bot else None, hook, sched)] += n
        if not bot and author != SYSTEM_LOGIN:
            posters.add(author)
    rows = [Row("messages", "", float(sum(by_kind.values())))]
    rows += [Row("messages_by_kind", k, float(n)) for k, n in sorted(by_kind.items())]
    rows += [Row("messages_by_client", c, float(n)) for c, n in sorted(by_client.items())]
    return DayMessages(rows, posters)


def _by_org(counted: Counter[Key], orgs: dict[str, str]) -> tuple[dict[str, Counter[Key]], int]:
    """The day's counts per organisation (the channel's), and how many messages were left out: those whose
    channel row is gone. A message row has no organisation of its own, so such a message belongs to no one we
    can name; counting it in the default organisation (as before) gave it another organisation's traffic. With
    foreign keys on (every store we open) a channel row outlives its messages; this is old or imported data."""
    split: dict[str, Counter[Key]] = {}
    orphaned = 0
    for key, n in counted.items():
        org = orgs.get(key[1])
        if org is None:
            orphaned += n
            continue
        split.setdefault(org, Counter())[key] = n
    return split, orphaned


async def _messages(conn: AsyncConnection, start: float, end: float, names: list[str]) -> dict[str, DayMessages]:
    """One range scan of the day's messages (four short columns), counted and classified off the event loop,
    per organisation (the channel's); channel kinds, bots and hooks' bot users are small lookups. (SQLite's
    GROUP BY over ~75k groups sorted in a temporary B-tree and took twice as long as counting the rows here.)"""
    m = chat_messages
    fetched = (await conn.execute(select(m.c.author, m.c.channel_id, m.c.via, m.c.client_id).where(
        m.c.created_at >= start, m.c.created_at < end))).all()
    counted = await asyncio.to_thread(_group, list(fetched))
    channels = sorted({key[1] for key in counted})
    channel_kinds = select(chat_channels.c.id, chat_channels.c.kind, chat_channels.c.org_id)
    if len(channels) <= 1000:
        channel_kinds = channel_kinds.where(chat_channels.c.id.in_(channels))
    found = (await conn.execute(channel_kinds)).all()
    kinds, orgs = {r.id: r.kind for r in found}, {r.id: r.org_id for r in found}
    bots = {r.login for r in await conn.execute(select(chat_users.c.login).where(chat_users.c.role == "bot"))}
    hook_users = {r.bot_login for r in await conn.execute(select(hooks.c.bot_login))}
    split, orphaned = await asyncio.to_thread(_by_org, counted, orgs)
    if orphaned:
        log.warning("%d messages of the day are not counted: their channel no longer exists, so no organisation "
                    "can be named for them", orphaned)
    return {org: await asyncio.to_thread(_classify, split.get(org, Counter()), kinds, bots, hook_users)
            for org in names}


async def _participants_of_day(conn: AsyncConnection, start: float, end: float) -> set[tuple[str, str]]:
    """(organisation, identity) of each first join in the day."""
    joined = await conn.execute(select(meeting_participants.c.org_id, meeting_participants.c.identity).distinct()
                                .where(meeting_participants.c.joined_at >= start,
                                       meeting_participants.c.joined_at < end))
    return {(str(r[0]), str(r[1])) for r in joined}


async def _active(conn: AsyncConnection, day: date, org: str) -> list[Row]:
    rows = []
    for name, length in (("dau", 1), ("wau", 7), ("mau", 30)):
        first = (day - timedelta(days=length - 1)).isoformat()
        n = (await conn.execute(select(func.count(distinct(user_activity.c.login))).where(
            user_activity.c.org_id == org, user_activity.c.day >= first,
            user_activity.c.day <= day.isoformat()))).scalar_one()
        rows.append(Row("active_users", name, float(n)))
    return rows


async def _meetings(conn: AsyncConnection, start: float, end: float, now: float, org: str) -> list[Row]:
    mine = meetings.c.org_id == org
    held = (await conn.execute(select(func.count()).select_from(meetings).where(
        mine, meetings.c.started_at >= start, meetings.c.started_at < end))).scalar_one()
    # Minutes of meetings in the day: each meeting's overlap with it (a live one counts up to now).
    until = func.coalesce(meetings.c.ended_at, literal(now, Float))
    overlapping = await conn.execute(select(meetings.c.started_at, until.label("until")).where(
        mine, meetings.c.started_at < end, or_(meetings.c.ended_at.is_(None), meetings.c.ended_at > start)))
    seconds = sum(max(0.0, min(float(r.until), end) - max(float(r.started_at), start)) for r in overlapping)
    started = select(meetings.c.meeting_id).where(mine, meetings.c.started_at >= start, meetings.c.started_at < end)
    joins, people = (await conn.execute(select(
        func.count(), func.count(distinct(meeting_participants.c.identity))).where(
        meeting_participants.c.meeting_id.in_(started)))).one()
    return [Row("meetings", "", float(held)), Row("meeting_minutes", "", round(seconds / 60.0, 2)),
            Row("meeting_participants", "", float(joins)), Row("meeting_people", "", float(people))]


def _caption_seconds(bodies: list[str]) -> float:
    total = 0.0
    for body in bodies:
        try:
            captions = json.loads(body).get("captions", [])
            total += sum(max(0.0, float(c["end"]) - float(c["start"])) for c in captions)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("a transcript's captions could not be read; left out of caption minutes")
    return total


async def _captions(conn: AsyncConnection, start: float, end: float, org: str) -> list[Row]:
    """Spoken time captioned (final captions' spans) in the organisation's meetings that started in the day
    (its rooms are `org~room`; the default organisation's have no `~`)."""
    room = transcripts.c.room
    mine = ~room.contains(SEPARATOR) if org == DEFAULT_ORG else room.startswith(f"{org}{SEPARATOR}")
    bodies = [r.body for r in await conn.execute(select(transcripts.c.body).where(
        mine, transcripts.c.started_at >= start, transcripts.c.started_at < end))]
    seconds = await asyncio.to_thread(_caption_seconds, bodies) if bodies else 0.0
    return [Row("caption_minutes", "", round(seconds / 60.0, 2))]


async def _files(conn: AsyncConnection, start: float, end: float, org: str) -> list[Row]:
    count, size = (await conn.execute(select(func.count(), func.coalesce(func.sum(chat_files.c.size), 0)).where(
        chat_files.c.org_id == org, chat_files.c.created_at >= start, chat_files.c.created_at < end))).one()
    return [Row("files", "", float(count)), Row("file_bytes", "", float(size))]


async def compute_orgs(db: Database, day: date, now: float | None = None, only: str | None = None) -> DayRows:
    """The day's rows of every organisation (of `only`, when given). user_activity is completed first with the
    day's posters and meeting participants (activity a request may not have noted: imported history, days before
    analytics, a process that stopped before its flush), so the active counts read one table."""
    now = time.time() if now is None else now
    start, end = span(day)
    names = [only] if only is not None else await org_ids(db)
    async with db.read() as conn:
        messages = await _messages(conn, start, end, names)
        people = {(org, login) for org, day_messages in messages.items() for login in day_messages.posters}
        people |= {(org, who) for org, who in await _participants_of_day(conn, start, end) if org in names}
    if people:
        rows = [{"org_id": org, "day": day.isoformat(), "login": login} for org, login in sorted(people)]

        async def note(conn: AsyncConnection) -> None:
            await conn.execute(insert_ignoring(db, user_activity), rows)

        await db.write(note)
    out: DayRows = {}
    async with db.read() as conn:
        for org in names:
            out[org] = [*await _active(conn, day, org), *messages[org].rows,
                        *await _meetings(conn, start, end, now, org), *await _captions(conn, start, end, org),
                        *await _files(conn, start, end, org)]
    return out


async def compute_day(db: Database, day: date, now: float | None = None, org: str = DEFAULT_ORG) -> list[Row]:
    """One organisation's rows of the day: only that organisation's are computed."""
    return (await compute_orgs(db, day, now, only=org))[org]


async def write_day(db: Database, day: date, rows: list[Row], now: float | None = None,
                    org: str = DEFAULT_ORG) -> None:
    """Replaces the organisation's rows of the day in one transaction."""
    at = time.time() if now is None else now
    values = [{"org_id": org, "day": day.isoformat(), "metric": r.metric, "dimension": r.dimension,
               "value": r.value, "computed_at": at} for r in rows]

    async def op(conn: AsyncConnection) -> None:
        await conn.execute(delete(usage_daily).where(and_(usage_daily.c.org_id == org,
                                                          usage_daily.c.day == day.isoformat())))
        if values:
            # Replacing on conflict: a second recompute of the day racing this one (the job in another process,
            # a backfill) on PostgreSQL deletes before this commits and inserts after it; its rows win, whole.
            await conn.execute(insert_replacing(db, usage_daily, ["org_id", "day", "metric", "dimension"],
                                                ["value", "computed_at"]), values)

    await db.write(op)


async def roll_up_day(db: Database, day: date, now: float | None = None) -> list[Row]:
    """Rolls the day up for every organisation; answers the default organisation's rows."""
    by_org = await compute_orgs(db, day, now)
    for org, rows in by_org.items():
        await write_day(db, day, rows, now, org)
    return by_org[DEFAULT_ORG]
