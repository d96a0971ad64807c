"""Retention and legal hold (#11), and channel archive and rename, on a real server and both store backends.

Retention deletes old messages in batches with their search terms, files and blobs, keeps newer ones; legal holds
on a user and on a channel keep theirs through retention and recall until lifted; each run's counts are in the
audit log; an archived channel refuses posts with 409 channel_archived; rename and archive are audit events."""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

from sqlalchemy import func, select

from audit.log import AuditLog
from chat.model import Message, new_id
from chat.retention import Retention
from store.schema import chat_messages, chat_search_terms, held_copies
from tests.chat.conftest import ChatServer
from tests.chat.test_file_security import download, post_file, upload

DAY = 86400.0


async def audit_events(chat: ChatServer, name: str) -> list[dict[str, Any]]:
    log = AuditLog(chat.api.store.db)  # type: ignore[attr-defined]
    events = [json.loads(r.event) async for rows in log.rows() for r in rows]
    return [e for e in events if e["event"] == name]


def retention(chat: ChatServer) -> Retention:
    assert chat.api.retention is not None
    return chat.api.retention


def age_blob(chat: ChatServer, data: bytes) -> Any:
    """The blob of `data`, last touched long before a retention run (uploads of the same bytes touch it)."""
    sha = hashlib.sha256(data).hexdigest()
    blob = chat.api.config.files_dir / sha[:2] / sha
    os.utime(blob, (time.time() - 60, time.time() - 60))
    return blob


async def count(chat: ChatServer, stmt: Any) -> int:
    async with chat.api.store.db.read() as conn:  # type: ignore[attr-defined]
        return int((await conn.execute(stmt)).scalar_one())


async def team(chat: ChatServer, name: str = "t") -> tuple[str, str, str]:
    ann = await chat.user("ann")
    bob = await chat.user("bob")
    ch = await chat.call("POST", "/v1/channels", ann, {"name": name, "kind": "team", "members": ["bob"]}, expect=201)
    return ann, bob, ch["id"]


async def test_retention_deletes_old_messages_files_and_blobs_in_batches(chat: ChatServer) -> None:
    ann, bob, cid = await team(chat)
    later = time.time() + 200 * DAY  # the run: 200 days on, past the organisation's 183
    gone_bytes, kept_bytes = b"quarterly figures, old", b"shared logo bytes"
    gone_file = (await upload(chat, ann, [("old.txt", gone_bytes)]))["file"]
    kept_file = (await upload(chat, ann, [("logo.txt", kept_bytes)]))["file"]
    await post_file(chat, ann, cid, gone_file["id"])
    await post_file(chat, ann, cid, kept_file["id"])
    store = chat.api.store
    old = [Message(id=new_id("m_"), channel_id=cid, author="bob", type="text", content=f"zebra crossing {n}",
                   created_at=time.time() - n) for n in range(250)]
    assert await store.insert_many(old) == 250
    # Newer than the policy at the run: a message carrying the shared file, and a plain one.
    fresh, _ = await store.insert_message(Message(id=new_id("m_"), channel_id=cid, author="ann", type="text",
                                                  content="zebra fresh", created_at=later - DAY))
    carrier, _ = await store.insert_message(Message(id=new_id("m_"), channel_id=cid, author="ann", type="text",
                                                    content="logo again", created_at=later - DAY))
    await store.attach_file(kept_file["id"], carrier.id, cid, time.time())
    gone_blob, kept_blob = age_blob(chat, gone_bytes), age_blob(chat, kept_bytes)
    expired: list[dict[str, Any]] = []
    chat.api.bus.subscribe(lambda event, text: expired.append(event) if event.get("type") == "expired" else None)

    job = retention(chat)
    job.batch = 100
    report = await job.run(later)

    assert report.messages == 252 and report.held_back == 0
    assert (report.files, report.bytes, report.blobs) == (1, len(gone_bytes), 1)
    assert [len(e["ids"]) for e in expired] == [100, 100, 52]  # one transaction and one event per batch
    assert all(e["channel"] == cid for e in expired)
    assert not gone_blob.exists() and kept_blob.exists()
    assert (await download(chat, None, gone_file["id"]))[0] == 404  # deleted, not withdrawn: admins too
    assert await download(chat, bob, kept_file["id"]) == (200, kept_bytes)
    await chat.call("GET", f"/v1/messages/{old[0].id}", ann, expect=404)
    await chat.call("GET", f"/v1/messages/{fresh.id}", ann, expect=200)
    found = (await chat.call("GET", "/v1/search?q=zebra", ann, expect=200))["messages"]
    assert [m["id"] for m in found] == [fresh.id]
    assert await count(chat, select(func.count()).select_from(chat_messages)
                       .where(chat_messages.c.channel_id == cid)) == 2
    assert await count(chat, select(func.count()).select_from(chat_search_terms)
                       .where(chat_search_terms.c.term == "crossing")) == 0
    # Sync: nothing of the deleted comes back, not even a tombstone.
    synced = await chat.call("GET", "/v1/sync?since=0", ann, expect=200)
    assert {m["id"] for m in synced.get("messages", synced.get("updated", []))} <= {fresh.id, carrier.id}
    runs = await audit_events(chat, "retention.run")
    assert runs[-1]["after"]["messages"] == 252 and runs[-1]["after"]["files"] == 1
    assert runs[-1]["after"]["bytes"] == len(gone_bytes) and runs[-1]["after"]["held_back"] == 0
    # A second run finds nothing more.
    again = await job.run(later)
    assert (again.messages, again.files) == (0, 0)


