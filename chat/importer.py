"""Loads export records (docs/export.md) into a store, idempotently: every record has a natural key, and a record
whose key is already there is counted as existing and left alone, so a second run creates nothing.

Natural keys: a user's login; a channel's name (a direct chat's name is `dm:<a>:<b>`, its two members sorted, so
kind plus members); a membership's (channel, login); a message's id, else (author, client id); a file's id.
Both importers feed it: chat/import_jsonl.py (our own exports) and chat/slack_import.py (Slack's, converted to
the same records).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from sqlalchemy import func, select, update

from chat.files import FileVault
from chat.model import Channel, Message, OrgSettings, new_id
from chat.service import CHANNEL_NAME, LOGIN
from chat.sniff import sanitize_name, sniff
from chat.sql_store import SqlChatStore
from common.names import department_ancestors
from store.database import Database
from store.schema import accounts, chat_channels, chat_file_refs, chat_files, chat_members, chat_messages, chat_settings, chat_users
from store.upsert import dialect_insert

log = logging.getLogger(__name__)
KINDS = ("team", "group", "direct", "meeting")
_USER_COLUMNS = [c for c in chat_users.columns.keys() if c not in ("login", "directory_active")]
# Opens an import's blob by the name its file record gives (None: not in the import).
BlobOpener = Callable[[str], Callable[[], BinaryIO] | None]


@dataclass
class Tally:
    created: int = 0
    existing: int = 0
    skipped: int = 0


@dataclass
class ImportCounts:
    kinds: dict[str, Tally] = field(default_factory=dict)
    files_missing: int = 0  # file records whose content the import lacks (or that did not hash right)
    seconds: float = 0.0

    def of(self, kind: str) -> Tally:
        return self.kinds.setdefault(kind, Tally())

    def created_total(self) -> int:
        return sum(t.created for t in self.kinds.values())

    def as_dict(self) -> dict[str, Any]:
        return {**{k: vars(t) for k, t in self.kinds.items()}, "files_missing": self.files_missing}

    def lines(self) -> list[str]:
        return [f"{kind}: {t.created} created, {t.existing} existing" + (f", {t.skipped} skipped" if t.skipped else "")
                for kind, t in self.kinds.items()] + ([f"files missing: {self.files_missing}"] if self.files_missing else [])


class Loader:
    """Feeds records, in export order, into one store. `open_blob` finds a file record's content."""

    def __init__(self, db: Database, vault: FileVault, open_blob: BlobOpener) -> None:
        self.db = db
        self.vault = vault
        self.open_blob = open_blob
        self.store = SqlChatStore(db)  # its batch insert: ord/seq from the shared counter, search terms
        self.counts = ImportCounts()
        self.channel_ids: dict[str, str] = {}  # the export's channel id -> ours
        self.new_members: dict[str, list[str]] = {}  # our channel id -> logins this run added
        self.new_tasks: set[str] = set()

    async def feed(self, records: Sequence[dict[str, Any]]) -> None:
        """Records of one kind after another, each run handed to its loader as a batch."""
        start = 0
        for i in range(1, len(records) + 1):
            if i == len(records) or records[i].get("type") != records[start].get("type"):
                await self._load(str(records[start].get("type")), [r.get(str(r.get("type"))) for r in records[start:i]])
                start = i

    async def _load(self, kind: str, values: list[Any]) -> None:
        loaders = {"version": self._version, "organisation": self._organisation, "department": self._departments,
                   "user": self._users, "channel": self._channels, "membership": self._memberships,
                   "message": self._messages, "task": self._tasks, "file": self._files}
        load = loaders.get(kind)
        good = [v for v in values if isinstance(v, dict)]
        if load is None or len(good) != len(values):
            self.counts.of(kind if load else "unknown").skipped += len(values) if load is None else len(values) - len(good)
            log.warning("skipped %d records of type %r", len(values) - (len(good) if load else 0), kind)
        if load is not None and good:
            await load(good)

    async def _version(self, values: list[dict[str, Any]]) -> None:
        pass  # checked by the reader (import_jsonl.read_version)

    async def _organisation(self, values: list[dict[str, Any]]) -> None:
        tally = self.counts.of("organisations")
        for v in values:
            settings = v.get("settings")
            there = await self.db.first(select(chat_settings.c.key).where(chat_settings.c.key == "org"))
            if there is not None or not isinstance(settings, dict):
                tally.existing += 1  # the target's own settings win
                continue
            await self.store.put_org(OrgSettings.from_wire(settings))
            tally.created += 1

    async def _departments(self, values: list[dict[str, Any]]) -> None:
        """Departments are paths on users: one is "created" when no user of ours had it before."""
        tally = self.counts.of("departments")
        async with self.db.read() as conn:
            ours = {r[0] for r in await conn.execute(select(chat_users.c.department).distinct())}
        known = department_ancestors(ours)
        for v in values:
            if str(v.get("path", "")) in known:
                tally.existing += 1
            else:
                tally.created += 1

    async def _users(self, values: list[dict[str, Any]]) -> None:
        tally = self.counts.of("users")
        rows = []
        for v in values:
            login = v.get("login")
            if not isinstance(login, str) or not LOGIN.match(login):
                tally.skipped += 1
                continue
            # Columns this store has (an export from a newer or older release may name more, or fewer).
            extra = {k: v[k] for k in _USER_COLUMNS if k in v and isinstance(v[k], (str, int, float, bool, type(None)))}
            rows.append({**extra, "login": login, "role": _text(v, "role", "member"), "name": _text(v, "name"),
                         "department": _text(v, "department"), "created_at": _num(v, "created_at"),
                         "email": _text(v, "email"), "title": _text(v, "title"), "source": _text(v, "source", "local"),
                         "external_id": v.get("external_id") if isinstance(v.get("external_id"), str) else None,
                         "updated_at": _num(v, "updated_at")})
        inactive = {str(v["login"]) for v in values if v.get("active") is False}

        async def op(conn: Any) -> list[str]:
            logins = [r["login"] for r in rows]
            there = {r[0] for r in await conn.execute(select(chat_users.c.login).where(chat_users.c.login.in_(logins)))}
            new = [r for r in rows if r["login"] not in there]
            if new:
                await conn.execute(dialect_insert(self.db, chat_users).on_conflict_do_nothing(), new)
                off = [{"login": r["login"], "password_hash": None, "token_epoch": 1, "active": False,
                        "updated_at": r["created_at"]} for r in new if r["login"] in inactive]
                if off:  # deactivated there (or a placeholder): deactivated here, sign-in refused
                    await conn.execute(dialect_insert(self.db, accounts).on_conflict_do_nothing(), off)
            return [r["login"] for r in new]

        created = await self.db.write(op) if rows else []
        tally.created += len(created)
        tally.existing += len(rows) - len(created)

    async def _channels(self, values: list[dict[str, Any]]) -> None:
        tally = self.counts.of("channels")
        for v in values:
            theirs, name, kind = v.get("id"), v.get("name"), v.get("kind")
            if not isinstance(theirs, str) or not isinstance(name, str) or kind not in KINDS or not (
                    CHANNEL_NAME.match(name) or name.startswith("dm:")):
                tally.skipped += 1
                continue
            existing = await self.store.find_channel(name)
            if existing is not None:
                self.channel_ids[theirs] = existing.id
                tally.existing += 1
                continue
            taken = await self.store.get_channel(theirs)
            channel = replace(Channel.from_wire(v), id=new_id("c_") if taken is not None or not theirs.startswith("c_")
                              else theirs, kind=str(kind), created_at=_num(v, "created_at"))
            await self.store.create_channel(channel, [])
            self.channel_ids[theirs] = channel.id
            tally.created += 1

    async def _memberships(self, values: list[dict[str, Any]]) -> None:
        tally = self.counts.of("memberships")
        pairs: dict[tuple[str, str], None] = {}
        for v in values:
            channel = self.channel_ids.get(str(v.get("channel")))
            login = v.get("login")
            if channel is None or not isinstance(login, str) or not LOGIN.match(login):
                tally.skipped += 1
            else:
                pairs[(channel, login)] = None

        async def op(conn: Any) -> list[tuple[str, str]]:
            channels = list({c for c, _ in pairs})
            there = {(r[0], r[1]) for r in await conn.execute(select(chat_members.c.channel_id, chat_members.c.login)
                                                               .where(chat_members.c.channel_id.in_(channels)))}
            new = [p for p in pairs if p not in there]
            if new:
                await conn.execute(dialect_insert(self.db, chat_members).on_conflict_do_nothing(),
                                   [{"channel_id": c, "login": m, "last_read": 0} for c, m in new])
            return new

        created = await self.db.write(op) if pairs else []
        for channel, login in created:
            self.new_members.setdefault(channel, []).append(login)
        tally.created += len(created)
        tally.existing += len(pairs) - len(created)

    async def _messages(self, values: list[dict[str, Any]]) -> None:
        tally = self.counts.of("messages")
        async with self.db.read() as conn:  # a second run stops here: nothing more is parsed
            there = {r[0] for r in await conn.execute(select(chat_messages.c.id).where(
                chat_messages.c.id.in_([v.get("id") for v in values if isinstance(v.get("id"), str)])))}
        new: list[Message] = []
        for v in values:
            if v.get("id") in there:
                tally.existing += 1
                continue
            channel = self.channel_ids.get(str(v.get("channel")))
            m = Message.from_wire(v)
            if channel is None or not m.id or not LOGIN.match(m.author):
                tally.skipped += 1
                continue
            new.append(replace(m, channel_id=channel, ord=0, seq=0))
        created = await self.store.insert_many(new)  # a message whose (author, client id) is there: existing
        self.new_tasks.update(m.id for m in new if m.task is not None)
        tally.created += created
        tally.existing += len(new) - created

    async def _tasks(self, values: list[dict[str, Any]]) -> None:
        """Tasks are messages (they came with them); the records say which, for the counts."""
        tally = self.counts.of("tasks")
        for v in values:
            if v.get("message") in self.new_tasks:
                tally.created += 1
            else:
                tally.existing += 1

    async def _files(self, values: list[dict[str, Any]]) -> None:
        tally = self.counts.of("files")
        for v in values:
            file_id, refs = v.get("id"), v.get("refs")
            if not isinstance(file_id, str) or not file_id or not isinstance(refs, list):
                tally.skipped += 1
                continue
            mapped = [(str(r[0]), self.channel_ids[str(r[1])]) for r in refs
                      if isinstance(r, list) and len(r) == 2 and str(r[1]) in self.channel_ids]
            if await self.store.get_file(file_id) is not None:
                await self._refs(file_id, mapped)
                tally.existing += 1
                continue
            opener = self.open_blob(str(v.get("blob"))) if isinstance(v.get("blob"), str) else None
            if opener is None:
                self.counts.files_missing += 1
                continue
            expected = v.get("sha256") if isinstance(v.get("sha256"), str) and v.get("sha256") else None
            try:
                sha, size, head = await self.vault.adopt(opener, expected)
            except (OSError, ValueError) as exc:
                log.warning("file %s not imported: %s", file_id, exc)
                self.counts.files_missing += 1
                continue
            values_ = {"id": file_id, "sha256": sha, "name": sanitize_name(_text(v, "name")) or "file",
                       "mime": _text(v, "mime") or sniff(head), "size": size, "uploader": _text(v, "uploader"),
                       "created_at": _num(v, "created_at"), "attached_at": _num(v, "attached_at") or _num(v, "created_at")}
            await self.db.write(lambda c, row=values_: c.execute(dialect_insert(self.db, chat_files).on_conflict_do_nothing(), [row]))  # type: ignore[misc]
            await self._refs(file_id, mapped)
            tally.created += 1

    async def _refs(self, file_id: str, refs: list[tuple[str, str]]) -> None:
        if refs:
            rows = [{"file_id": file_id, "message_id": m, "channel_id": c} for m, c in refs]
            await self.db.write(lambda c: c.execute(dialect_insert(self.db, chat_file_refs).on_conflict_do_nothing(), rows))

    async def finish(self) -> None:
        """Members this run added have read the history it brought (not thousands of unread old messages)."""
        for channel, logins in self.new_members.items():
            async def op(conn: Any, channel: str = channel, logins: list[str] = logins) -> None:
                newest = select(func.coalesce(func.max(chat_messages.c.ord), 0)).where(
                    chat_messages.c.channel_id == channel).scalar_subquery()
                for i in range(0, len(logins), 500):
                    await conn.execute(update(chat_members).where(
                        chat_members.c.channel_id == channel, chat_members.c.login.in_(logins[i:i + 500]))
                        .values(last_read=newest))
            await self.db.write(op)


def _text(v: dict[str, Any], key: str, default: str = "") -> str:
    value = v.get(key)
    return value if isinstance(value, str) else default


def _num(v: dict[str, Any], key: str) -> float:
    value = v.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
