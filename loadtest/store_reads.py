"""CPU per store read: `python -m loadtest.store_reads [--reads 2000] [--rounds 3]`.

The reads a join makes (the API key behind a token request, the account, the meeting and the identity's removal),
each run through the async engine (`Database.read`, aiosqlite's thread hand-offs: the path before #14's stop 22)
and through `Database.first` (the whole read on a reader thread), alternating in one run on a fresh SQLite file.
Prints the process CPU per read (both threads) and the ratio, medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.sql.expression import Executable

from identity.apikeys import ApiKeyStore
from identity.meetings import MeetingLedger
from identity.passwords import AccountStore
from loadtest.tables import table
from store.database import Database
from store.schema import accounts, api_keys, meeting_removals, meetings


def join_reads(meeting_id: str, room: str, key_id: str) -> dict[str, Executable]:
    """Statements of the shape a join reads (the stores build theirs the same way)."""
    return {
        "API key": select(api_keys).where(api_keys.c.key_id == key_id),
        "account": select(accounts).where(accounts.c.login == "alice"),
        "live meeting of the room": select(meetings).where(meetings.c.room == room, meetings.c.ended_at.is_(None))
        .order_by(meetings.c.started_at.desc()).limit(1),
        "meeting and removal": select(meetings, meeting_removals.c.removed_at).select_from(meetings.outerjoin(
            meeting_removals, and_(meeting_removals.c.meeting_id == meetings.c.meeting_id,
                                   meeting_removals.c.identity == "alice"))).where(meetings.c.meeting_id == meeting_id),
    }


async def cpu_per_call(call: Callable[[], Awaitable[Any]], n: int) -> float:
    """Microseconds of process CPU (every thread) per call."""
    for _ in range(n // 10):
        await call()
    started = time.process_time()
    for _ in range(n):
        await call()
    return (time.process_time() - started) / n * 1e6


async def measure(reads: int, rounds: int) -> list[list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.for_config(None, Path(tmp))
        await db.open()
        try:
            meeting, _ = await MeetingLedger(db).live_or_start("bench", guests=False)
            key, _ = await ApiKeyStore(db).create("bench")
            await AccountStore(db).ensure("alice")
            statements = join_reads(meeting.meeting_id, "bench", key.key_id)
            results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in statements}
            for _ in range(rounds):
                for name, stmt in statements.items():
                    async def through_engine(stmt: Executable = stmt) -> None:
                        async with db.read() as conn:
                            (await conn.execute(stmt)).first()

                    async def on_reader(stmt: Executable = stmt) -> None:
                        await db.first(stmt)

                    engine, reader = results[name]
                    engine.append(await cpu_per_call(through_engine, reads))
                    reader.append(await cpu_per_call(on_reader, reads))
        finally:
            await db.close()
    rows = []
    for name, (engine, reader) in results.items():
        e, r = statistics.median(engine), statistics.median(reader)
        rows.append([name, f"{e:.0f}", f"{r:.0f}", f"{r / e:.2f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000, help="reads per path, statement and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.reads, args.rounds))
    print(table(["read", "async engine, µs CPU", "Database.first, µs CPU", "ratio"], rows))


if __name__ == "__main__":
    main()