async def test_legal_hold_keeps_through_retention_and_recall_until_lifted(chat: ChatServer) -> None:
    ann, bob, cid = await team(chat, "general")
    vault = await chat.call("POST", "/v1/channels", ann, {"name": "deals", "kind": "team", "members": ["bob"]},
                            expect=201)
    secret = b"bob's term sheet"
    f = (await upload(chat, bob, [("terms.txt", secret)]))["file"]
    held_post = await post_file(chat, bob, cid, f["id"])
    said = await chat.call("POST", "/v1/messages", bob, {"to": cid, "content": "bob says hi"}, expect=201)
    plain = await chat.call("POST", "/v1/messages", ann, {"to": cid, "content": "ann in general"}, expect=201)
    deal = await chat.call("POST", "/v1/messages", ann, {"to": vault["id"], "content": "the deal"}, expect=201)

    # Only owners and admins (edit_org) place holds.
    refused = await chat.call("POST", "/v1/admin/legal_holds", ann, {"name": "x", "users": ["bob"]}, expect=403)
    assert refused["error"]["code"] == "not_permitted"
    await chat.call("POST", "/v1/admin/legal_holds", None, {"name": "x", "users": ["nobody"]}, expect=404)
    await chat.call("POST", "/v1/admin/legal_holds", None, {"name": "x"}, expect=400)
    on_bob = await chat.call("POST", "/v1/admin/legal_holds", None, {"name": "Bob v. Acme", "users": ["bob"]},
                             expect=201)
    on_deals = await chat.call("POST", "/v1/admin/legal_holds", None, {"name": "Deals", "channels": ["deals"]},
                               expect=201)
    assert on_deals["channels"] == [vault["id"]] and on_bob["active"] is True
    listed = await chat.call("GET", "/v1/admin/legal_holds", None, expect=200)
    assert [h["id"] for h in listed["holds"]] == [on_bob["id"], on_deals["id"]]

    # A recall hides bob's message from everyone, the hold keeps its words and its file for admins.
    await chat.call("DELETE", f"/v1/messages/{held_post['id']}", bob, expect=200)
    tomb = await chat.call("GET", f"/v1/messages/{held_post['id']}", ann, expect=200)
    assert tomb["deleted"] is True and tomb["attachments"] == []
    assert (await download(chat, bob, f["id"]))[0] == 404
    assert await download(chat, None, f["id"]) == (200, secret)
    blob = age_blob(chat, secret)

    later = time.time() + 200 * DAY
    first = await retention(chat).run(later)
    assert first.messages == 1 and first.held_back == 3 and first.files == 0  # ann's plain one only
    await chat.call("GET", f"/v1/messages/{plain['id']}", ann, expect=404)
    await chat.call("GET", f"/v1/messages/{said['id']}", ann, expect=200)
    await chat.call("GET", f"/v1/messages/{deal['id']}", ann, expect=200)
    assert await download(chat, None, f["id"]) == (200, secret) and blob.exists()
    export = await chat.call("GET", f"/v1/admin/legal_holds/{on_bob['id']}/messages", None, expect=200)
    records = [json.loads(line) for line in export.decode().splitlines()]
    kept = [r for r in records if r["source"] == "held_copies"]
    assert [r["message"]["attachments"][0]["file_id"] for r in kept] == [f["id"]]
    assert kept[0]["recalled"]["by"] == "bob"
    assert {r["message"]["id"] for r in records if r["source"] == "messages"} == {held_post["id"], said["id"]}

    # Lifting the hold on bob: the next run deletes his messages, the kept original, the file and its blob.
    lifted = await chat.call("DELETE", f"/v1/admin/legal_holds/{on_bob['id']}", None, expect=200)
    assert lifted["active"] is False and lifted["lifted_by"]
    await chat.call("DELETE", f"/v1/admin/legal_holds/{on_bob['id']}", None, expect=404)
    second = await retention(chat).run(later)
    assert (second.messages, second.copies, second.files, second.blobs, second.held_back) == (2, 1, 1, 1, 1)
    assert (await download(chat, None, f["id"]))[0] == 404 and not blob.exists()
    assert await count(chat, select(func.count()).select_from(held_copies)) == 0
    await chat.call("GET", f"/v1/messages/{deal['id']}", ann, expect=200)  # the channel hold still keeps it
    await chat.call("DELETE", f"/v1/admin/legal_holds/{on_deals['id']}", None, expect=200)
    third = await retention(chat).run(later)
    assert (third.messages, third.held_back) == (1, 0)
    await chat.call("GET", f"/v1/messages/{deal['id']}", ann, expect=404)

    assert len(await audit_events(chat, "legal_hold.create")) == 2
    lifts = await audit_events(chat, "legal_hold.lift")
    assert [e["object"]["id"] for e in lifts] == [on_bob["id"], on_deals["id"]]
    runs = [e["after"] for e in await audit_events(chat, "retention.run")]
    assert [(r["messages"], r["held_back"]) for r in runs[-3:]] == [(1, 3), (2, 1), (1, 0)]


