"""Imports a data dir made by a release before the SQL store into the store, once, on start and by
`convene db upgrade`.

What it reads (each file only if it is there): `chat/chat.db` (org settings, users, channels with their members
and read marks, every message with its id, ord, seq, edits, reactions, thread, task and attachments, file
records), `keys.db` (API keys: only their hashes, as before), `meetings.db` (the meeting ledger of the
release just before the store) and `transcripts/<room>/<meeting>/` (transcript.json and the notes' state;
the rendered files there are not needed: every format is rendered from the transcript). Each, once copied, is
renamed `<name>.imported` (a database with its -wal/-shm), so a second start imports nothing and the old
files stay for whoever wants to look. `workers.db` (where live workers listened: nothing to keep) is renamed
without copying. What stays where it was: file blobs (`chat/files`, `--files-dir`) and the token secret
(`token_secret`, unless `--token-secret-file` names another).

Copies are idempotent (rows already there are kept), so an import that stopped half-way runs again whole.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chat.model import Channel, FileMeta, Message, OrgSettings, User
from chat.sql_store import SqlChatStore
from identity.apikeys import ApiKey, ApiKeyStore
from store.database import Database
from store.schema import api_keys, counters, meeting_removals, meetings
from transcribe.records import STATE_FILE
from transcribe.store import TranscriptStore
from transcribe.transcript import Transcript

log = logging.getLogger("convene.upgrade")

IMPORTED = ".imported"
_SEQ = "chat_seq"


@dataclass
class Imported:
    users: int = 0
    channels: int = 0
    messages: int = 0
    files: int = 0
    keys: int = 0
    meetings: int = 0
    transcripts: int = 0
    renamed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.renamed)

    def summary(self) -> str:
        return (f"imported {self.users} users, {self.channels} channels, {self.messages} messages, {self.files} files,"
                f" {self.keys} API keys, {self.meetings} meetings, {self.transcripts} transcripts from {', '.join(self.renamed)}")


def _read(path: Path, sql: str) -> list[tuple[Any, ...]]:
    # Read-only, and never creating the file: an import reads what the old release left.
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(db.execute(sql).fetchall())
    except sqlite3.OperationalError:
        return []  # a table that release did not have yet
    finally:
        db.close()


def _retire(path: Path, done: Imported) -> None:
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(side.with_name(side.name + IMPORTED))
    path.rename(path.with_name(path.name + IMPORTED))
    done.renamed.append(path.name)


async def _import_chat(path: Path, db: Database, done: Imported) -> None:
    chat = SqlChatStore(db)
    kv = dict(_read(path, "SELECT k, v FROM kv"))
    if "org" in kv:
        await chat.put_org(OrgSettings.from_wire(json.loads(kv["org"])))
    for (body,) in _read(path, "SELECT body FROM users ORDER BY login"):
        await chat.put_user(User.from_wire(json.loads(body)))
        done.users += 1
    members: dict[str, list[tuple[str, int]]] = {}
    for channel_id, login, last_read in _read(path, "SELECT channel_id, login, last_read FROM members"):
        members.setdefault(channel_id, []).append((login, int(last_read)))
    for (body,) in _read(path, "SELECT body FROM channels ORDER BY id"):
        channel = Channel.from_wire(json.loads(body))
        if await chat.get_channel(channel.id) is None:
            await chat.create_channel(channel, [login for login, _ in members.get(channel.id, [])])
        else:
            await chat.add_members(channel.id, [login for login, _ in members.get(channel.id, [])])
        for login, last_read in members.get(channel.id, []):
            if last_read:
                await chat.set_read(channel.id, login, last_read)
        done.channels += 1
    for body, ord_, seq in _read(path, "SELECT body, ord, seq FROM messages ORDER BY ord"):
        await chat.replace_message(Message.from_wire(json.loads(body)).with_seq(int(ord_), int(seq)))
        done.messages += 1
    for (body,) in _read(path, "SELECT body FROM files ORDER BY id"):
        await chat.put_file(FileMeta.from_store(json.loads(body)))
        done.files += 1
    # The old counter may be past the last message's seq: sync cursors clients hold stay valid.
    old_seq = int(kv.get("seq", 0))

    async def raise_counter(conn: AsyncConnection) -> None:
        await conn.execute(update(counters).where(counters.c.name == _SEQ, counters.c.value < old_seq)
                           .values(value=old_seq))
    await db.write(raise_counter)


async def _import_keys(path: Path, db: Database, done: Imported) -> None:
    keys = ApiKeyStore(db)
    for key_id, name, role, secret_hash, created_at in _read(
            path, "SELECT key_id, name, role, secret_hash, created_at FROM api_keys"):
        there = await db.first(select(api_keys.c.key_id).where(api_keys.c.key_id == key_id))
        if there is None:
            await keys.insert(ApiKey(key_id=key_id, name=name, role=role, created_at=float(created_at)), secret_hash)
        done.keys += 1


async def _import_meetings(path: Path, db: Database, done: Imported) -> None:
    rows = _read(path, "SELECT meeting_id, room, started_at, guests, ended_at, end_reason FROM meetings")
    removals = _read(path, "SELECT meeting_id, identity, removed_at FROM removals")

    for meeting_id, room, started_at, guests, ended_at, end_reason in rows:
        async def one(conn: AsyncConnection) -> None:
            if (await conn.execute(select(meetings.c.meeting_id).where(meetings.c.meeting_id == meeting_id))).first():
                return
            await conn.execute(meetings.insert().values(
                meeting_id=meeting_id, room=room, started_at=float(started_at), guests=bool(guests),
                ended_at=None if ended_at is None else float(ended_at), end_reason=end_reason or ""))
        try:
            await db.write(one)
        except IntegrityError:
            # The store already has a live meeting in that room: the old one is over.
            log.warning("meeting %s of room %s not imported: the room has a live meeting", meeting_id[:6], room)
            continue
        done.meetings += 1
    for meeting_id, identity, removed_at in removals:
        async def removal(conn: AsyncConnection) -> None:
            found = (await conn.execute(select(meeting_removals.c.meeting_id).where(
                meeting_removals.c.meeting_id == meeting_id, meeting_removals.c.identity == identity))).first()
            known = (await conn.execute(select(meetings.c.meeting_id).where(
                meetings.c.meeting_id == meeting_id))).first()
            if found is None and known is not None:
                await conn.execute(meeting_removals.insert().values(meeting_id=meeting_id, identity=identity,
                                                                    removed_at=float(removed_at)))
        await db.write(removal)


async def _import_transcripts(root: Path, db: Database, done: Imported) -> None:
    store = TranscriptStore(db)
    for path in sorted(root.glob("*/*/transcript.json")):
        room, meeting_id = path.parent.parent.name, path.parent.name
        try:
            transcript = Transcript.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("transcript %s not imported: %r", path, exc)
            continue
        if (transcript.room, transcript.meeting_id) != (room, meeting_id):
            log.warning("transcript %s not imported: it names room %r meeting %r", path, transcript.room,
                        transcript.meeting_id)
            continue
        if await store.aload(room, meeting_id) is None:
            await store.asave(transcript)
        state = path.parent / STATE_FILE
        if state.is_file() and await store.load_state(room, meeting_id) is None:
            await store.save_state(room, meeting_id, json.loads(state.read_text(encoding="utf-8")))
        done.transcripts += 1


async def import_legacy(db: Database, data_dir: Path) -> Imported:
    """Copies the old files of `data_dir` into the open store `db`, then renames them (see the module doc)."""
    done = Imported()
    steps = ((data_dir / "chat" / "chat.db", _import_chat), (data_dir / "keys.db", _import_keys),
             (data_dir / "meetings.db", _import_meetings))
    for path, step in steps:
        if path.is_file():
            await step(path, db, done)
            _retire(path, done)
    transcripts = data_dir / "transcripts"
    if transcripts.is_dir():
        await _import_transcripts(transcripts, db, done)
        _retire(transcripts, done)
    workers = data_dir / "workers.db"
    if workers.is_file():
        _retire(workers, done)
    if done:
        log.info("%s", done.summary())
    return done
