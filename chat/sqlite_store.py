"""The embedded ChatStore: one SQLite file in the data dir (WAL, synchronous=FULL, FTS5 index).

All writes go through one writer thread that commits in groups: whatever is queued while a commit
runs goes into the next transaction (each write in its own SAVEPOINT, so one refused write changes
nothing). A write's future resolves only after its transaction is durable. Reads run on a small
thread pool with one connection per thread. The event loop never touches SQLite.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from chat.errors import ChannelExists, MessageNotFound
from chat.model import (
    Channel,
    FileMeta,
    Membership,
    Message,
    OrgSettings,
    SearchQuery,
    User,
)
from chat.store import Mutation
from chat.textindex import fts_document, fts_query
from common.private_files import private_sqlite

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (login TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS channels (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (channel_id TEXT NOT NULL, login TEXT NOT NULL,
    last_read INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (channel_id, login));
CREATE INDEX IF NOT EXISTS members_login ON members (login);
CREATE TABLE IF NOT EXISTS messages (
    ord INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, channel_id TEXT NOT NULL, author TEXT NOT NULL,
    client_id TEXT, seq INTEGER NOT NULL, created_at REAL NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
    thread TEXT, task_assignee TEXT, task_status TEXT, task_due REAL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_channel ON messages (channel_id, ord);
CREATE INDEX IF NOT EXISTS messages_seq ON messages (seq);
CREATE UNIQUE INDEX IF NOT EXISTS messages_client ON messages (author, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_assignee ON messages (task_assignee, task_status) WHERE task_assignee IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_due ON messages (task_due) WHERE task_status IS NOT NULL AND task_status != 'done';
CREATE INDEX IF NOT EXISTS messages_thread ON messages (thread, ord) WHERE thread IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5(doc, tokenize = 'unicode61 remove_diacritics 0');
CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, body TEXT NOT NULL);
"""
# Never attached: no attached_at and (rows from before attached_at existed) no channel either.
_UNATTACHED = ("json_extract(body, '$.attached_at') IS NULL"
               " AND COALESCE(json_array_length(body, '$.channels'), 0) = 0")
SCHEMA += f"""
CREATE INDEX IF NOT EXISTS files_sha ON files (json_extract(body, '$.sha256'));
CREATE INDEX IF NOT EXISTS files_uploader ON files (json_extract(body, '$.uploader'),
    json_extract(body, '$.created_at'));
CREATE INDEX IF NOT EXISTS files_unattached ON files (json_extract(body, '$.created_at')) WHERE {_UNATTACHED};
CREATE TABLE IF NOT EXISTS file_refs (file_id TEXT NOT NULL, message_id TEXT NOT NULL, channel_id TEXT NOT NULL,
    PRIMARY KEY (file_id, message_id));
"""

_COLS = "body, ord, seq"


def _message(row: tuple[Any, ...]) -> Message:
    return Message.from_wire(json.loads(row[0])).with_seq(int(row[1]), int(row[2]))


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=OFF")
    return db