async def test_archived_channel_refuses_posts_and_rename_is_audited(chat: ChatServer) -> None:
    ann, bob, cid = await team(chat, "launch")
    said = await chat.call("POST", "/v1/messages", bob, {"to": cid, "content": "before the archive"}, expect=201)
    refused = await chat.call("POST", f"/v1/channels/{cid}/archive", bob, expect=403)
    assert refused["error"]["code"] == "not_permitted"
    archived = await chat.call("POST", f"/v1/channels/{cid}/archive", ann, expect=200)
    assert archived["archived"] is True and archived["archived_at"]
    for who in (ann, bob):
        err = await chat.call("POST", "/v1/messages", who, {"to": cid, "content": "still here?"}, expect=409)
        assert err["error"]["code"] == "channel_archived"
    # Read-only: no edits or reactions either.
    edit = await chat.call("PATCH", f"/v1/messages/{said['id']}", bob, {"content": "changed"}, expect=409)
    assert edit["error"]["code"] == "channel_archived"
    await chat.call("POST", f"/v1/messages/{said['id']}/reactions", ann, {"emoji": "👍"}, expect=409)
    listed = await chat.call("GET", "/v1/channels", bob, expect=200)
    assert [c["archived"] for c in listed["channels"] if c["id"] == cid] == [True]
    await chat.call("GET", f"/v1/channels/{cid}/messages", bob, expect=200)  # still readable

    renamed = await chat.call("PATCH", f"/v1/channels/{cid}", ann, {"name": "launch-2025"}, expect=200)
    assert renamed["name"] == "launch-2025"
    await chat.call("POST", "/v1/channels", ann, {"name": "taken", "kind": "team"}, expect=201)
    clash = await chat.call("PATCH", f"/v1/channels/{cid}", ann, {"name": "taken"}, expect=409)
    assert clash["error"]["code"] == "channel_exists"
    await chat.call("PATCH", f"/v1/channels/{cid}", bob, {"name": "mine"}, expect=403)
    await chat.call("PATCH", f"/v1/channels/{cid}", ann, {"name": "no spaces"}, expect=400)

    # An admin (manage_any_channel) unarchives what someone else made; posting works again.
    await chat.call("POST", f"/v1/channels/{cid}/unarchive", None, expect=200)
    await chat.call("POST", "/v1/messages", bob, {"to": "launch-2025", "content": "back"}, expect=201)
    dm = await chat.call("POST", "/v1/channels", ann, {"kind": "direct", "members": ["bob"]})
    await chat.call("POST", f"/v1/channels/{dm['id']}/archive", ann, expect=409)

    assert [e["actor"]["login"] for e in await audit_events(chat, "channel.archive")] == ["ann"]
    assert len(await audit_events(chat, "channel.unarchive")) == 1
    renames = await audit_events(chat, "channel.rename")
    assert [(e["before"], e["after"]) for e in renames] == [({"name": "launch"}, {"name": "launch-2025"})]


async def test_retention_cli_runs_the_job(sqlite_chat: ChatServer, tmp_path: Any) -> None:
    """`convene retention run` against the data dir: the same deletes, counts printed as JSON."""
    import asyncio
    import sys

    chat = sqlite_chat
    ann, _, cid = await team(chat)
    await chat.api.store.insert_message(Message(id=new_id("m_"), channel_id=cid, author="ann", type="text",
                                                content="ancient", created_at=time.time() - 400 * DAY))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling.cli", "retention", "run", "--data-dir", str(chat.api.config.data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert json.loads(out)["messages"] == 1
    runs = await audit_events(chat, "retention.run")
    assert runs[-1]["actor"]["login"].startswith("operator:")


async def test_a_scheduled_post_into_an_archived_channel_fails_with_channel_archived(chat: ChatServer) -> None:
    """The scheduled-post runner posts through ChatService.post and stores the error code it raises."""
    from identity.passwords import AccountStore
    from integrations.scheduled_store import ScheduledPost
    from integrations.scheduler import ChatSender

    ann, _, cid = await team(chat, "daily")
    await chat.call("POST", f"/v1/channels/{cid}/archive", ann, expect=200)
    now = time.time()
    post = ScheduledPost(id="sp_archived", author="ann", channel_id=cid, text="leaderboard", rule_kind=None,
                         rule=None, timezone=None, start=now, status="scheduled", next_run=now, created_at=now)
    run = await ChatSender(chat.api.service, AccountStore(chat.api.store.db)).send(post, now, now)  # type: ignore[attr-defined]
    assert (run.outcome, run.error_code, run.message_id) == ("failed", "channel_archived", None)
