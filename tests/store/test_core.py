"""The core tables on SQLite and a real PostgreSQL: API keys (revoked anywhere, refused everywhere within a
second: rooms REST, chat, the CLI's list), and the meeting ledger shared by several processes (each its own
Database here, as each server process has)."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from common.errors import MeetingEnded, RemovedFromMeeting, Unauthorized
from identity.apikeys import ApiKeyStore
from identity.meetings import MeetingLedger
from identity.tokens import TokenIssuer
from sfu.workers import WorkerInfo, least_loaded
from signaling.appkeys import CONFIG
from signaling.room_directory import StoreRoomDirectory
from store.database import Database
from tests.conftest import RunningServer, running_server, server_config
from tests.postgres import PostgresServer
from transcribe.caption import Caption
from transcribe.store import TranscriptStore
from transcribe.transcript import Transcript

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres").create_database() if request.param == "postgres" else None


@pytest.fixture
async def server(tmp_path: Path, database_url: str | None) -> AsyncIterator[RunningServer]:
    async with running_server(server_config(tmp_path / "data", database_url=database_url)) as running:
        yield running


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Blocks: call it through asyncio.to_thread while a server runs on this loop (it may hold SQLite's write lock)."""
    return subprocess.run([sys.executable, "-m", "signaling.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def where(server: RunningServer) -> list[str]:
    url = server.app[CONFIG].database_url
    return ["--data-dir", str(server.data_dir), *(["--database-url", url] if url else [])]


async def status(http: aiohttp.ClientSession, url: str, key: str) -> tuple[int, str]:
    async with http.get(url, headers={"Authorization": f"Bearer {key}"}) as r:
        body = await r.json(content_type=None)
        return r.status, body.get("error", {}).get("code", "") if isinstance(body, dict) else ""


async def test_a_revoked_key_fails_everywhere_within_a_second(server: RunningServer) -> None:
    # Made by the CLI (another process, the same store), revoked over REST, listed by the CLI.
    made = await asyncio.to_thread(cli, "keys", "create", "--name", "deploy-bot", "--role", "admin", *where(server))
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    key_id = key.split("_")[1]
    async with aiohttp.ClientSession() as http:
        # Both sides read it: the rooms REST (identity) and chat (which caches a verified key briefly).
        assert await status(http, f"{server.url}/v1/rooms", key) == (200, "")
        assert await status(http, f"{server.url}/v1/me", key) == (200, "")
        # Bad input changes nothing.
        async with http.delete(f"{server.url}/v1/keys/NOT-HEX", headers={"Authorization": f"Bearer {key}"}) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_field"
        async with http.delete(f"{server.url}/v1/keys/abcdef", headers={"Authorization": f"Bearer {key}"}) as r:
            assert r.status == 404
        assert await status(http, f"{server.url}/v1/me", key) == (200, "")

        async with http.delete(f"{server.url}/v1/keys/{key_id}",
                               headers={"Authorization": f"Bearer {server.api_key}"}) as r:
            assert r.status == 200
            revoked = await r.json()
        assert revoked["id"] == key_id and revoked["name"] == "deploy-bot" and revoked["revoked_at"] is not None
        revoked_at = time.monotonic()
        assert await status(http, f"{server.url}/v1/rooms", key) == (401, "unauthorized")
        while await status(http, f"{server.url}/v1/me", key) != (401, "unauthorized"):
            assert time.monotonic() - revoked_at < 1.5, "chat still takes a revoked key after a second"
            await asyncio.sleep(0.05)
        # The server's own key is untouched; revoking again keeps the first time.
        assert await status(http, f"{server.url}/v1/me", server.api_key) == (200, "")
        async with http.delete(f"{server.url}/v1/keys/{key_id}",
                               headers={"Authorization": f"Bearer {server.api_key}"}) as r:
            assert (await r.json())["revoked_at"] == revoked["revoked_at"]

    listed = await asyncio.to_thread(cli, "keys", "list", *where(server))
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("\t")[0]: line for line in listed.stdout.splitlines()}
    assert "revoked" in rows[key_id] and "deploy-bot" in rows[key_id]
    assert sum("active" in line for line in rows.values()) == 1  # the server's test key
    assert key.split("_", 2)[2] not in listed.stdout  # never a secret


async def test_keys_revoked_by_the_cli_are_refused_by_a_running_server(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        assert await status(http, f"{server.url}/v1/me", server.api_key) == (200, "")
        key_id = server.api_key.split("_")[1]
        done = await asyncio.to_thread(cli, "keys", "revoke", key_id, *where(server))
        assert done.returncode == 0 and key_id in done.stdout, done.stderr
        await asyncio.sleep(1.05)
        assert await status(http, f"{server.url}/v1/me", server.api_key) == (401, "unauthorized")
        assert await status(http, f"{server.url}/v1/rooms", server.api_key) == (401, "unauthorized")
    assert (await asyncio.to_thread(cli, "keys", "revoke", "0123456789ab", *where(server))).returncode == 1


async def test_processes_share_the_ledger_and_agree_on_one_meeting(tmp_path: Path, database_url: str | None) -> None:
    dbs = [Database.for_config(database_url, tmp_path) for _ in range(3)]
    for db in dbs:
        await db.open()
    try:
        ledgers = [MeetingLedger(db) for db in dbs]
        started = await asyncio.gather(*(ledger.live_or_start(f"room{i % 4}", guests=True)
                                         for i in range(24) for ledger in ledgers))
        per_room: dict[str, set[str]] = {m.room: set() for m, _ in started}
        for one, _ in started:
            per_room[one.room].add(one.meeting_id)
        assert all(len(ids) == 1 for ids in per_room.values()), per_room
        assert sum(1 for _, new in started if new) == 4

        issuer = TokenIssuer(b"k" * 32)
        meeting = await ledgers[0].live("room0")
        assert meeting is not None
        alice = issuer.mint("room0", "alice", meeting=meeting.meeting_id)
        assert (await ledgers[1].check(issuer.verify(alice))).meeting_id == meeting.meeting_id
        # Removed in one process: refused in another; a token issued later still joins.
        await ledgers[0].remove(meeting.meeting_id, "alice")
        with pytest.raises(RemovedFromMeeting):
            await ledgers[2].check(issuer.verify(alice))
        await asyncio.sleep(1.1)  # tokens carry whole seconds
        later = issuer.mint("room0", "alice", meeting=meeting.meeting_id)
        assert (await ledgers[2].check(issuer.verify(later))).meeting_id == meeting.meeting_id
        # Ended in one process: ended in all, and the room starts a new meeting.
        assert await ledgers[1].end(meeting.meeting_id, "test") is True
        assert await ledgers[2].end(meeting.meeting_id, "again") is False
        with pytest.raises(MeetingEnded):
            await ledgers[0].check(issuer.verify(later))
        fresh, new = await ledgers[0].live_or_start("room0", guests=False)
        assert new and fresh.meeting_id != meeting.meeting_id
        assert [m.meeting_id for m in await ledgers[2].of_room("room0")] == [fresh.meeting_id, meeting.meeting_id]
        assert (await ledgers[2].get(meeting.meeting_id)).end_reason == "test"  # type: ignore[union-attr]
    finally:
        for db in dbs:
            await db.close()


async def test_api_keys_in_the_store(tmp_path: Path, database_url: str | None) -> None:
    db = Database.for_config(database_url, tmp_path)
    await db.open()
    try:
        keys = ApiKeyStore(db)
        key, secret = await keys.create("ops", "member")
        assert (await keys.verify(secret)) == key
        for wrong in (secret[:-1] + ("A" if secret[-1] != "A" else "B"), "cvk_nothing", "nope"):
            with pytest.raises(Unauthorized):
                await keys.verify(wrong)
        await keys.revoke(key.key_id)
        with pytest.raises(Unauthorized):
            await keys.verify(secret)
        assert [k.key_id for k in await keys.list()] == [key.key_id]
    finally:
        await db.close()


async def test_the_room_directory_is_shared_through_the_store(tmp_path: Path, database_url: str | None) -> None:
    dbs = [Database.for_config(database_url, tmp_path) for _ in range(2)]
    for db in dbs:
        await db.open()
    try:
        one, two = StoreRoomDirectory(dbs[0]), StoreRoomDirectory(dbs[1])
        await one.announce(WorkerInfo("w1", "http://127.0.0.1:1", "127.0.0.1", 7001, 1))
        await two.announce(WorkerInfo("w2", "http://127.0.0.1:2", "127.0.0.1", 7002, 0))
        await one.announce(WorkerInfo("w1", "http://127.0.0.1:1", "127.0.0.1", 7001, 3))  # load changed
        await one.host("span", "w1")
        await one.host("span", "w1")  # idempotent
        assert [(w.worker_id, w.participants) for w in await two.workers()] == [("w1", 3), ("w2", 0)]
        assert [w.worker_id for w in await two.hosts_of("span")] == ["w1"]
        # w1 hosts the room but is full: the next participant goes to the least loaded worker.
        assert (await least_loaded(two, "span", per_worker=3)).worker_id == "w2"  # type: ignore[union-attr]
        assert (await least_loaded(two, "span", per_worker=5)).worker_id == "w1"  # type: ignore[union-attr]
        await one.unhost("span", "w1")
        assert await two.hosts_of("span") == []
        await one.host("span", "w1")
        await one.withdraw("w1")
        assert [w.worker_id for w in await two.workers()] == ["w2"] and await two.hosts_of("span") == []
    finally:
        for db in dbs:
            await db.close()


async def test_two_machines_on_one_postgresql_share_keys_meetings_tokens_and_files(
        tmp_path: Path, postgres: PostgresServer) -> None:
    """Two servers with data dirs of their own, one database, one secret file and one files dir: a key, a
    meeting token and a file made on one are good on the other."""
    url = postgres.create_database()
    secret = tmp_path / "shared" / "token_secret"
    secret.parent.mkdir()
    secret.write_text(secrets.token_hex(32))
    files = tmp_path / "shared" / "files"
    configs = [server_config(tmp_path / name, database_url=url, token_secret_file=secret, files_dir=files)
               for name in ("a", "b")]
    async with running_server(configs[0]) as a, running_server(configs[1]) as b, aiohttp.ClientSession() as http:
        token = await a.token("shared", "alice", moderator=True)
        assert await status(http, f"{b.url}/v1/me", a.api_key) == (200, "")
        assert await status(http, f"{b.url}/v1/me", b.api_key) == (200, "")  # cached there from now on
        async with http.get(f"{b.url}/v1/me", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200 and (await r.json())["meeting"] is not None
        form = aiohttp.FormData()
        form.add_field("file", b"shared bytes", filename="s.txt", content_type="text/plain")
        async with http.post(f"{a.url}/v1/files", data=form, headers={"Authorization": f"Bearer {token}"}) as r:
            file_id = (await r.json())["file"]["id"]
        async with http.post(f"{a.url}/v1/messages", headers={"Authorization": f"Bearer {token}"},
                             json={"to": "shared", "type": "file",
                                   "attachments": [{"type": "file", "file_id": file_id}]}) as r:
            assert r.status == 201
        async with http.get(f"{b.url}/v1/files/{file_id}", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200 and await r.read() == b"shared bytes"
        # A key revoked on one machine is refused by the other within a second (chat there had it cached).
        async with http.delete(f"{a.url}/v1/keys/{b.api_key.split('_')[1]}",
                               headers={"Authorization": f"Bearer {a.api_key}"}) as r:
            assert r.status == 200
        revoked_at = time.monotonic()
        while await status(http, f"{b.url}/v1/me", b.api_key) != (401, "unauthorized"):
            assert time.monotonic() - revoked_at < 1.5
            await asyncio.sleep(0.05)
        assert await status(http, f"{b.url}/v1/rooms", b.api_key) == (401, "unauthorized")
    assert not (tmp_path / "a" / "token_secret").exists() and not (tmp_path / "b" / "token_secret").exists()
    assert not (tmp_path / "a" / "chat" / "files").exists()


def test_a_bad_token_secret_file_is_refused(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("abcd")
    for path in (short, tmp_path / "missing"):
        done = cli("token", "r", "--identity", "x", "--data-dir", str(tmp_path / "d"), "--token-secret-file", str(path))
        assert done.returncode != 0 and "token secret" in done.stderr


async def test_transcripts_and_notes_state_in_the_store(tmp_path: Path, database_url: str | None) -> None:
    db = Database.for_config(database_url, tmp_path)
    await db.open()
    try:
        store = TranscriptStore(db)
        first = Transcript("standup", "20261124T150000Z", 1_000.0)
        first.attend("p1", "Alice", identity="alice", at=1_000.0)
        first.add(Caption("s1", "p1", "Alice", 1.0, 2.0, "we ship on friday", True))
        second = Transcript("standup", "m_" + "b" * 22, 2_000.0)
        second.add(Caption("s1", "p1", "Bob", 1.0, 2.0, "周报发了", True))
        # The transcriber saves from a thread; a second save of the same meeting replaces it.
        await asyncio.to_thread(store.save, first)
        await store.asave(second)
        await store.asave(second)
        assert await store.ameetings("standup") == [first.meeting_id, second.meeting_id]
        assert (await store.aload("standup")).captions[0].text == "周报发了"  # type: ignore[union-attr]
        again = await store.aload("standup", first.meeting_id)
        assert again is not None and again.to_dict() == first.to_dict()
        assert await store.aload("other") is None and await store.aload("standup", "../x") is None
        assert await store.load_state("standup", first.meeting_id) is None
        await store.save_state("standup", first.meeting_id, {"edited": {"summary": ["s"]}, "edited_by": "alice"})
        await store.save_state("standup", first.meeting_id, {"edited": None, "published_at": 5.0})
        assert await store.load_state("standup", first.meeting_id) == {"edited": None, "published_at": 5.0}
        with pytest.raises(ValueError):
            await store.asave(Transcript("../etc", "m1", 0.0))
    finally:
        await db.close()


async def test_a_failing_write_stores_nothing_alone_or_in_a_group(tmp_path: Path, database_url: str | None) -> None:
    """A write alone in its group runs without a savepoint: its failure rolls the whole transaction back. In a
    group each write has its savepoint: one failing stores nothing of it and keeps the others."""
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.ext.asyncio import AsyncConnection

    from store.schema import usage_daily

    def inserts(*dimensions: str) -> Callable[[AsyncConnection], Awaitable[None]]:
        async def op(conn: AsyncConnection) -> None:
            for dimension in dimensions:
                await conn.execute(usage_daily.insert().values(day="2026-12-03", metric="test", dimension=dimension,
                                                               value=1.0, computed_at=0.0))
        return op

    db = Database.for_config(database_url, tmp_path)
    await db.open()
    try:
        with pytest.raises(IntegrityError):
            await db.write(inserts("alone", "alone"))  # the second insert repeats the first's key
        await db.write(inserts("after"))  # the connection and the writer go on
        results = await asyncio.gather(db.write(inserts("b")), db.write(inserts("c", "c")), db.write(inserts("d")),
                                       return_exceptions=True)
        assert results[0] is None and isinstance(results[1], IntegrityError) and results[2] is None
        async with db.read() as conn:
            stored = {row.dimension for row in await conn.execute(select(usage_daily.c.dimension))}
        assert stored == {"after", "b", "d"}
    finally:
        await db.close()


async def test_one_statement_reads_see_every_committed_write(tmp_path: Path, database_url: str | None) -> None:
    """`Database.first`/`all` answer as a read on the async engine does, see each write once it resolved, keep
    working after a failed statement, and (on SQLite, where they run on reader threads of their own) leave no
    thread behind when the database closes."""
    import threading

    from sqlalchemy import func, select, text
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import AsyncConnection

    from store.schema import usage_daily

    def readers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("store-reader")]

    def insert(dimension: str) -> Callable[[AsyncConnection], Awaitable[None]]:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(usage_daily.insert().values(day="2026-12-03", metric="reads", dimension=dimension,
                                                           value=float(len(dimension)), computed_at=0.0))
        return op

    stmt = select(usage_daily).where(usage_daily.c.metric == "reads").order_by(usage_daily.c.dimension)
    db = Database.for_config(database_url, tmp_path)
    await db.open()
    try:
        assert await db.first(stmt) is None and await db.all(stmt) == []
        for n in range(20):
            await db.write(insert(f"d{n:02}"))
            counted = await db.first(select(func.count()).where(usage_daily.c.metric == "reads"))
            assert counted is not None and counted[0] == n + 1  # the write is seen as soon as it resolved
        async with db.read() as conn:
            expected = list((await conn.execute(stmt)).all())
        assert await db.all(stmt) == expected and await db.first(stmt) == expected[0]
        assert expected[0].dimension == "d00" and expected[0].value == 3.0
        # Reads while writes go on, all answered.
        writes = [db.write(insert(f"e{n:02}")) for n in range(20)]
        reads = [db.all(stmt) for _ in range(40)]
        results = await asyncio.gather(*writes, *reads)
        assert all(len(rows) >= 20 for rows in results[20:])
        assert len(await db.all(stmt)) == 40
        with pytest.raises(DBAPIError):
            await db.first(text("SELECT * FROM no_such_table"))
        assert len(await db.all(stmt)) == 40
        assert bool(readers()) == (database_url is None)
    finally:
        await db.close()
    assert readers() == []
