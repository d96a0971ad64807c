"""The ChatStore on the SQL store layer (store/): one code path for embedded SQLite and PostgreSQL.

Ordering: every message write first bumps the `chat_seq` counter row inside its transaction. The row
lock that takes (PostgreSQL; SQLite has one writer anyway) is held until commit, so writers of every
process commit in counter order and "everything with seq > cursor" never skips a change. A retried
post is stored once: (author, client_id) is unique, the insert does nothing on conflict and the retry
gets the stored message. Every write touching several tables (a message and its search terms, a file
and its references) is one transaction (store.database groups them, each in its own savepoint).

Search: a term table (chat/textindex.py says what terms are) read by range scans, so a word finds its
inflections and longer words; ranked by relevance (exact words before inflections) then recency.
Inline filters in the query: `from:login`, `in:channel`, `before:DATE`, `after:DATE`, `has:file`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from chat.errors import ChannelExists, MessageNotFound
from chat.model import Channel, FileMeta, Membership, Message, OrgSettings, SearchQuery, User
from chat.store import Mutation
from chat.textindex import QueryTerm, index_terms, prefix_end, query_terms, relevance
from common.errors import InvalidField
from identity.orgs import DEFAULT_ORG, SEPARATOR, plain, qualify
from store.database import Database
from store.schema import (
    chat_channels,
    chat_file_refs,
    chat_files,
    chat_members,
    chat_messages,
    chat_search_terms,
    chat_settings,
    chat_users,
    counters,
)
from store.upsert import dialect_insert

# A result row (typed loosely: Row's type parameters differ between SQLAlchemy 2.0 and 2.1).
_Row = Any
SEQ = "chat_seq"
_LEGACY_REF = "legacy:"  # a file record that named its channels before references existed
_MSG_COLS = (chat_messages.c.body, chat_messages.c.ord, chat_messages.c.seq)
# Search plans (see SqlChatStore.search): a word with fewer postings than _RARE is ranked from its
# postings; postings are counted up to _COUNT_CAP; the newest-first walk starts with at least
# _WALK_FIRST messages, grows its window ×4 and gives up after _WALK_BUDGET messages.
_RARE = 3000
_COUNT_CAP = 10_000
_WALK_FIRST = 2048
_WALK_BUDGET = 300_000
_TERMS_PER_MESSAGE = 8
_MERGE_WORDS = 64  # a query word covering at most this many distinct terms is walked term by term  # about, in chat text: turns a posting count into a share of messages


def _message(row: _Row) -> Message:
    return Message.from_wire(json.loads(row[0])).with_seq(int(row[1]), int(row[2]))


def _settings_key(org_id: str) -> str:
    """The organisation's settings row: `org` (the default organisation's, as before), else `org:<org id>`."""
    return "org" if org_id == DEFAULT_ORG else f"org:{org_id}"


def _channel(row: _Row) -> Channel:
    m = row._mapping
    return Channel(id=m["id"], name=plain(m["name"]), kind=m["kind"], created_by=m["created_by"],
                   created_at=float(m["created_at"]), topic=m["topic"], retention_days=m["retention_days"],
                   watermark=m["watermark"], archived_at=m["archived_at"], org=m["org_id"])


def _channel_values(c: Channel) -> dict[str, Any]:
    # The stored name is `org~name` outside the default organisation: the table's one unique name stays unique
    # per organisation (identity/orgs.py), and `_channel` gives the plain name back.
    return {"id": c.id, "name": qualify(c.org, c.name), "kind": c.kind, "created_by": c.created_by,
            "created_at": c.created_at, "topic": c.topic, "retention_days": c.retention_days, "watermark": c.watermark,
            "archived_at": c.archived_at, "org_id": c.org}


def message_values(m: Message) -> dict[str, Any]:
    task = m.task
    return {"ord": m.ord, "id": m.id, "channel_id": m.channel_id, "author": m.author, "client_id": m.client_id,
            "seq": m.seq, "type": m.type, "created_at": m.created_at, "deleted": m.deleted, "thread": m.thread,
            "has_file": any(a.file_id for a in m.attachments),
            "task_assignee": task.assignee if task else None, "task_status": task.status if task else None,
            "task_due": task.due if task else None, "via": m.via, "body": json.dumps(m.to_wire(), ensure_ascii=False)}


def term_rows_of(m: Message) -> list[dict[str, Any]]:
    if m.deleted:
        return []
    return [{"term": t, "ord": m.ord, "channel_id": m.channel_id} for t in sorted(index_terms(m.search_text))]


def _date(value: str, name: str) -> float:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidField(f"{name}: takes a date like 2025-01-31 or 2025-01-31T09:00", field="q") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


class _Filters:
    """The `key:value` words of a query, and the words left to search."""

    def __init__(self, text: str) -> None:
        self.author: str | None = None
        self.channel: str | None = None
        self.before: float | None = None
        self.after: float | None = None
        self.has_file = False
        words: list[str] = []
        for word in text.split():
            key, sep, value = word.partition(":")
            key = key.lower()
            if not sep or not value or key not in ("from", "in", "before", "after", "has"):
                words.append(word)
            elif key == "from":
                self.author = value.lstrip("@")
            elif key == "in":
                self.channel = value.lstrip("#")
            elif key == "before":
                self.before = _date(value, "before")
            elif key == "after":
                self.after = _date(value, "after")
            elif value.lower() == "file":
                self.has_file = True
            else:
                raise InvalidField("has: takes file", field="q")
        self.text = " ".join(words)

    @property
    def any(self) -> bool:
        return bool(self.author or self.channel or self.before or self.after or self.has_file)


@dataclass(frozen=True)
class _Where:
    """A search's filters on the message: as SQLAlchemy expressions, or as text on alias `m`."""

    author: str | None
    before: list[float]
    after: list[float]
    has_file: bool

    def expressions(self) -> list[ColumnElement[bool]]:
        m = chat_messages
        out: list[ColumnElement[bool]] = [m.c.deleted.is_(False)]
        if self.author is not None:
            out.append(m.c.author == self.author)
        out.extend(m.c.created_at < b for b in self.before)
        out.extend(m.c.created_at > a for a in self.after)
        if self.has_file:
            out.append(m.c.has_file.is_(True))
        return out

    def sql(self, sql: _Text) -> list[str]:
        out = [f"m.deleted = {sql.bind(False)}"]
        if self.author is not None:
            out.append(f"m.author = {sql.bind(self.author)}")
        out.extend(f"m.created_at < {sql.bind(b)}" for b in self.before)
        out.extend(f"m.created_at > {sql.bind(a)}" for a in self.after)
        if self.has_file:
            out.append(f"m.has_file = {sql.bind(True)}")
        return out


