"""One contract, two backends: the SQL ChatStore behaves the same on an embedded SQLite file and on a real
PostgreSQL (tests/postgres.py starts one)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from chat.errors import ChannelExists, MessageNotFound, MessageRecalled
from chat.model import (
    Channel,
    FileMeta,
    Message,
    OrgSettings,
    SearchQuery,
    Task,
    User,
    new_id,
)
from chat.sql_store import SqlChatStore
from chat.store import ChatStore
from store.database import Database


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatStore]:
    s: ChatStore
    if request.param == "sqlite":
        s = SqlChatStore(Database.for_config(None, tmp_path))
    else:
        s = SqlChatStore(Database.for_config(request.getfixturevalue("postgres").create_database(), tmp_path))
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def msg(channel: str, text: str, author: str = "ann", **kw: object) -> Message:
    return Message(id=new_id("m_"), channel_id=channel, author=author, type="text", content=text,
                   created_at=kw.pop("created_at", time.time()), **kw)  # type: ignore[arg-type]


async def channel(store: ChatStore, name: str, members: list[str]) -> Channel:
    return await store.create_channel(Channel(id=new_id("c_"), name=name, kind="team"), members)


async def test_users_org_channels(store: ChatStore) -> None:
    await store.put_user(User("ann", "admin", name="Ann", department="eng/media"))
    assert (await store.get_user("ann")) == User("ann", "admin", name="Ann", department="eng/media")
    assert await store.get_user("nobody") is None
    await store.put_user(User("bo", "member", name="Bo", org="acme"))
    assert await store.get_users(["bo", "nobody", "ann"]) == {"ann": await store.get_user("ann"),
                                                              "bo": await store.get_user("bo")}
    assert await store.get_users([]) == {}
    assert (await store.get_org()) == OrgSettings()
    await store.put_org(OrgSettings(recall_window_seconds=5))
    assert (await store.get_org()).recall_window_seconds == 5
    c = await channel(store, "general", ["ann", "bob"])
    with pytest.raises(ChannelExists):
        await channel(store, "general", [])
    assert (await store.find_channel("general")) == c
    assert (await store.get_channel(c.id)) == c
    assert await store.members(c.id) == ["ann", "bob"]
    await store.add_members(c.id, ["cy"])
    await store.remove_members(c.id, ["bob"])
    assert await store.members(c.id) == ["ann", "cy"]
    assert await store.is_member(c.id, "cy") and not await store.is_member(c.id, "bob")
    assert [m.channel.id for m in await store.memberships("ann")] == [c.id]


async def test_ordering_history_idempotency_unread(store: ChatStore) -> None:
    c = await channel(store, "a", ["ann", "bob"])
    first, created = await store.insert_message(msg(c.id, "one", client_id="k1"))
    again, created2 = await store.insert_message(msg(c.id, "one again", client_id="k1"))
    assert created and not created2 and again.id == first.id and again.content == "one"
    assert (await store.by_client_id("ann", "k1")) == first
    assert await store.by_client_id("bob", "k1") is None
    stored = [first] + [(await store.insert_message(msg(c.id, f"m{i}")))[0] for i in range(5)]
    assert [m.ord for m in stored] == sorted(m.ord for m in stored)
    page = await store.history(c.id, None, None, 3)
    assert [m.content for m in page] == ["m2", "m3", "m4"]
    older = await store.history(c.id, None, page[0].ord, 10)
    assert [m.content for m in older] == ["one", "m0", "m1"]
    newer = await store.history(c.id, older[-1].ord, None, 10)
    assert [m.content for m in newer] == ["m2", "m3", "m4"]
    [bob] = await store.memberships("bob")
    assert bob.unread == 6
    await store.set_read(c.id, "bob", stored[3].ord)
    await store.set_read(c.id, "bob", stored[1].ord)  # never goes back
    [bob] = await store.memberships("bob")
    assert bob.unread == 2 and bob.last_read == stored[3].ord


async def test_mutate_changes_and_concurrency(store: ChatStore) -> None:
    c = await channel(store, "a", ["ann"])
    m, _ = await store.insert_message(msg(c.id, "hello"))
    since = await store.current_seq()

    def add(login: str) -> object:
        def change(x: Message) -> Message:
            d = dict(x.reactions)
            return replace(x, reactions=tuple({**d, "+1": (*d.get("+1", ()), login)}.items()))
        return change

    results = await asyncio.gather(*(store.mutate_message(m.id, add(f"u{i}")) for i in range(10)))  # type: ignore[arg-type]
    final = await store.get_message(m.id)
    assert final is not None and sorted(dict(final.reactions)["+1"]) == sorted(f"u{i}" for i in range(10))
    assert final.seq == max(r.seq for r in results) and final.ord == m.ord
    changed = await store.changes([c.id], since, 100)
    assert [x.id for x in changed] == [m.id] and changed[0].seq == final.seq

    def refuse(x: Message) -> Message:
        raise MessageRecalled("no")

    with pytest.raises(MessageRecalled):
        await store.mutate_message(m.id, refuse)
    with pytest.raises(MessageNotFound):
        await store.mutate_message("m_missing", refuse)
    assert (await store.get_message(m.id)) == final


async def test_search_cjk_case_and_filters(store: ChatStore) -> None:
    c = await channel(store, "a", ["ann"])
    d = await channel(store, "b", ["ann"])
    t0 = time.time()
    zh, _ = await store.insert_message(msg(c.id, "项目进度更新：完成80%", created_at=t0 - 100))
    en, _ = await store.insert_message(msg(c.id, "Quarterly Report is READY", author="bob", created_at=t0 - 50))
    other, _ = await store.insert_message(msg(d.id, "report for the other channel", created_at=t0))
    await store.insert_message(msg(c.id, "项进 are not adjacent here: 项 目"))

    async def ids(q: str, chans: list[str] | None = None, **kw: object) -> list[str]:
        return [m.id for m in await store.search(chans or [c.id, d.id], SearchQuery(q, **kw))]  # type: ignore[arg-type]

    assert await ids("项目") == [zh.id]
    assert await ids("进度") == [zh.id]
    assert await ids("项目进度") == [zh.id]
    assert await ids("目进度更") == [zh.id]
    assert await ids("进项") == []
    assert await ids("report") == [other.id, en.id]
    assert await ids("REPORT ready") == [en.id]
    assert await ids("report", [c.id]) == [en.id]
    assert await ids("report", author="bob") == [en.id]
    assert await ids("report", before=t0 - 10) == [en.id]
    assert await ids("report", after=t0 - 10) == [other.id]
    assert await ids("missing") == []
    # Edits reindex, recalls leave the index.
    await store.mutate_message(en.id, lambda x: replace(x, content="nothing to see"))
    assert await ids("report") == [other.id]
    assert await ids("nothing") == [en.id]
    await store.mutate_message(other.id, lambda x: replace(x, content="", deleted=True))
    assert await ids("report") == []
    changed = await store.changes([d.id], 0, 10)
    assert changed[-1].deleted


async def test_tasks_files_retention(store: ChatStore) -> None:
    c = await channel(store, "a", ["ann", "bob"])
    now = time.time()
    t1, _ = await store.insert_message(replace(msg(c.id, ""), type="task", task=Task("ship", "bob", now + 60)))
    t2, _ = await store.insert_message(replace(msg(c.id, ""), type="task", task=Task("later", "bob", now + 9999)))
    assert [m.id for m in await store.tasks_of("bob", True)] == [t2.id, t1.id]
    assert [m.id for m in await store.due_tasks(now + 120)] == [t1.id]
    done = await store.mutate_message(t1.id, lambda x: replace(x, task=replace(x.task, status="done")))  # type: ignore[arg-type]
    assert done.task is not None and done.task.status == "done"
    assert [m.id for m in await store.tasks_of("bob", True)] == [t2.id]
    assert {m.id for m in await store.tasks_of("bob", False)} == {t1.id, t2.id}
    assert await store.due_tasks(now + 120) == []
    reassigned = await store.mutate_message(t2.id, lambda x: replace(x, task=replace(x.task, assignee="ann")))  # type: ignore[arg-type]
    assert reassigned.task is not None and [m.id for m in await store.tasks_of("ann", True)] == [t2.id]
    assert await store.tasks_of("bob", True) == []

    meta = FileMeta(id="f_1", sha256="ab" * 32, name="a.txt", mime="text/plain", size=3, uploader="ann",
                    created_at=now)
    await store.put_file(meta)
    await store.attach_file("f_1", "m_1", c.id, now)
    got = await store.get_file("f_1")
    assert got is not None and got.channels == (c.id,) and got.name == "a.txt" and got.attached_at == now
    assert await store.get_file("f_2") is None

    d = await channel(store, "old", ["ann"])
    o1, _ = await store.insert_message(msg(d.id, "ancient", created_at=now - 400 * 86400))
    await store.insert_message(msg(d.id, "recent", created_at=now))
    assert await store.expired_messages(d.id, now - 300 * 86400, 10) == [o1.id]


async def test_file_refs_sweep_and_quota(store: ChatStore) -> None:
    now = time.time()

    def meta(fid: str, sha: str, size: int, age: float = 0.0, uploader: str = "ann") -> FileMeta:
        return FileMeta(id=fid, sha256=sha * 64, name=f"{fid}.txt", mime="text/plain", size=size,
                        uploader=uploader, created_at=now - age)

    for m in (meta("f_1", "a", 10, 100), meta("f_2", "a", 20, 100), meta("f_3", "b", 30, 100), meta("f_4", "c", 40),
              meta("f_5", "d", 50, 100, uploader="bob")):
        await store.put_file(m)
    assert await store.uploaded_bytes("ann", now - 200) == 100
    assert await store.uploaded_bytes("ann", now - 50) == 40
    # Carried by three messages in two channels; each recall takes only its own message's share.
    await store.attach_file("f_1", "m_1", "c_1", now)
    await store.attach_file("f_1", "m_2", "c_1", now + 1)
    await store.attach_file("f_1", "m_3", "c_2", now + 2)
    await store.attach_file("f_nope", "m_4", "c_1", now)  # a missing file is ignored
    assert await store.get_file("f_nope") is None
    got = await store.get_file("f_1")
    assert got is not None and got.channels == ("c_1", "c_2") and got.attached_at == now and not got.withdrawn
    await store.detach_file("f_1", "m_1", "c_1")
    assert (await store.get_file("f_1")).channels == ("c_1", "c_2")  # type: ignore[union-attr]
    await store.detach_file("f_1", "m_2", "c_1")
    assert (await store.get_file("f_1")).channels == ("c_2",)  # type: ignore[union-attr]
    await store.detach_file("f_1", "m_3", "c_2")
    gone = await store.get_file("f_1")
    assert gone is not None and gone.channels == () and gone.withdrawn
    # The sweep's view: never attached and old enough, oldest first; attached ones are never deleted.
    assert sorted(m.id for m in await store.unattached_files(now - 50, 10)) == ["f_2", "f_3", "f_5"]
    assert [m.id for m in await store.unattached_files(now - 50, 1)] in (["f_2"], ["f_3"], ["f_5"])
    assert not await store.delete_unattached_file("f_1")
    assert await store.delete_unattached_file("f_2")
    assert not await store.delete_unattached_file("f_2")
    assert await store.get_file("f_2") is None and await store.sha_in_use("a" * 64)  # f_1 still uses it
    assert await store.delete_unattached_file("f_3")
    assert not await store.sha_in_use("b" * 64) and await store.sha_in_use("c" * 64)
    assert await store.uploaded_bytes("ann", now - 200) == 50
    assert [m.id for m in await store.unattached_files(now - 50, 10)] == ["f_5"]


async def test_insert_many(store: ChatStore) -> None:
    c = await channel(store, "bulk", ["ann"])
    batch = [msg(c.id, f"bulk 项目 {i}", client_id=f"b{i}") for i in range(50)]
    assert await store.insert_many(batch) == 50
    assert await store.insert_many(batch[:5]) == 0  # client ids already seen
    hist = await store.history(c.id, None, None, 100)
    assert [m.content for m in hist] == [f"bulk 项目 {i}" for i in range(50)]
    hits = await store.search([c.id], SearchQuery("项目", limit=10))
    assert [m.content for m in hits] == [f"bulk 项目 {i}" for i in range(49, 39, -1)]


async def test_channel_ids_of(store: ChatStore) -> None:
    a = await channel(store, "x", ["ann", "bob"])
    b = await channel(store, "y", ["ann"])
    assert await store.channel_ids_of("ann") == sorted([a.id, b.id])
    assert await store.channel_ids_of("bob") == [a.id]
    assert await store.channel_ids_of("cy") == []


async def test_two_stores_share_one_sqlite_file(tmp_path: Path) -> None:
    """Two server processes on one data dir: each store has its own writer, the counter stays one."""
    a, b = SqlChatStore(Database.for_config(None, tmp_path)), SqlChatStore(Database.for_config(None, tmp_path))
    await a.open()
    await b.open()
    try:
        c = await channel(a, "shared", ["ann"])
        stored = []
        for i in range(20):
            m, _ = await (a if i % 2 else b).insert_message(msg(c.id, f"m{i}"))
            stored.append(m)
        assert len({m.ord for m in stored}) == 20 and [m.ord for m in stored] == sorted(m.ord for m in stored)
        assert [m.content for m in await b.history(c.id, None, None, 50)] == [f"m{i}" for i in range(20)]
        assert await a.current_seq() == stored[-1].seq
    finally:
        await a.close()
        await b.close()


async def test_file_records_naming_their_channels(store: ChatStore) -> None:
    """A record stored with its channels (as an importer copies ones from before attach tracking) is
    attached (never swept) until the last message there goes; its blob counts as used."""
    now = time.time()
    await store.put_file(FileMeta(id="f_posted", sha256="a" * 64, name="p.txt", mime="text/plain", size=5,
                                  uploader="ann", created_at=now - 100, channels=("c_1",)))
    await store.put_file(FileMeta(id="f_loose", sha256="b" * 64, name="l.txt", mime="text/plain", size=7,
                                  uploader="ann", created_at=now - 100))
    posted = await store.get_file("f_posted")
    assert posted is not None and posted.attached_at == now - 100 and posted.channels == ("c_1",)
    assert [m.id for m in await store.unattached_files(now, 10)] == ["f_loose"]
    assert await store.uploaded_bytes("ann", now - 200) == 12
    await store.attach_file("f_posted", "m_new", "c_1", now)
    await store.detach_file("f_posted", "m_old", "c_1")  # another message there still carries it
    assert (await store.get_file("f_posted")).channels == ("c_1",)  # type: ignore[union-attr]
    await store.detach_file("f_posted", "m_new", "c_1")
    assert (await store.get_file("f_posted")).withdrawn  # type: ignore[union-attr]
    assert not await store.delete_unattached_file("f_posted")
    assert await store.delete_unattached_file("f_loose")
    assert not await store.sha_in_use("b" * 64) and await store.sha_in_use("a" * 64)


async def test_search_prefixes_inflections_ranking_and_filters(store: ChatStore) -> None:
    from chat.model import Attachment
    from common.errors import InvalidField

    c = await channel(store, "general", ["ann", "bob"])
    ops = await channel(store, "ops", ["ann"])
    t0 = time.time()
    exact, _ = await store.insert_message(msg(c.id, "deploy tonight", created_at=t0 - 300))
    longer, _ = await store.insert_message(msg(c.id, "the deployment went fine", author="bob", created_at=t0 - 200))
    approved, _ = await store.insert_message(msg(ops.id, "PR approved by both reviewers", created_at=t0 - 100))
    filed, _ = await store.insert_message(replace(msg(ops.id, "deployment checklist", created_at=t0), type="file",
                                                  attachments=(Attachment(file_id="f_1", name="list.pdf"),)))
    await store.insert_message(msg(c.id, "google it", created_at=t0))

    async def ids(q: str, chans: list[str] | None = None) -> list[str]:
        return [m.id for m in await store.search(chans or [c.id, ops.id], SearchQuery(q))]

    # Relevance first (the exact word, though older), then recency among equals.
    assert await ids("deploy") == [exact.id, filed.id, longer.id]
    assert await ids("deployments") == [filed.id, longer.id, exact.id]  # stem "deploy": all inflections
    assert await ids("approve") == [approved.id]
    assert await ids("reviewer") == [approved.id]
    assert await ids("go") == []  # two letters: whole words only
    assert await ids("deploy from:bob") == [longer.id]
    assert await ids("deploy in:ops") == [filed.id]
    assert await ids("deploy in:ops", [c.id]) == []  # in: never widens the caller's channels
    assert await ids("deploy has:file") == [filed.id]
    assert await ids("has:file") == [filed.id]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 - 150))
    assert await ids(f"deploy before:{iso}") == [exact.id, longer.id]
    assert await ids(f"deploy after:{iso}") == [filed.id]
    with pytest.raises(InvalidField):
        await store.search([c.id], SearchQuery("deploy before:yesterday"))
    # CJK substrings still need their characters together; one character finds them too.
    zh, _ = await store.insert_message(msg(c.id, "部署完成，评审通过"))
    assert await ids("部署") == [zh.id] and await ids("评审通过") == [zh.id] and await ids("署") == [zh.id]
    assert await ids("部完") == []
    # Newer messages holding a run's bigrams apart do not hide an older one holding the run.
    apart = [msg(c.id, "部署 署完 完成") for _ in range(60)]  # more than a page (50)
    together, _ = await store.insert_message(msg(c.id, "部署完成了", created_at=t0 - 1000))
    await store.insert_many(apart)
    assert await ids("部署完成") == [together.id, zh.id]  # newest first (ord), as stored


async def test_search_plans_rank_like_a_full_scan(store: ChatStore) -> None:
    """Every search plan (term lists merged newest first, the full ranking of a rare word's postings and the
    newest-first walk over messages, chosen by how many terms and postings a word has) returns what ranking
    every message would: relevance, then recency; only the caller's channels; filters applied."""
    import random

    from chat.textindex import query_terms, relevance

    rng = random.Random(3)
    mine = await channel(store, "mine", ["ann"])
    other = await channel(store, "other", ["ann"])
    letters = "abcdefghijklmnopqrstuvwxyz"
    # "dep" + two letters: up to 676 distinct words under "dep", more than a term-by-term merge takes.
    vocab = ["dep" + a + b for a in letters for b in letters[:8]] + ["dep", "depot", "deploy", "deployment", "zebra"]
    corpus: list[Message] = []

    async def add(n: int) -> None:
        batch = []
        for _ in range(n):
            words = rng.choices(vocab, k=3) + ["filler"]
            batch.append(msg(rng.choice([mine.id, other.id]), " ".join(words), author=rng.choice(["ann", "bob"]),
                             created_at=time.time()))
        await store.insert_many(batch)
        corpus.extend(await store.history(mine.id, None, None, 100_000) + await store.history(other.id, None, None,
                                                                                               100_000))

    async def check(q: str, author: str | None = None, limit: int = 20) -> None:
        wanted = query_terms(q)
        live = {m.ord: m for m in corpus if m.channel_id == mine.id and (author is None or m.author == author)}
        expect = sorted(((relevance(wanted, m.search_text), o) for o, m in live.items()), reverse=True)
        expect_ords = [o for score, o in expect if score][:limit]
        got = await store.search([mine.id], SearchQuery(q, author=author, limit=limit))
        assert [m.ord for m in got] == expect_ords, q

    await add(600)  # few postings per word: "dep" (hundreds of words) ranks its postings in full
    for q in ("dep", "depab", "deploy", "depot", "deployments", "zebra"):
        await check(q)
    await check("dep", author="bob")
    await check("deploy", author="ann", limit=5)
    for q in ("zebra dep", "deploy dep", "zebra deploy"):
        await check(q)  # one word with few postings: ranked in full, like every message would be
    corpus.clear()
    await add(1500)  # thousands of postings under "dep": a newest-first walk over the messages
    for q in ("dep", "depc", "deploy"):
        await check(q)
    await check("dep", author="bob", limit=50)
    # Several words: every result holds all of them, ranked by relevance then recency among themselves.
    for q in ("dep depa", "deploy dep"):
        wanted = query_terms(q)
        held = [m for m in corpus if m.channel_id == mine.id and relevance(wanted, m.search_text)]
        got = await store.search([mine.id], SearchQuery(q, limit=20))
        scores = [(relevance(wanted, m.search_text), m.ord) for m in got]
        assert len(got) == min(20, len(held)) and all(s for s, _ in scores), q
        assert scores == sorted(scores, reverse=True) and {m.channel_id for m in got} <= {mine.id}


async def test_benchmark_bulk_fill_writes_what_the_store_reads(store: ChatStore) -> None:
    """`python -m loadtest.chat --store-bench` fills past the store (executemany / COPY): its rows must be
    rows the store reads, searches and continues from."""
    from loadtest.chat import bulk_fill
    from store.engine import sqlite_path

    assert isinstance(store, SqlChatStore)
    chans = [(await channel(store, f"h{i}", ["ann"])).id for i in range(3)]
    path = sqlite_path(store.db.url)
    pg_url = None if path is not None else store.db.url.replace("postgresql+asyncpg://", "postgresql://")
    await bulk_fill(pg_url, path.parent if path is not None else Path("."), 900, chans)
    assert await store.current_seq() == 900
    history = await store.history(chans[0], None, None, 1000)
    assert [m.ord for m in history] == list(range(1, 901, 3))
    assert len(await store.search(chans, SearchQuery("完成", limit=5))) == 5
    new, created = await store.insert_message(msg(chans[1], "after the fill"))
    assert created and new.ord == 901
    assert [m.id for m in await store.search(chans, SearchQuery("fill"))] == [new.id]
