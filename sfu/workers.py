"""Several worker processes, one room: a directory of who hosts which room, and the pipes between them.

Each worker runs a `PipeServer` (TCP, loopback by default) and writes its address, its load and the
rooms it hosts into a `RoomDirectory` (the front door keeps it in the store: SQLite in the shared data dir, or
PostgreSQL across machines). When a worker gets a room that other workers already host, it connects a PipeLink to each
of them; the other side accepts, once both proved the server's secret (sfu/pipe_auth.py: the address
is in the directory, and a pipe carries the room's media and may add participants). `least_loaded` places a
participant: on a worker that hosts the room and has room to spare, else on the least-loaded worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

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


class RoomDirectory(Protocol):
    """Who hosts which room and where each live worker's pipe listens, shared by the worker processes.

    The front door gives each PipeServer one (signaling/room_directory.py keeps it in the store, so the
    processes of one server, or of several machines on one PostgreSQL, see each other); `MemoryRoomDirectory`
    serves one process and tests. A worker not seen for STALE_SECONDS is gone."""

    async def announce(self, worker: WorkerInfo) -> None: ...
    async def withdraw(self, worker_id: str) -> None: ...
    async def host(self, room: str, worker_id: str) -> None: ...
    async def unhost(self, room: str, worker_id: str) -> None: ...
    async def workers(self) -> list[WorkerInfo]: ...
    async def hosts_of(self, room: str) -> list[WorkerInfo]: ...


async def least_loaded(directory: RoomDirectory, room: str, per_worker: int,
                       here: WorkerInfo | None = None) -> WorkerInfo | None:
    """Where the next participant of `room` should go: a worker hosting it with room to spare, else the least
    loaded one. `here` is the asking worker as it is now: its own count is never stale (its announcement is
    written by a task of its own, a moment after a join)."""
    def fresh(workers: list[WorkerInfo]) -> list[WorkerInfo]:
        return [here if here is not None and w.worker_id == here.worker_id else w for w in workers]

    hosting = [w for w in fresh(await directory.hosts_of(room)) if w.participants < per_worker]
    candidates = hosting or fresh(await directory.workers())
    return min(candidates, key=lambda w: (w.participants, w.worker_id), default=None)


class MemoryRoomDirectory:
    """A RoomDirectory in this process's memory (one process, or tests of the pipes)."""

    def __init__(self) -> None:
        self._workers: dict[str, tuple[WorkerInfo, float]] = {}
        self._hosts: set[tuple[str, str]] = set()

    async def announce(self, worker: WorkerInfo) -> None:
        self._workers[worker.worker_id] = (worker, time.time())

    async def withdraw(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)
        self._hosts = {(r, w) for r, w in self._hosts if w != worker_id}

    async def host(self, room: str, worker_id: str) -> None:
        self._hosts.add((room, worker_id))

    async def unhost(self, room: str, worker_id: str) -> None:
        self._hosts.discard((room, worker_id))

    async def workers(self) -> list[WorkerInfo]:
        fresh = time.time() - STALE_SECONDS
        return [w for w, seen in self._workers.values() if seen > fresh]

    async def hosts_of(self, room: str) -> list[WorkerInfo]:
        return [w for w in await self.workers() if (room, w.worker_id) in self._hosts]


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
        self._announcing = False  # an announcement is queued: later load changes ride on it
        rooms.on_room_created.append(self._room_created)
        rooms.on_room_closing.append(self._room_closing)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        await self._announce()
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    def info(self) -> WorkerInfo:
        """This worker as it is now (its load: participants connected here, not those mirrored by pipes)."""
        load = sum(len([p for p in r.visible if p.pipe is None]) for r in self.rooms.all())
        return WorkerInfo(self.worker_id, self.http_url, self.host, self.port, load)

    async def _announce(self) -> None:
        self._announcing = False
        await self.directory.announce(self.info())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            try:
                await self._announce()
            except Exception:  # the store away for a moment: the next beat tries again
                log.exception("worker %s: announcing failed", self.worker_id)

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- rooms -----------------------------------------------------------------------------------

    def on_room_event(self, event: dict[str, object]) -> None:
        # Keep our load in the directory current, so placement never reads a stale count.
        if event.get("type") in ("participant_joined", "participant_left") and not self._announcing:
            self._announcing = True
            self._spawn(self._announce())

    def _room_created(self, room: Room) -> None:
        room.add_listener(self)
        self._spawn(self._host_and_connect(room))

    async def _host_and_connect(self, room: Room) -> None:
        await self.directory.host(room.name, self.worker_id)
        await self._connect_room(room)

    async def _room_closing(self, room: Room) -> None:
        await self.directory.unhost(room.name, self.worker_id)
        for (name, peer), link in list(self.links.items()):
            if name == room.name:
                await link.close()

    async def _connect_room(self, room: Room) -> None:
        for worker in await self.directory.hosts_of(room.name):
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
        for task in list(self._tasks):
            task.cancel()
        await self.directory.withdraw(self.worker_id)
