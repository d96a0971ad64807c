"""Several worker processes, one room: a directory of who hosts which room, and the pipes between them.

Each worker runs a `PipeServer` (TCP, loopback by default) and writes its address, its load and the
rooms it hosts into a `RoomDirectory` (SQLite in the shared data dir; Redis would do the same across
machines). When a worker gets a room that other workers already host, it connects a PipeLink to each
of them; the other side accepts, once both proved the server's secret (sfu/pipe_auth.py: the address
is on disk, and a pipe carries the room's media and may add participants). `least_loaded` places a
participant: on a worker that hosts the room and has room to spare, else on the least-loaded worker.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from common.private_files import private_sqlite
from sfu import pipe_auth
from sfu.pipe import PipeLink
from sfu.pipe_auth import HANDSHAKE_SECONDS, PipeAuthError, PipeRoom
from sfu.room import Room
from sfu.rooms import RoomRegistry

log = logging.getLogger("convene.sfu.workers")

STALE_SECONDS = 15.0


@dataclass(frozen=True)
class WorkerInfo:
    worker_id: str
    http_url: str
    pipe_host: str
    pipe_port: int
    participants: int


class RoomDirectory:
    def __init__(self, data_dir: Path) -> None:
        self._path = private_sqlite(data_dir / "workers.db")
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS workers (worker_id TEXT PRIMARY KEY, http_url TEXT,"
                       " pipe_host TEXT, pipe_port INTEGER, participants INTEGER, seen REAL)")
            db.execute("CREATE TABLE IF NOT EXISTS hosts (room TEXT, worker_id TEXT, PRIMARY KEY (room, worker_id))")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=10)

    def announce(self, worker: WorkerInfo) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO workers VALUES (?, ?, ?, ?, ?, ?)",
                       (worker.worker_id, worker.http_url, worker.pipe_host, worker.pipe_port,
                        worker.participants, time.time()))

    def withdraw(self, worker_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM workers WHERE worker_id = ?", (worker_id,))
            db.execute("DELETE FROM hosts WHERE worker_id = ?", (worker_id,))

    def host(self, room: str, worker_id: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO hosts VALUES (?, ?)", (room, worker_id))

    def unhost(self, room: str, worker_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM hosts WHERE room = ? AND worker_id = ?", (room, worker_id))

    def workers(self) -> list[WorkerInfo]:
        with self._db() as db:
            rows = db.execute("SELECT worker_id, http_url, pipe_host, pipe_port, participants FROM workers"
                              " WHERE seen > ?", (time.time() - STALE_SECONDS,)).fetchall()
        return [WorkerInfo(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in rows]

    def hosts_of(self, room: str) -> list[WorkerInfo]:
        hosting = {row[0] for row in self._db().execute("SELECT worker_id FROM hosts WHERE room = ?", (room,))}
        return [w for w in self.workers() if w.worker_id in hosting]

    def least_loaded(self, room: str, per_worker: int) -> WorkerInfo | None:
        """Where the next participant of `room` should go."""
        hosting = [w for w in self.hosts_of(room) if w.participants < per_worker]
        candidates = hosting or self.workers()
        return min(candidates, key=lambda w: (w.participants, w.worker_id), default=None)


class PipeServer:
    """This worker's end of the pipes: accepts links, opens links, keeps the directory current."""

    def __init__(self, rooms: RoomRegistry, directory: RoomDirectory, worker_id: str, http_url: str,
                 secret: bytes, host: str = "127.0.0.1", handshake_timeout: float = HANDSHAKE_SECONDS) -> None:
        if not secret:
            raise ValueError("pipes need the server secret")
        self.rooms = rooms
        self._key = pipe_auth.pipe_key(secret)
        self._handshake_timeout = handshake_timeout
        self.directory = directory
        self.worker_id = worker_id
        self.http_url = http_url
        self.host = host
        self.port = 0
        self.links: dict[tuple[str, str], PipeLink] = {}  # (room, peer worker) -> link
        self._server: asyncio.Server | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        rooms.on_room_created.append(self._room_created)
        rooms.on_room_closing.append(self._room_closing)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._announce()
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    def _announce(self) -> None:
        load = sum(len([p for p in r.visible if p.pipe is None]) for r in self.rooms.all())
        self.directory.announce(WorkerInfo(self.worker_id, self.http_url, self.host, self.port, load))

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            await asyncio.to_thread(self._announce)

    # -- rooms -----------------------------------------------------------------------------------

    def on_room_event(self, event: dict[str, object]) -> None:
        # Keep our load in the directory current, so placement never reads a stale count.
        if event.get("type") in ("participant_joined", "participant_left"):
            self._announce()

    def _room_created(self, room: Room) -> None:
        self.directory.host(room.name, self.worker_id)
        room.add_listener(self)
        task = asyncio.get_running_loop().create_task(self._connect_room(room))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _room_closing(self, room: Room) -> None:
        self.directory.unhost(room.name, self.worker_id)
        for (name, peer), link in list(self.links.items()):
            if name == room.name:
                await link.close()

    async def _connect_room(self, room: Room) -> None:
        for worker in self.directory.hosts_of(room.name):
            if worker.worker_id == self.worker_id or (room.name, worker.worker_id) in self.links:
                continue
            try:
                reader, writer = await asyncio.open_connection(worker.pipe_host, worker.pipe_port)
            except OSError as exc:
                log.warning("cannot reach worker %s for room %s: %s", worker.worker_id, room.name, exc)
                continue
            try:
                async with asyncio.timeout(self._handshake_timeout):
                    await pipe_auth.connect(reader, writer, self._key, PipeRoom(room.name, room.meeting_id),
                                            self.worker_id, worker.worker_id)
            except (PipeAuthError, TimeoutError, OSError) as exc:
                log.warning("no pipe to worker %s for room %s: %r", worker.worker_id, room.name, exc)
                writer.close()
                continue
            if room.closed:
                writer.close()
                return
            await self._add_link(room, reader, writer, worker.worker_id, opened_by=self.worker_id)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Nothing is read as a room frame, and no room is created, before the peer proved the key.
        try:
            async with asyncio.timeout(self._handshake_timeout):
                peer = await pipe_auth.accept(reader, writer, self._key, self.worker_id)
        except (PipeAuthError, TimeoutError, OSError) as exc:
            log.warning("refused a pipe connection from %s: %r", writer.get_extra_info("peername"), exc)
            writer.close()
            return
        try:
            room, _ = self.rooms.get_or_create(peer.room.room, meeting_id=peer.room.meeting_id)
        except Exception:  # the registry may refuse a room (a limit): that closes this pipe, not the server
            log.exception("no room %s for a pipe from %s", peer.room.room, peer.worker_id)
            writer.close()
            return
        if room.meeting_id != peer.room.meeting_id:
            # Our room of that name serves another meeting: joining them would mix two meetings' people.
            log.warning("refused a pipe from %s: room %s serves another meeting here", peer.worker_id, room.name)
            writer.close()
            return
        await self._add_link(room, reader, writer, peer.worker_id, opened_by=peer.worker_id)

    async def _add_link(self, room: Room, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        peer: str, opened_by: str) -> None:
        existing = self.links.get((room.name, peer))
        if existing is not None:
            # Both workers connected at once: both keep the link the lower worker id opened.
            if existing.opened_by != opened_by and existing.opened_by < opened_by:
                writer.close()
                return
            await existing.close()  # first: its mirrored participants leave before the new link adds them
        link = PipeLink(room, reader, writer, peer, on_closed=self._link_closed, opened_by=opened_by)
        self.links[(room.name, peer)] = link
        link.start()
        log.info("room %s now spans %s and %s", room.name, self.worker_id, peer)

    def _link_closed(self, link: PipeLink) -> None:
        if self.links.get((link.room.name, link.peer)) is link:
            del self.links[(link.room.name, link.peer)]

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for link in list(self.links.values()):
            await link.close()
        if self._server is not None:
            self._server.close()
        self.directory.withdraw(self.worker_id)