class _Text:
    """Binds for a statement written as text."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"b{len(self.params)}"
        self.params[name] = value
        return ":" + name

    def binds(self, values: Sequence[Any]) -> str:
        return ", ".join(self.bind(v) for v in values)

    def match(self, q: QueryTerm, alias: str) -> str:
        """Postings row `alias` is one of q's terms."""
        if q.all_of:
            return f"{alias}.term IN ({self.binds(q.all_of)})"
        ranges = [f"({alias}.term >= {self.bind(p)} AND {alias}.term < {self.bind(prefix_end(p))})"
                  for p in q.prefixes]
        return "(" + " OR ".join(ranges) + ")"


# The distinct terms in [p, e): each step one index seek for the next term (at most cap + 1 of them).
_SKIP_SCAN = """WITH RECURSIVE v(term, n) AS (
  SELECT min(term), 1 FROM chat_search_terms WHERE term >= :p AND term < :e
  UNION ALL
  SELECT (SELECT min(x.term) FROM chat_search_terms x WHERE x.term > v.term AND x.term < :e), v.n + 1
  FROM v WHERE v.term IS NOT NULL AND v.n <= :cap)
SELECT term FROM v WHERE term IS NOT NULL"""


class SqlChatStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[tuple[Message, asyncio.Future[tuple[Message, bool]]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def _one(self, stmt: Any) -> _Row | None:
        return await self.db.first(stmt)

    async def _all(self, stmt: Any) -> list[_Row]:
        return await self.db.all(stmt)

    # Organisation -----------------------------------------------------------------------------

    async def get_org(self, org_id: str = DEFAULT_ORG) -> OrgSettings:
        row = await self._one(select(chat_settings.c.value).where(chat_settings.c.key == _settings_key(org_id)))
        return OrgSettings.from_wire(json.loads(row[0])) if row else OrgSettings()

    async def put_org(self, org: OrgSettings, org_id: str = DEFAULT_ORG) -> None:
        value = json.dumps(org.to_wire())
        stmt = dialect_insert(self.db, chat_settings).values(key=_settings_key(org_id), value=value)
        await self.db.write(lambda c: c.execute(stmt.on_conflict_do_update(
            index_elements=[chat_settings.c.key], set_={"value": value})))

    async def put_user(self, user: User) -> None:
        values = {"login": user.login, "role": user.role, "name": user.name, "department": user.department,
                  "created_at": user.created_at}
        # A user's organisation is set when the row is made and never changed by an update.
        stmt = dialect_insert(self.db, chat_users).values(**values, org_id=user.org).on_conflict_do_update(
            index_elements=[chat_users.c.login], set_={k: v for k, v in values.items() if k != "login"})
        await self.db.write(lambda c: c.execute(stmt))

    @staticmethod
    def _user(row: _Row) -> User:
        return User(login=row.login, role=row.role, name=row.name, department=row.department,
                    created_at=float(row.created_at), email=row.email, title=row.title, source=row.source,
                    org=row.org_id)

    async def get_user(self, login: str) -> User | None:
        row = await self._one(select(chat_users).where(chat_users.c.login == login))
        return self._user(row) if row else None

    async def get_users(self, logins: Sequence[str]) -> dict[str, User]:
        rows = await self._all(select(chat_users).where(chat_users.c.login.in_(list(logins)))) if logins else []
        return {str(r.login): self._user(r) for r in rows}

    async def list_users(self, org: str | None = None) -> list[User]:
        """The users of organisation `org` (None: of every organisation, for the server's own jobs)."""
        stmt = select(chat_users) if org is None else select(chat_users).where(chat_users.c.org_id == org)
        return [self._user(r) for r in await self._all(stmt.order_by(chat_users.c.login))]

    # Channels ---------------------------------------------------------------------------------

    async def create_channel(self, channel: Channel, members: Sequence[str]) -> Channel:
        async def op(conn: AsyncConnection) -> Channel:
            stored = (await conn.execute(dialect_insert(self.db, chat_channels).values(**_channel_values(channel))
                                         .on_conflict_do_nothing().returning(chat_channels.c.id))).first()
            if stored is None:
                raise ChannelExists(f"a channel named {channel.name!r} exists", name=channel.name)
            await self._add_members(conn, channel.id, members)
            return channel

        return await self.db.write(op)

    async def _add_members(self, conn: AsyncConnection, channel_id: str, logins: Sequence[str]) -> None:
        if logins:
            rows = [{"channel_id": channel_id, "login": m, "last_read": 0} for m in dict.fromkeys(logins)]
            await conn.execute(dialect_insert(self.db, chat_members).on_conflict_do_nothing(), rows)

    async def update_channel(self, channel: Channel) -> None:
        values = _channel_values(channel)
        del values["id"]
        await self.db.write(lambda c: c.execute(
            update(chat_channels).where(chat_channels.c.id == channel.id).values(**values)))

    async def get_channel(self, channel_id: str) -> Channel | None:
        row = await self._one(select(chat_channels).where(chat_channels.c.id == channel_id))
        return _channel(row) if row else None

    async def find_channel(self, name: str, org: str = DEFAULT_ORG) -> Channel | None:
        row = await self._one(select(chat_channels).where(chat_channels.c.name == qualify(org, name)))
        return _channel(row) if row else None

    async def list_channels(self, kind: str | None = None, org: str | None = None) -> list[Channel]:
        """Channels (of `kind`; of organisation `org`, None: of every organisation)."""
        stmt = select(chat_channels).order_by(chat_channels.c.name)
        if kind is not None:
            stmt = stmt.where(chat_channels.c.kind == kind)
        if org is not None:
            stmt = stmt.where(chat_channels.c.org_id == org)
        return [_channel(r) for r in await self._all(stmt)]

    async def add_members(self, channel_id: str, logins: Sequence[str]) -> None:
        await self.db.write(lambda c: self._add_members(c, channel_id, logins))

    async def remove_members(self, channel_id: str, logins: Sequence[str]) -> None:
        await self.db.write(lambda c: c.execute(delete(chat_members).where(
            chat_members.c.channel_id == channel_id, chat_members.c.login.in_(list(logins)))))

    async def members(self, channel_id: str) -> list[str]:
        rows = await self._all(select(chat_members.c.login).where(chat_members.c.channel_id == channel_id)
                               .order_by(chat_members.c.login))
        return [r[0] for r in rows]

    async def is_member(self, channel_id: str, login: str) -> bool:
        row = await self._one(select(literal(1)).where(chat_members.c.channel_id == channel_id,
                                                       chat_members.c.login == login))
        return row is not None

    async def memberships(self, login: str) -> list[Membership]:
        m, x = chat_members, chat_messages.alias("x")
        unread = (select(func.count()).where(x.c.channel_id == m.c.channel_id, x.c.ord > m.c.last_read)
                  .scalar_subquery())
        stmt = (select(chat_channels, m.c.last_read, unread.label("unread"))
                .join(m, m.c.channel_id == chat_channels.c.id).where(m.c.login == login)
                .order_by(chat_channels.c.name))
        return [Membership(_channel(r), int(r.last_read), int(r.unread)) for r in await self._all(stmt)]

    async def channel_ids_of(self, login: str) -> list[str]:
        rows = await self._all(select(chat_members.c.channel_id).where(chat_members.c.login == login)
                               .order_by(chat_members.c.channel_id))
        return [r[0] for r in rows]

    async def set_read(self, channel_id: str, login: str, ord_: int) -> None:
        await self.db.write(lambda c: c.execute(update(chat_members).where(
            chat_members.c.channel_id == channel_id, chat_members.c.login == login,
            chat_members.c.last_read < ord_).values(last_read=ord_)))

    # Messages ---------------------------------------------------------------------------------

    @staticmethod
    async def _take_seq(conn: AsyncConnection, n: int) -> int:
        """Adds n to the counter (locking its row until commit) and returns the value before."""
        row = (await conn.execute(update(counters).where(counters.c.name == SEQ)
                                  .values(value=counters.c.value + n).returning(counters.c.value))).first()
        if row is None:  # a database from before the row was seeded
            await conn.execute(counters.insert().values(name=SEQ, value=n))
            return 0
        return int(row[0]) - n

    async def _insert_batch(self, conn: AsyncConnection, messages: Sequence[Message]) -> list[tuple[Message, bool]]:
        base = await self._take_seq(conn, len(messages))  # first: the lock, then look for retries
        keyed = [(m.author, m.client_id) for m in messages if m.client_id is not None]
        seen: dict[tuple[str, str], Message] = {}
        if keyed:
            rows = await conn.execute(select(*_MSG_COLS, chat_messages.c.author, chat_messages.c.client_id).where(
                tuple_(chat_messages.c.author, chat_messages.c.client_id).in_(list(dict.fromkeys(keyed)))))
            seen = {(r.author, r.client_id): _message(r) for r in rows}
        out: list[tuple[Message, bool]] = []
        new: list[Message] = []
        for i, m in enumerate(messages):
            key = (m.author, m.client_id) if m.client_id is not None else None
            if key is not None and key in seen:
                out.append((seen[key], False))
                continue
            stored = m.with_seq(base + i + 1, base + i + 1)  # a retry leaves a gap: harmless
            if key is not None:
                seen[key] = stored
            new.append(stored)
            out.append((stored, True))
        if new:
            await conn.execute(chat_messages.insert(), [message_values(m) for m in new])
            terms = [row for m in new for row in term_rows_of(m)]
            if terms:
                await conn.execute(chat_search_terms.insert(), terms)
        return out

    async def insert_message(self, message: Message) -> tuple[Message, bool]:
        # Posts arriving together are stored by one write (4 statements for the lot, not per post).
        fut: asyncio.Future[tuple[Message, bool]] = asyncio.get_running_loop().create_future()
        self._pending.append((message, fut))
        if len(self._pending) == 1:
            self._flushes.add(task := asyncio.create_task(self._flush_posts()))
            task.add_done_callback(self._flushes.discard)
        return await fut

    async def _flush_posts(self) -> None:
        taken: list[tuple[Message, asyncio.Future[tuple[Message, bool]]]] = []

        async def op(conn: AsyncConnection) -> list[tuple[Message, bool]]:
            taken.extend(self._pending)  # posts queued from now on start the next write
            self._pending = []
            return await self._insert_batch(conn, [m for m, _ in taken])

        try:
            results = await self.db.write(op)
        except Exception:  # noqa: BLE001 - one bad post (a channel just deleted?): store each alone
            if not taken:  # the group failed before our turn
                taken.extend(self._pending)
                self._pending = []
            for message, fut in taken:
                try:
                    alone = await self.db.write(lambda c, m=message: self._insert_batch(c, [m]))  # type: ignore[misc]
                except Exception as exc:  # noqa: BLE001 - handed to its caller
                    fut.set_exception(exc)
                else:
                    fut.set_result(alone[0])
            return
        for result, (_, fut) in zip(results, taken):
            if not fut.done():
                fut.set_result(result)

    async def insert_many(self, messages: Sequence[Message]) -> int:
        async def op(conn: AsyncConnection) -> int:
            return sum(1 for _, created in await self._insert_batch(conn, messages) if created)

        return await self.db.write(op) if messages else 0

    async def get_message(self, message_id: str) -> Message | None:
        row = await self._one(select(*_MSG_COLS).where(chat_messages.c.id == message_id))
        return _message(row) if row else None

    async def by_client_id(self, author: str, client_id: str) -> Message | None:
        row = await self._one(select(*_MSG_COLS).where(chat_messages.c.author == author,
                                                       chat_messages.c.client_id == client_id))
        return _message(row) if row else None

    async def mutate_message(self, message_id: str, change: Mutation) -> Message:
        async def op(conn: AsyncConnection) -> Message:
            seq = await self._take_seq(conn, 1) + 1
            row = (await conn.execute(select(*_MSG_COLS).where(chat_messages.c.id == message_id)
                                      .with_for_update())).first()
            if row is None:
                raise MessageNotFound(f"no message {message_id!r}")
            old = _message(row)
            new = change(old).with_seq(old.ord, seq)
            values = message_values(new)
            for fixed in ("ord", "id", "channel_id", "author", "client_id", "created_at", "via"):
                del values[fixed]
            await conn.execute(update(chat_messages).where(chat_messages.c.ord == old.ord).values(**values))
            old_terms = {r["term"] for r in term_rows_of(old)}
            new_rows = term_rows_of(new)
            new_terms = {r["term"] for r in new_rows}
            if old_terms - new_terms:
                await conn.execute(delete(chat_search_terms).where(
                    chat_search_terms.c.ord == old.ord, chat_search_terms.c.term.in_(sorted(old_terms - new_terms))))
            added = [r for r in new_rows if r["term"] not in old_terms]
            if added:
                await conn.execute(dialect_insert(self.db, chat_search_terms).on_conflict_do_nothing(), added)
            return new

        return await self.db.write(op)

    async def history(self, channel_id: str, after: int | None, before: int | None, limit: int,
                      thread: str | None = None) -> list[Message]:
        where: list[ColumnElement[bool]] = [chat_messages.c.channel_id == channel_id]
        if thread is not None:
            where.append(chat_messages.c.thread == thread)
        if after is not None:
            stmt = select(*_MSG_COLS).where(*where, chat_messages.c.ord > after).order_by(chat_messages.c.ord)
            return [_message(r) for r in await self._all(stmt.limit(limit))]
        if before is not None:
            where.append(chat_messages.c.ord < before)
        stmt = select(*_MSG_COLS).where(*where).order_by(chat_messages.c.ord.desc()).limit(limit)
        return [_message(r) for r in reversed(await self._all(stmt))]

    async def changes(self, channel_ids: Sequence[str], since: int, limit: int) -> list[Message]:
        if not channel_ids:
            return []
        # A cursor is recent: walk the seq index from it. Given `channel_id IN (…)` SQLite's planner reads
        # every message of those channels and sorts them, for every page; `channel_id || ''` keeps it off
        # the channel index (PostgreSQL walks the seq index either way).
        stmt = (select(*_MSG_COLS).where(chat_messages.c.seq > since,
                                         chat_messages.c.channel_id.concat("").in_(list(channel_ids)))
                .order_by(chat_messages.c.seq).limit(limit))
        return [_message(r) for r in await self._all(stmt)]

    async def current_seq(self) -> int:
        row = await self._one(select(counters.c.value).where(counters.c.name == SEQ))
        return int(row[0]) if row else 0

    # Search -----------------------------------------------------------------------------------
    #
    # 1. Every query word as written, newest first (a walk of the first exact term's postings): when that
    #    fills the page, nothing ranks higher. Otherwise it found *all* exact matches.
    # 2. Several words, one with few postings (< _RARE): its postings are the candidates, each scored by
    #    one (ord, term) probe per word and ranked in full.
    # 3. Otherwise the driver word's distinct terms (a skip scan; at most _MERGE_WORDS) are walked newest
    #    first, each on its own (term, ord) postings, and merged with an early stop (_merge).
    # 4. A word under more terms than that: its postings ranked in full when few, else a walk over the
    #    messages newest first in ord windows (each a bounded range scan on both backends).
    # A single word ranks exactly (its exact matches are all in step 1, the rest weigh the same); several
    # common words rank the newest 2 × limit + 20 messages holding them all, see docs/chat.md.

    @staticmethod
    def _match(q: QueryTerm, t: Any) -> ColumnElement[bool]:
        """Postings row `t` is one of q's terms (a bigram of a CJK run, or in one of a word's ranges)."""
        if q.all_of:
            found: ColumnElement[bool] = t.c.term.in_(list(q.all_of))
            return found
        return or_(*(and_(t.c.term >= p, t.c.term < prefix_end(p)) for p in q.prefixes))

    def _weight(self, q: QueryTerm, ord_: Any, i: int) -> Any:
        """2 or 1 when message `ord_` holds q (exact or inflected), NULL when it does not: index probes."""
        t = chat_search_terms.alias(f"w{i}")
        if q.all_of:
            held = select(func.count()).where(t.c.ord == ord_, self._match(q, t)).scalar_subquery()
            return case((held == len(q.all_of), 2), else_=None)
        if q.cjk:
            return case((exists().where(t.c.ord == ord_, self._match(q, t)), 2), else_=None)
        return (select(func.max(case((t.c.term == q.exact, 2), else_=1)))
                .where(t.c.ord == ord_, self._match(q, t)).scalar_subquery())

    async def _exact_newest(self, ids: list[str], wanted: list[QueryTerm], where: list[ColumnElement[bool]],
                            limit: int) -> list[Message]:
        """The newest messages holding every query word as written (every bigram of a CJK run): a walk of
        the first term's postings newest first (the (term, ord) key), which stops at `limit`."""
        if any(q.cjk and not q.all_of for q in wanted):
            return []  # one CJK character: only its prefix range finds it
        exact = list(dict.fromkeys(term for q in wanted for term in (q.all_of or (q.exact,))))
        t, m = chat_search_terms, chat_messages
        stmt = (select(*_MSG_COLS).select_from(t).join(m, m.c.ord == t.c.ord)
                .where(t.c.term == exact[0], t.c.channel_id.in_(ids), *where))
        for i, term in enumerate(exact[1:]):
            other = t.alias(f"e{i}")
            stmt = stmt.where(exists().where(other.c.term == term, other.c.ord == t.c.ord))
        rows = await self._all(stmt.order_by(t.c.ord.desc()).limit(limit))
        # Bigrams found apart are no CJK match: those are dropped (the full query then runs).
        return [msg for msg in map(_message, rows) if relevance(wanted, msg.search_text) == 2 * len(wanted)]

    async def _postings(self, wanted: list[QueryTerm]) -> list[int]:
        """Per query word, how many postings could match it, counted up to _COUNT_CAP (index ranges only)."""
        t = chat_search_terms
        parts: list[Any] = []
        for q in wanted:
            pieces = [t.c.term == g for g in q.all_of] or [self._match(q, t)]
            parts.extend(select(func.count()).select_from(select(literal(1)).where(p).limit(_COUNT_CAP).subquery())
                         .scalar_subquery() for p in pieces)
        row = await self._one(select(*parts))
        assert row is not None
        counts, k = [], 0
        for q in wanted:
            n = len(q.all_of) or 1
            counts.append(min(int(v) for v in row[k:k + n]))
            k += n
        return counts

    async def _ranked(self, ids: list[str], wanted: list[QueryTerm], driver: int,
                      where: list[ColumnElement[bool]], limit: int) -> list[Message]:
        """Candidates: the driver word's postings (few); each scored per word, the best fetched."""
        t, m, q = chat_search_terms, chat_messages, wanted[driver]
        rarest = (t.c.term == min(q.all_of)) if q.all_of else self._match(q, t)
        cands = select(t.c.ord).where(rarest, t.c.channel_id.in_(ids)).distinct().subquery("d")
        weights = [self._weight(w, m.c.ord, i).label(f"s{i}") for i, w in enumerate(wanted)]
        stmt = select(m.c.ord, *weights).select_from(cands).join(m, m.c.ord == cands.c.ord).where(*where)
        scored = []
        for row in await self._all(stmt):
            ws = row[1:]
            if all(w is not None for w in ws):
                scored.append((sum(int(w) for w in ws), int(row[0])))
        scored.sort(reverse=True)
        return await self._by_ord([o for _, o in scored[:limit * 2 + 20]])

    async def _by_ord(self, ords: list[int]) -> list[Message]:
        if not ords:
            return []
        return [_message(r) for r in await self._all(select(*_MSG_COLS).where(chat_messages.c.ord.in_(ords)))]

    async def _walk(self, ids: list[str], wanted: list[QueryTerm], counts: list[int],
                    where: list[ColumnElement[bool]], want: int) -> list[Message] | None:
        """The newest `want` messages holding every word, by ord windows from the newest; None when the
        walk passes _WALK_BUDGET messages (the caller then ranks the candidates in full)."""
        m = chat_messages
        top = (await self._one(select(func.max(m.c.ord))))
        hi = int(top[0]) + 1 if top and top[0] is not None else 0
        # The first window: about twice the ords that should hold `want` matches at the driver's density.
        # (A count that reached the cap says only "common": start small.)
        density = max(min(counts), 1) / max(hi * _TERMS_PER_MESSAGE, 1)
        window = _WALK_FIRST if min(counts) >= _COUNT_CAP else max(_WALK_FIRST, int(want * 2 / max(density, 1e-9)))
        found: list[Message] = []
        walked = 0
        while hi > 0 and len(found) < want:
            if walked >= _WALK_BUDGET:
                return None
            lo = max(0, hi - window)
            checks = []
            for i, q in enumerate(wanted):
                t = chat_search_terms.alias(f"x{i}")
                inside = [t.c.ord == m.c.ord, t.c.ord >= lo, t.c.ord < hi]  # the window bounds any plan
                if q.all_of and len(q.all_of) > 1:
                    held = select(func.count()).where(*inside, self._match(q, t)).scalar_subquery()
                    checks.append(held == len(q.all_of))
                else:
                    checks.append(exists().where(*inside, self._match(q, t)))
            # `channel_id || ''`: SQLite would otherwise read the window through the channel index per channel.
            stmt = (select(*_MSG_COLS).where(m.c.ord >= lo, m.c.ord < hi, m.c.channel_id.concat("").in_(ids),
                                             *where, *checks)
                    .order_by(m.c.ord.desc()).limit(want - len(found)))
            found.extend(_message(r) for r in await self._all(stmt))
            walked += hi - lo
            hi = lo
            window *= 4
        return found

    async def _words_under(self, prefixes: tuple[str, ...]) -> list[str] | None:
        """The distinct terms starting with any of `prefixes` (one index seek each: a recursive skip
        scan), or None when there are more than _MERGE_WORDS."""
        out: list[str] = []
        for p in prefixes:
            rows = await self._all(text(_SKIP_SCAN).bindparams(p=p, e=prefix_end(p), cap=_MERGE_WORDS))
            out.extend(r[0] for r in rows)
            if len(out) > _MERGE_WORDS:
                return None
        return list(dict.fromkeys(out))

    async def _merge(self, ids: list[str], wanted: list[QueryTerm], driver: int, words: list[str], f: _Where,
                     want: int) -> list[Message]:
        """The newest `want` messages holding every query word: each of the driver word's terms walked
        newest first (its (term, ord) postings), merged. A list that returned all it was asked for may hold
        more below its last ord (its frontier); the result is final once `want` messages lie above every
        such frontier. Otherwise the lists whose frontier is still above the `want`-th newest found so far
        go on from there, 4 times deeper."""
        depth = max(8, 2 * want // max(len(words), 1))
        found: set[int] = set()
        going: dict[int, int | None] = dict.fromkeys(range(len(words)))  # list -> its frontier (None: top)
        while True:
            rows = await self._all(self._term_lists(ids, wanted, driver, words, going, f, depth))
            got: dict[int, list[int]] = {i: [] for i in going}
            for ord_, i in rows:
                got[int(i)].append(int(ord_))
            found.update(o for ords in got.values() for o in ords)
            newest = sorted(found, reverse=True)
            floor = newest[want - 1] if len(newest) >= want else 0
            going = {i: min(ords) for i, ords in got.items() if len(ords) >= depth and min(ords) > floor}
            if not going:
                return await self._by_ord(newest[:want])
            depth *= 4

    @staticmethod
    def _term_lists(ids: list[str], wanted: list[QueryTerm], driver: int, words: list[str],
                    going: dict[int, int | None], f: _Where, depth: int) -> Any:
        """(ord, list number): the newest `depth` matches in each of `words`' postings. Written as text:
        building dozens of aliased SQLAlchemy subqueries costs more than running them."""
        sql = _Text()
        conds = [f"t.channel_id IN ({sql.binds(ids)})", *f.sql(sql)]
        for j, other in enumerate(wanted):
            if j == driver and len(other.all_of) < 2:
                continue  # the list's own term is the driver word
            match = sql.match(other, f"o{j}")
            if other.all_of and len(other.all_of) > 1:
                conds.append(f"(SELECT count(*) FROM chat_search_terms o{j} WHERE o{j}.ord = t.ord AND {match})"
                             f" = {len(other.all_of)}")
            else:
                conds.append(f"EXISTS (SELECT 1 FROM chat_search_terms o{j} WHERE o{j}.ord = t.ord AND {match})")
        rest = " AND ".join(conds)
        lists = [f"SELECT * FROM (SELECT t.ord AS ord, {i} AS i FROM chat_search_terms t "
                 f"JOIN chat_messages m ON m.ord = t.ord WHERE t.term = {sql.bind(words[i])} AND {rest}"
                 + ("" if below is None else f" AND t.ord < {int(below)}")
                 + f" ORDER BY t.ord DESC LIMIT {int(depth)}) AS l{i}" for i, below in going.items()]
        return text(" UNION ALL ".join(lists)).bindparams(**sql.params)

    async def _pool(self, ids: list[str], wanted: list[QueryTerm], where: list[ColumnElement[bool]], f: _Where,
                    limit: int, want: int) -> list[Message]:
        """Candidates past the exact matches. Several words, one of them with few postings: those ranked
        in full. Otherwise merged newest-first term walks when the driver word (a CJK run: its first
        bigram; else the word with the fewest distinct terms) has few terms; else the postings of the
        rarest word ranked in full, or a newest-first walk over the messages."""
        if len(wanted) > 1:
            # Several words: the full ranking (exact) when one word has few postings.
            counts = await self._postings(wanted)
            if min(counts) < _RARE:
                return await self._ranked(ids, wanted, counts.index(min(counts)), where, limit)
        lists: list[tuple[int, list[str]]] = []
        for i, q in enumerate(wanted):
            if q.all_of:  # one list: the first bigram's (the others are checked on each posting)
                lists.append((1, [q.all_of[0]]))
                continue
            under = await self._words_under(q.prefixes)
            if under is not None:
                lists.append((len(under), under))
            else:
                lists.append((_MERGE_WORDS + 1, []))
        size, driver = min((n, i) for i, (n, _) in enumerate(lists))
        if size == 0:  # a word no message holds
            return []
        if size <= _MERGE_WORDS:
            return await self._merge(ids, wanted, driver, lists[driver][1], f, want)
        counts = await self._postings(wanted)
        driver = counts.index(min(counts))
        pool: list[Message] | None = None
        if counts[driver] >= _RARE:
            pool = await self._walk(ids, wanted, counts, where, want)
        return pool if pool is not None else await self._ranked(ids, wanted, driver, where, limit)

    async def search(self, channel_ids: Sequence[str], query: SearchQuery) -> list[Message]:
        f = _Filters(query.text)
        ids = list(channel_ids)
        if f.channel is not None:
            # `in:name` names a channel of the caller's organisation: the one of that plain name among theirs.
            found = await self._all(select(chat_channels.c.id).where(or_(
                chat_channels.c.name == f.channel, chat_channels.c.name.endswith(SEPARATOR + f.channel,
                                                                                 autoescape=True),
                chat_channels.c.id == f.channel)))
            ids = [r[0] for r in found if r[0] in ids][:1]
        wanted = query_terms(f.text)
        if not ids or (not wanted and not f.any):
            return []
        m = chat_messages
        filters = _Where(query.author or f.author, [b for b in (query.before, f.before) if b is not None],
                         [a for a in (query.after, f.after) if a is not None], f.has_file)
        where = filters.expressions()
        if not wanted:  # filters only: the newest that pass them
            stmt = select(*_MSG_COLS).where(*where, m.c.channel_id.in_(ids)).order_by(m.c.ord.desc())
            return [_message(r) for r in await self._all(stmt.limit(query.limit))]
        exact = await self._exact_newest(ids, wanted, where, query.limit)
        if len(exact) >= query.limit:  # enough messages hold every word as written: no inflections needed
            return exact
        # Enough candidates to rank: a single plain word ranks exactly from the newest `limit` past the
        # exact ones; CJK runs (bigrams found apart are dropped) and several words take more.
        plain = len(wanted) == 1 and not wanted[0].cjk
        want = (query.limit if plain else query.limit * 2 + 20) + len(exact)
        pool = await self._pool(ids, wanted, where, filters, query.limit, want)
        ranked: dict[int, tuple[int, Message]] = {}
        for message in [*exact, *pool]:
            # The index finds candidates; this keeps those whose CJK runs stand together as asked.
            score = relevance(wanted, message.search_text)
            if score:
                ranked[message.ord] = (score, message)
        best = sorted(ranked.items(), key=lambda x: (x[1][0], x[0]), reverse=True)
        return [x[1][1] for x in best[:query.limit]]

    # Tasks and retention ----------------------------------------------------------------------

    async def tasks_of(self, assignee: str, open_only: bool) -> list[Message]:
        m = chat_messages
        stmt = select(*_MSG_COLS).where(m.c.task_assignee == assignee, m.c.deleted.is_(False))
        if open_only:
            stmt = stmt.where(m.c.task_status != "done")
        return [_message(r) for r in await self._all(stmt.order_by(m.c.ord.desc()))]

    async def due_tasks(self, until: float, org: str | None = None) -> list[Message]:
        m = chat_messages
        stmt = (select(*_MSG_COLS).where(m.c.task_status.is_not(None), m.c.task_status != "done",
                                         m.c.task_due <= until, m.c.deleted.is_(False)).order_by(m.c.task_due))
        if org is not None:  # a message is its channel's organisation's
            stmt = stmt.where(m.c.channel_id.in_(select(chat_channels.c.id).where(chat_channels.c.org_id == org)))
        return [_message(r) for r in await self._all(stmt)]

    async def channel_orgs(self) -> list[str]:
        rows = await self._all(select(chat_channels.c.org_id).distinct().order_by(chat_channels.c.org_id))
        return [str(r[0]) for r in rows]

    async def expired_messages(self, channel_id: str, before: float, limit: int) -> list[str]:
        m = chat_messages
        stmt = (select(m.c.id).where(m.c.channel_id == channel_id, m.c.deleted.is_(False), m.c.created_at < before)
                .order_by(m.c.ord).limit(limit))
        return [r[0] for r in await self._all(stmt)]

    # Files ------------------------------------------------------------------------------------

    async def put_file(self, meta: FileMeta) -> None:
        attached = meta.attached_at if meta.attached_at is not None or not meta.channels else meta.created_at
        values = {"id": meta.id, "sha256": meta.sha256, "name": meta.name, "mime": meta.mime, "size": meta.size,
                  "uploader": meta.uploader, "created_at": meta.created_at, "attached_at": attached,
                  "org_id": meta.org}

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(dialect_insert(self.db, chat_files).values(**values).on_conflict_do_update(
                index_elements=[chat_files.c.id], set_={k: v for k, v in values.items() if k != "id"}))
            if meta.channels:
                await conn.execute(dialect_insert(self.db, chat_file_refs).on_conflict_do_nothing(), [
                    {"file_id": meta.id, "message_id": _LEGACY_REF + c, "channel_id": c} for c in meta.channels])

        await self.db.write(op)

    async def get_file(self, file_id: str) -> FileMeta | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(chat_files).where(chat_files.c.id == file_id))).first()
            if row is None:
                return None
            refs = await conn.execute(select(chat_file_refs.c.channel_id).distinct()
                                      .where(chat_file_refs.c.file_id == file_id).order_by(chat_file_refs.c.channel_id))
            channels = tuple(r[0] for r in refs)
        return self._file(row, channels)

    @staticmethod
    def _file(row: _Row, channels: tuple[str, ...] = ()) -> FileMeta:
        return FileMeta(id=row.id, sha256=row.sha256, name=row.name, mime=row.mime, size=int(row.size),
                        uploader=row.uploader, created_at=float(row.created_at), channels=channels,
                        attached_at=None if row.attached_at is None else float(row.attached_at), org=row.org_id)

    async def attach_file(self, file_id: str, message_id: str, channel_id: str, at: float) -> None:
        async def op(conn: AsyncConnection) -> None:
            # Locks the record: a sweep deleting it as unattached waits, or has already deleted it.
            row = (await conn.execute(select(chat_files.c.id).where(chat_files.c.id == file_id)
                                      .with_for_update())).first()
            if row is None:
                return
            await conn.execute(dialect_insert(self.db, chat_file_refs).values(
                file_id=file_id, message_id=message_id, channel_id=channel_id).on_conflict_do_update(
                index_elements=[chat_file_refs.c.file_id, chat_file_refs.c.message_id],
                set_={"channel_id": channel_id}))
            await conn.execute(update(chat_files).where(chat_files.c.id == file_id, chat_files.c.attached_at.is_(None))
                               .values(attached_at=at))

        await self.db.write(op)

    async def detach_file(self, file_id: str, message_id: str, channel_id: str) -> None:
        r = chat_file_refs

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(delete(r).where(r.c.file_id == file_id, r.c.message_id == message_id))
            # A legacy record's channel goes with the last live message there that carries the file.
            still = exists().where(r.c.file_id == file_id, r.c.channel_id == channel_id,
                                   ~r.c.message_id.startswith(_LEGACY_REF))
            await conn.execute(delete(r).where(r.c.file_id == file_id, r.c.message_id == _LEGACY_REF + channel_id,
                                               ~still))

        await self.db.write(op)

    async def unattached_files(self, before: float, limit: int) -> list[FileMeta]:
        f = chat_files
        stmt = (select(f).where(f.c.attached_at.is_(None), f.c.created_at < before)
                .order_by(f.c.created_at).limit(limit))
        return [self._file(r) for r in await self._all(stmt)]

    async def delete_unattached_file(self, file_id: str) -> bool:
        async def op(conn: AsyncConnection) -> bool:
            gone = await conn.execute(delete(chat_files).where(chat_files.c.id == file_id,
                                                               chat_files.c.attached_at.is_(None))
                                      .returning(chat_files.c.id))
            return gone.first() is not None

        return await self.db.write(op)

    async def sha_in_use(self, sha256: str) -> bool:
        return await self._one(select(literal(1)).where(chat_files.c.sha256 == sha256).limit(1)) is not None

    async def uploaded_bytes(self, uploader: str, since: float) -> int:
        row = await self._one(select(func.coalesce(func.sum(chat_files.c.size), 0)).where(
            chat_files.c.uploader == uploader, chat_files.c.created_at >= since))
        return int(row[0]) if row else 0

    # Bulk copy (for an importer of an older store) ---------------------------------------------

    async def replace_message(self, message: Message) -> None:
        """Stores `message` with the ord and seq it carries (an importer keeps them), and raises the
        counter past them."""
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(dialect_insert(self.db, chat_messages).values(**message_values(message)).on_conflict_do_nothing())
            rows = term_rows_of(message)
            if rows:
                await conn.execute(dialect_insert(self.db, chat_search_terms).on_conflict_do_nothing(), rows)
            await conn.execute(update(counters).where(counters.c.name == SEQ, counters.c.value < message.seq)
                               .values(value=message.seq))

        await self.db.write(op)
