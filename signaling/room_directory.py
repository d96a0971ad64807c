"""The media workers' room directory in the store (`sfu_workers`, `sfu_room_hosts`): the front door gives it to
each PipeServer, so worker processes that share a data dir (SQLite) or a PostgreSQL find each other. sfu keeps
only the interface (sfu/workers.py RoomDirectory): it does not import the store."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sfu.workers import STALE_SECONDS, WorkerInfo
from store.database import Database
from store.schema import sfu_room_hosts, sfu_workers


def _info(row: Any) -> WorkerInfo:
    return WorkerInfo(row.worker_id, row.http_url, row.pipe_host, int(row.pipe_port), int(row.participants))


class StoreRoomDirectory:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def announce(self, worker: WorkerInfo) -> None:
        values = {"http_url": worker.http_url, "pipe_host": worker.pipe_host, "pipe_port": worker.pipe_port,
                  "participants": worker.participants, "seen": time.time()}

        async def op(conn: AsyncConnection) -> None:
            # Only this worker writes its row: update, else insert, is race-free and the same on both backends.
            done = await conn.execute(update(sfu_workers).where(sfu_workers.c.worker_id == worker.worker_id)
                                      .values(**values))
            if not done.rowcount:
                await conn.execute(sfu_workers.insert().values(worker_id=worker.worker_id, **values))
        await self.db.write(op)

    async def withdraw(self, worker_id: str) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(delete(sfu_room_hosts).where(sfu_room_hosts.c.worker_id == worker_id))
            await conn.execute(delete(sfu_workers).where(sfu_workers.c.worker_id == worker_id))
        await self.db.write(op)

    async def host(self, room: str, worker_id: str) -> None:
        async def op(conn: AsyncConnection) -> None:
            there = (await conn.execute(select(sfu_room_hosts.c.room).where(
                sfu_room_hosts.c.room == room, sfu_room_hosts.c.worker_id == worker_id))).first()
            if there is None:
                await conn.execute(sfu_room_hosts.insert().values(room=room, worker_id=worker_id))
        await self.db.write(op)

    async def unhost(self, room: str, worker_id: str) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(delete(sfu_room_hosts).where(sfu_room_hosts.c.room == room,
                                                            sfu_room_hosts.c.worker_id == worker_id))
        await self.db.write(op)

    async def workers(self) -> list[WorkerInfo]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(sfu_workers).where(sfu_workers.c.seen > time.time() - STALE_SECONDS)
                                       .order_by(sfu_workers.c.worker_id))).all()
        return [_info(r) for r in rows]

    async def hosts_of(self, room: str) -> list[WorkerInfo]:
        async with self.db.read() as conn:
            rows = (await conn.execute(
                select(sfu_workers).join(sfu_room_hosts, sfu_room_hosts.c.worker_id == sfu_workers.c.worker_id)
                .where(sfu_room_hosts.c.room == room, sfu_workers.c.seen > time.time() - STALE_SECONDS)
                .order_by(sfu_workers.c.worker_id))).all()
        return [_info(r) for r in rows]
