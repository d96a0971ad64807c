"""The day's rollup per organisation (stats/rollup.py): a message whose channel row is gone is counted in no
organisation (a message row names none of its own; it used to land in the default organisation's counts), and
asking for one organisation's day computes only that organisation's (the others' posters are not noted)."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from sqlalchemy import select

from identity.appkeys import DATABASE
from stats.days import span
from stats.rollup import Row, compute_day
from store.engine import DB_FILE
from store.schema import user_activity
from tests.conftest import running_server, server_config

DAY = date(2026, 11, 2)


def _write_day(path: Path) -> None:
    """One message in a default channel, one in acme's, one of a channel whose row is gone: written as old or
    imported data would be, without foreign keys (every store we open has them on)."""
    at = span(DAY)[0] + 3600
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys=OFF")
        for cid, org, name in (("c-default", "default", "general"), ("c-acme", "acme", "acme~general")):
            db.execute("INSERT INTO chat_channels (id, org_id, name, kind, created_by, created_at, topic) "
                       "VALUES (?, ?, ?, 'public', '', ?, '')", (cid, org, name, at))
        for n, (cid, author) in enumerate((("c-default", "dee"), ("c-acme", "ace"), ("c-gone", "ghost"))):
            db.execute("INSERT INTO chat_messages (ord, id, channel_id, author, seq, type, created_at, deleted, "
                       "has_file, body) VALUES (?, ?, ?, ?, ?, 'text', ?, 0, 0, '{}')",
                       (900000 + n, f"m{n}", cid, author, n + 1, at))


def _metric(rows: list[Row], name: str) -> float:
    return sum(r.value for r in rows if r.metric == name and r.dimension == "")


async def test_messages_of_a_gone_channel_count_nowhere_and_one_org_is_computed_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_server(server_config(data)) as server:
        db = server.app[DATABASE]
        _write_day(data / DB_FILE)
        acme = await compute_day(db, DAY, org="acme")
        assert _metric(acme, "messages") == 1
        async with db.read() as conn:  # only acme's day was computed: only acme's poster was noted
            noted = {(r.org_id, r.login) for r in await conn.execute(select(user_activity))}
        assert noted == {("acme", "ace")}, noted
        default = await compute_day(db, DAY)
        assert _metric(default, "messages") == 1  # dee's; the gone channel's message is not the default's
        async with db.read() as conn:
            noted = {(r.org_id, r.login) for r in await conn.execute(select(user_activity))}
        assert noted == {("acme", "ace"), ("default", "dee")}, noted
