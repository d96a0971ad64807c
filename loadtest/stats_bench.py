"""Usage rollup cost: `python -m loadtest.stats_bench [--messages 100000] [--days 30] [--database-url URL]`.

Fills a fresh store with --days days of history (--messages messages a day across 100 channels and 1,000 people,
posted from every client kind, plus meetings with participants, files and activity rows), then times the rollup
of the last day (and a second run of it, which replaces the same rows) and a backfill of the whole range.
A fresh SQLite file in a temporary directory unless --database-url names an (empty) PostgreSQL database.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from stats.days import span
from stats.job import backfill
from stats.rollup import roll_up_day
from store.database import Database
from store.schema import (chat_channels, chat_files, chat_messages, chat_users, meeting_participants, meetings,
                          user_activity)

PEOPLE, CHANNELS, CHUNK = 1000, 100, 5000


async def _insert(db: Database, table: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), CHUNK):
        part = rows[i:i + CHUNK]

        async def op(conn: AsyncConnection, part: list[dict[str, Any]] = part) -> None:
            await conn.execute(table.insert(), part)

        await db.write(op)


async def fill(db: Database, first: date, days: int, per_day: int) -> None:
    rnd = random.Random(7)
    await _insert(db, chat_users, [{"login": f"u{i}", "role": "member", "name": f"U {i}"} for i in range(PEOPLE)]
                  + [{"login": f"bot{i}", "role": "bot", "name": "bot"} for i in range(5)])
    kinds = ("team", "group", "direct")
    await _insert(db, chat_channels, [{"id": f"c{i}", "name": f"c{i}", "kind": kinds[i % 3]} for i in range(CHANNELS)])
    ord_ = 0
    for d in range(days):
        start, _ = span(first + timedelta(days=d))
        rows = []
        # Messages are stored in the order they are posted, so a day's rows lie together in the table.
        times = sorted(start + rnd.random() * 86400 for _ in range(per_day))
        for at in times:
            ord_ += 1
            who = f"bot{rnd.randrange(5)}" if rnd.random() < 0.05 else f"u{rnd.randrange(PEOPLE)}"
            rows.append({"ord": ord_, "id": f"m{ord_}", "channel_id": f"c{rnd.randrange(CHANNELS)}", "author": who,
                         "client_id": f"sched:x:{ord_}" if rnd.random() < 0.01 else None, "seq": ord_,
                         "type": "text", "created_at": at, "body": "{}",
                         "via": rnd.choice(("web", "web", "api"))})
        await _insert(db, chat_messages, rows)
        await _insert(db, meetings, [{"meeting_id": f"mt{d}_{k}", "room": f"r{k}", "started_at": start + k * 400,
                                      "guests": False, "ended_at": start + k * 400 + 1800} for k in range(50)])
        await _insert(db, meeting_participants, [
            {"meeting_id": f"mt{d}_{k}", "identity": f"u{who}", "joined_at": start + k * 400 + j}
            for k in range(50) for j, who in enumerate(rnd.sample(range(PEOPLE), 6))])
        await _insert(db, chat_files, [{"id": f"f{d}_{k}", "sha256": "0" * 64, "name": "x", "mime": "text/plain",
                                        "size": 1000 + k, "uploader": "u1", "created_at": start + k}
                                       for k in range(per_day // 100)])
        day = (first + timedelta(days=d)).isoformat()
        await _insert(db, user_activity, [{"day": day, "login": f"u{i}"} for i in rnd.sample(range(PEOPLE), 600)])


async def run(per_day: int, days: int, url: str | None, data_dir: Path) -> None:
    db = Database.for_config(url, data_dir)
    await db.open()
    try:
        today = datetime.now(timezone.utc).date()
        first = today - timedelta(days=days - 1)
        started = time.perf_counter()
        await fill(db, first, days, per_day)
        print(f"filled {days} days x {per_day} messages in {time.perf_counter() - started:.1f} s")
        for attempt in ("first", "again"):
            started = time.perf_counter()
            rows = await roll_up_day(db, today)
            print(f"roll up one day ({per_day} messages), {attempt}: {time.perf_counter() - started:.2f} s, "
                  f"{len(rows)} rows")
        started = time.perf_counter()
        count = await backfill(db, first, today)
        print(f"backfill {count} days: {time.perf_counter() - started:.1f} s")
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000, help="messages per day")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.messages, args.days, args.database_url, Path(tmp)))


if __name__ == "__main__":
    main()