class _Writer(threading.Thread):
    """The one thread that writes, committing whatever is queued as one durable transaction."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="chat-sqlite-writer", daemon=True)
        self._path = path
        self._queue: queue.SimpleQueue[tuple[Callable[[sqlite3.Connection], Any],
                                             concurrent.futures.Future[Any]] | None] = queue.SimpleQueue()
        self.seq = 0

    def submit(self, op: Callable[[sqlite3.Connection], T]) -> concurrent.futures.Future[T]:
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((op, fut))
        return fut

    def stop(self) -> None:
        self._queue.put(None)

    def run(self) -> None:
        db = _connect(self._path)
        row = db.execute("SELECT v FROM kv WHERE k = 'seq'").fetchone()
        self.seq = int(row[0]) if row else 0
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < 512:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            results: list[tuple[concurrent.futures.Future[Any], Any, BaseException | None]] = []
            try:
                db.execute("BEGIN IMMEDIATE")
                # Read the counter inside the write lock: another process may share the file.
                row = db.execute("SELECT v FROM kv WHERE k = 'seq'").fetchone()
                self.seq = max(self.seq, int(row[0]) if row else 0)
                for op, fut in batch:
                    db.execute("SAVEPOINT op")
                    try:
                        value = op(db)
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        db.execute("ROLLBACK TO op")
                        db.execute("RELEASE op")
                        results.append((fut, None, exc))
                    else:
                        db.execute("RELEASE op")
                        results.append((fut, value, None))
                db.execute("INSERT OR REPLACE INTO kv VALUES ('seq', ?)", (str(self.seq),))
                db.execute("COMMIT")
            except BaseException as exc:  # noqa: BLE001 - the whole batch failed
                if db.in_transaction:
                    db.execute("ROLLBACK")
                results = [(fut, None, exc) for _, fut in batch]
            for fut, value, error in results:
                if error is not None:
                    fut.set_exception(error)
                else:
                    fut.set_result(value)
        db.close()


class SqliteChatStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer: _Writer | None = None
        self._readers: concurrent.futures.ThreadPoolExecutor | None = None
        self._local = threading.local()

    # Plumbing ---------------------------------------------------------------------------------

    async def open(self) -> None:
        private_sqlite(self._path)  # before SQLite creates it, so its -wal/-shm are 0600 too
        await asyncio.to_thread(self._create_schema)
        self._writer = _Writer(self._path)
        self._writer.start()
        self._readers = concurrent.futures.ThreadPoolExecutor(max_workers=3, thread_name_prefix="chat-sqlite-read")

    def _create_schema(self) -> None:
        db = _connect(self._path)
        db.executescript(SCHEMA)
        db.close()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        assert self._writer is not None, "store not open"
        return await asyncio.wrap_future(self._writer.submit(op))

    def _reader(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = _connect(self._path)
            self._local.db = db
        return db

    async def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        assert self._readers is not None, "store not open"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: op(self._reader()))

    def _next_seq(self) -> int:
        assert self._writer is not None
        self._writer.seq += 1
        return self._writer.seq

    # Organisation -----------------------------------------------------------------------------

    async def get_org(self) -> OrgSettings:
        row = await self._read(lambda db: db.execute("SELECT v FROM kv WHERE k = 'org'").fetchone())
        return OrgSettings.from_wire(json.loads(row[0])) if row else OrgSettings()

    async def put_org(self, org: OrgSettings) -> None:
        body = json.dumps(org.to_wire())
        await self._write(lambda db: db.execute("INSERT OR REPLACE INTO kv VALUES ('org', ?)", (body,)))

    async def put_user(self, user: User) -> None:
        body = json.dumps(user.to_wire())
        await self._write(lambda db: db.execute("INSERT OR REPLACE INTO users VALUES (?, ?)", (user.login, body)))

    async def get_user(self, login: str) -> User | None:
        row = await self._read(lambda db: db.execute("SELECT body FROM users WHERE login = ?", (login,)).fetchone())
        return User.from_wire(json.loads(row[0])) if row else None

    async def list_users(self) -> list[User]:
        rows = await self._read(lambda db: db.execute("SELECT body FROM users ORDER BY login").fetchall())
        return [User.from_wire(json.loads(r[0])) for r in rows]

    # Channels ---------------------------------------------------------------------------------

    async def create_channel(self, channel: Channel, members: Sequence[str]) -> Channel:
        body = json.dumps(channel.to_wire())

        def op(db: sqlite3.Connection) -> Channel:
            try:
                db.execute("INSERT INTO channels VALUES (?, ?, ?, ?)", (channel.id, channel.name, channel.kind, body))
            except sqlite3.IntegrityError as exc:
                raise ChannelExists(f"a channel named {channel.name!r} exists", name=channel.name) from exc
            db.executemany("INSERT OR IGNORE INTO members (channel_id, login) VALUES (?, ?)",
                           [(channel.id, m) for m in members])
            return channel

        return await self._write(op)

    async def update_channel(self, channel: Channel) -> None:
        body = json.dumps(channel.to_wire())
        await self._write(lambda db: db.execute("UPDATE channels SET body = ? WHERE id = ?", (body, channel.id)))

    async def get_channel(self, channel_id: str) -> Channel | None:
        row = await self._read(lambda db: db.execute("SELECT body FROM channels WHERE id = ?",
                                                     (channel_id,)).fetchone())
        return Channel.from_wire(json.loads(row[0])) if row else None

    async def find_channel(self, name: str) -> Channel | None:
        row = await self._read(lambda db: db.execute("SELECT body FROM channels WHERE name = ?", (name,)).fetchone())
        return Channel.from_wire(json.loads(row[0])) if row else None

    async def list_channels(self, kind: str | None = None) -> list[Channel]:
        def op(db: sqlite3.Connection) -> list[Any]:
            if kind is None:
                return db.execute("SELECT body FROM channels ORDER BY name").fetchall()
            return db.execute("SELECT body FROM channels WHERE kind = ? ORDER BY name", (kind,)).fetchall()

        return [Channel.from_wire(json.loads(r[0])) for r in await self._read(op)]

    async def add_members(self, channel_id: str, logins: Sequence[str]) -> None:
        rows = [(channel_id, m) for m in logins]
        await self._write(lambda db: db.executemany(
            "INSERT OR IGNORE INTO members (channel_id, login) VALUES (?, ?)", rows))

    async def remove_members(self, channel_id: str, logins: Sequence[str]) -> None:
        rows = [(channel_id, m) for m in logins]
        await self._write(lambda db: db.executemany("DELETE FROM members WHERE channel_id = ? AND login = ?", rows))

    async def members(self, channel_id: str) -> list[str]:
        rows = await self._read(lambda db: db.execute(
            "SELECT login FROM members WHERE channel_id = ? ORDER BY login", (channel_id,)).fetchall())
        return [r[0] for r in rows]

    async def is_member(self, channel_id: str, login: str) -> bool:
        row = await self._read(lambda db: db.execute(
            "SELECT 1 FROM members WHERE channel_id = ? AND login = ?", (channel_id, login)).fetchone())
        return row is not None

    async def memberships(self, login: str) -> list[Membership]:
        rows = await self._read(lambda db: db.execute(
            "SELECT c.body, m.last_read, (SELECT count(*) FROM messages x WHERE x.channel_id = m.channel_id"
            " AND x.ord > m.last_read) FROM members m JOIN channels c ON c.id = m.channel_id"
            " WHERE m.login = ? ORDER BY c.name", (login,)).fetchall())
        return [Membership(Channel.from_wire(json.loads(r[0])), int(r[1]), int(r[2])) for r in rows]

    async def channel_ids_of(self, login: str) -> list[str]:
        rows = await self._read(lambda db: db.execute(
            "SELECT channel_id FROM members WHERE login = ? ORDER BY channel_id", (login,)).fetchall())
        return [r[0] for r in rows]

    async def set_read(self, channel_id: str, login: str, ord_: int) -> None:
        await self._write(lambda db: db.execute(
            "UPDATE members SET last_read = max(last_read, ?) WHERE channel_id = ? AND login = ?",
            (ord_, channel_id, login)))

    # Messages ---------------------------------------------------------------------------------

    @staticmethod
    def _columns(m: Message) -> tuple[Any, ...]:
        task = m.task
        return (m.id, m.channel_id, m.author, m.client_id, m.seq, m.created_at, int(m.deleted), m.thread,
                task.assignee if task else None, task.status if task else None, task.due if task else None,
                json.dumps(m.to_wire(), ensure_ascii=False))

    def _insert_op(self, db: sqlite3.Connection, message: Message) -> tuple[Message, bool]:
        if message.client_id is not None:
            row = db.execute(f"SELECT {_COLS} FROM messages WHERE author = ? AND client_id = ?",
                             (message.author, message.client_id)).fetchone()
            if row is not None:
                return _message(row), False
        seq = self._next_seq()
        stored = message.with_seq(seq, seq)
        db.execute("INSERT INTO messages (ord, id, channel_id, author, client_id, seq, created_at, deleted,"
                   " thread, task_assignee, task_status, task_due, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                   " ?, ?, ?)", (seq, *self._columns(stored)))
        if not stored.deleted:
            db.execute("INSERT INTO message_fts (rowid, doc) VALUES (?, ?)", (seq, fts_document(stored.search_text)))
        return stored, True

    async def insert_message(self, message: Message) -> tuple[Message, bool]:
        return await self._write(lambda db: self._insert_op(db, message))

    async def insert_many(self, messages: Sequence[Message]) -> int:
        def op(db: sqlite3.Connection) -> int:
            return sum(1 for m in messages if self._insert_op(db, m)[1])

        return await self._write(op)

    async def get_message(self, message_id: str) -> Message | None:
        row = await self._read(lambda db: db.execute(f"SELECT {_COLS} FROM messages WHERE id = ?",
                                                     (message_id,)).fetchone())
        return _message(row) if row else None

    async def by_client_id(self, author: str, client_id: str) -> Message | None:
        row = await self._read(lambda db: db.execute(
            f"SELECT {_COLS} FROM messages WHERE author = ? AND client_id = ?", (author, client_id)).fetchone())
        return _message(row) if row else None

    async def mutate_message(self, message_id: str, change: Mutation) -> Message:
        def op(db: sqlite3.Connection) -> Message:
            row = db.execute(f"SELECT {_COLS} FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise MessageNotFound(f"no message {message_id!r}")
            old = _message(row)
            new = change(old).with_seq(old.ord, self._next_seq())
            cols = self._columns(new)
            db.execute("UPDATE messages SET seq = ?, deleted = ?, task_assignee = ?, task_status = ?, task_due = ?,"
                       " body = ? WHERE ord = ?", (cols[4], cols[6], cols[8], cols[9], cols[10], cols[11], old.ord))
            db.execute("DELETE FROM message_fts WHERE rowid = ?", (old.ord,))
            if not new.deleted:
                db.execute("INSERT INTO message_fts (rowid, doc) VALUES (?, ?)", (old.ord, fts_document(new.search_text)))
            return new

        return await self._write(op)

    async def history(self, channel_id: str, after: int | None, before: int | None, limit: int,
                      thread: str | None = None) -> list[Message]:
        where, args = "channel_id = ?", [channel_id]
        if thread is not None:
            where += " AND thread = ?"
            args.append(thread)

        def op(db: sqlite3.Connection) -> list[Any]:
            if after is not None:
                return db.execute(f"SELECT {_COLS} FROM messages WHERE {where} AND ord > ? ORDER BY ord LIMIT ?",
                                  (*args, after, limit)).fetchall()
            top = before if before is not None else 2 ** 62
            rows = db.execute(f"SELECT {_COLS} FROM messages WHERE {where} AND ord < ? ORDER BY ord DESC LIMIT ?",
                              (*args, top, limit)).fetchall()
            return rows[::-1]

        return [_message(r) for r in await self._read(op)]

    async def changes(self, channel_ids: Sequence[str], since: int, limit: int) -> list[Message]:
        ids = list(channel_ids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_COLS} FROM messages WHERE seq > ? AND channel_id IN ({marks}) ORDER BY seq LIMIT ?",
            (since, *ids, limit)).fetchall())
        return [_message(r) for r in rows]

    async def current_seq(self) -> int:
        row = await self._read(lambda db: db.execute("SELECT v FROM kv WHERE k = 'seq'").fetchone())
        return int(row[0]) if row else 0

    async def search(self, channel_ids: Sequence[str], query: SearchQuery) -> list[Message]:
        match = fts_query(query.text)
        ids = list(channel_ids)
        if match is None or not ids:
            return []
        sql = (f"SELECT m.body, m.ord, m.seq FROM message_fts f JOIN messages m ON m.ord = f.rowid"
               f" WHERE message_fts MATCH ? AND m.deleted = 0 AND m.channel_id IN ({','.join('?' * len(ids))})")
        args: list[Any] = [match, *ids]
        if query.author is not None:
            sql += " AND m.author = ?"
            args.append(query.author)
        if query.before is not None:
            sql += " AND m.created_at < ?"
            args.append(query.before)
        if query.after is not None:
            sql += " AND m.created_at > ?"
            args.append(query.after)
        sql += " ORDER BY f.rowid DESC LIMIT ?"
        args.append(query.limit)
        rows = await self._read(lambda db: db.execute(sql, args).fetchall())
        return [_message(r) for r in rows]

    async def tasks_of(self, assignee: str, open_only: bool) -> list[Message]:
        extra = " AND task_status != 'done'" if open_only else ""
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_COLS} FROM messages WHERE task_assignee = ? AND deleted = 0{extra} ORDER BY ord DESC",
            (assignee,)).fetchall())
        return [_message(r) for r in rows]

    async def due_tasks(self, until: float) -> list[Message]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT {_COLS} FROM messages WHERE task_status IS NOT NULL AND task_status != 'done'"
            " AND task_due <= ? AND deleted = 0 ORDER BY task_due", (until,)).fetchall())
        return [_message(r) for r in rows]

    async def expired_messages(self, channel_id: str, before: float, limit: int) -> list[str]:
        rows = await self._read(lambda db: db.execute(
            "SELECT id FROM messages WHERE channel_id = ? AND deleted = 0 AND created_at < ? ORDER BY ord LIMIT ?",
            (channel_id, before, limit)).fetchall())
        return [r[0] for r in rows]

    # Files ------------------------------------------------------------------------------------

    async def put_file(self, meta: FileMeta) -> None:
        body = json.dumps(meta.to_store(), ensure_ascii=False)
        await self._write(lambda db: db.execute("INSERT OR REPLACE INTO files VALUES (?, ?)", (meta.id, body)))

    async def get_file(self, file_id: str) -> FileMeta | None:
        row = await self._read(lambda db: db.execute("SELECT body FROM files WHERE id = ?", (file_id,)).fetchone())
        return FileMeta.from_store(json.loads(row[0])) if row else None

    async def attach_file(self, file_id: str, message_id: str, channel_id: str, at: float) -> None:
        def op(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT body FROM files WHERE id = ?", (file_id,)).fetchone()
            if row is None:
                return
            body = json.loads(row[0])
            db.execute("INSERT OR REPLACE INTO file_refs VALUES (?, ?, ?)", (file_id, message_id, channel_id))
            if channel_id not in body.get("channels", []):
                body["channels"] = [*body.get("channels", []), channel_id]
            if body.get("attached_at") is None:
                body["attached_at"] = at
            db.execute("UPDATE files SET body = ? WHERE id = ?", (json.dumps(body, ensure_ascii=False), file_id))

        await self._write(op)

    async def detach_file(self, file_id: str, message_id: str, channel_id: str) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM file_refs WHERE file_id = ? AND message_id = ?", (file_id, message_id))
            if db.execute("SELECT 1 FROM file_refs WHERE file_id = ? AND channel_id = ? LIMIT 1",
                          (file_id, channel_id)).fetchone():
                return  # another live message in that channel still carries it
            row = db.execute("SELECT body FROM files WHERE id = ?", (file_id,)).fetchone()
            if row is None:
                return
            body = json.loads(row[0])
            if channel_id in body.get("channels", []):
                # A record from before attached_at: pin what its channels implied, or it would read as never posted.
                body["attached_at"] = FileMeta.from_store(body).attached_at
                body["channels"] = [c for c in body["channels"] if c != channel_id]
                db.execute("UPDATE files SET body = ? WHERE id = ?", (json.dumps(body, ensure_ascii=False), file_id))

        await self._write(op)

    async def unattached_files(self, before: float, limit: int) -> list[FileMeta]:
        rows = await self._read(lambda db: db.execute(
            f"SELECT body FROM files WHERE {_UNATTACHED} AND json_extract(body, '$.created_at') < ?"
            " ORDER BY json_extract(body, '$.created_at') LIMIT ?", (before, limit)).fetchall())
        return [FileMeta.from_store(json.loads(r[0])) for r in rows]

    async def delete_unattached_file(self, file_id: str) -> bool:
        def op(db: sqlite3.Connection) -> bool:
            cur = db.execute(f"DELETE FROM files WHERE id = ? AND {_UNATTACHED}", (file_id,))
            return cur.rowcount > 0

        return await self._write(op)

    async def sha_in_use(self, sha256: str) -> bool:
        row = await self._read(lambda db: db.execute(
            "SELECT 1 FROM files WHERE json_extract(body, '$.sha256') = ? LIMIT 1", (sha256,)).fetchone())
        return row is not None

    async def uploaded_bytes(self, uploader: str, since: float) -> int:
        row = await self._read(lambda db: db.execute(
            "SELECT COALESCE(SUM(json_extract(body, '$.size')), 0) FROM files"
            " WHERE json_extract(body, '$.uploader') = ? AND json_extract(body, '$.created_at') >= ?",
            (uploader, since)).fetchone())
        return int(row[0])
