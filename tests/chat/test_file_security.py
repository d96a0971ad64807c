"""Files cannot outlive their messages, run on a reader's machine, or pile up unbounded:
recalled and expired messages take their files with them (admins keep them for legal export),
executables and scripts are refused by content and by name, uploads never posted are swept with
their blobs, and guests have a daily upload quota. Each on a real server, on both store backends (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.chat.conftest import ChatServer, database_for, start_chat_server

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 8


async def upload(chat: ChatServer, token: str | None, files: list[tuple[str, bytes]], expect: int = 201) -> Any:
    form = aiohttp.FormData()
    for name, data in files:
        form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return await chat.call("POST", "/v1/files", token, data=form, expect=expect)


async def download(chat: ChatServer, token: str | None, file_id: str) -> tuple[int, Any]:
    async with chat.session.get(chat.url + f"/v1/files/{file_id}",
                                headers={"Authorization": f"Bearer {token or chat.admin_key}"}) as r:
        body = await r.read() if r.status == 200 else await r.json()
        return r.status, body


def blobs(chat: ChatServer) -> set[str]:
    root = chat.api.config.files_dir
    return {p.name for p in root.glob("??/*") if p.is_file()}


def tmp_files(chat: ChatServer) -> list[Path]:
    return list((chat.api.config.files_dir / "tmp").iterdir())


async def team(chat: ChatServer) -> tuple[str, str, str]:
    ann = await chat.user("ann")
    bob = await chat.user("bob")
    ch = await chat.call("POST", "/v1/channels", ann, {"name": "t", "kind": "team", "members": ["bob"]}, expect=201)
    return ann, bob, ch["id"]


async def post_file(chat: ChatServer, token: str, to: str, file_id: str) -> Any:
    return await chat.call("POST", "/v1/messages", token, {"to": to, "type": "file", "attachments": [
        {"type": "file", "file_id": file_id}]}, expect=201)


async def configured(request: pytest.FixtureRequest, tmp_path: Path, **overrides: Any) -> AsyncIterator[ChatServer]:
    runner, server = await start_chat_server(tmp_path, None, database_for(request), **overrides)
    try:
        yield server
    finally:
        await server.session.close()
        await runner.cleanup()


@pytest.fixture(params=["sqlite", "postgres"])
async def fast_sweep_chat(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatServer]:
    """The sweep runs every 0.2 s and forgets uploads not posted within 1 s."""
    async for server in configured(request, tmp_path, unattached_file_seconds=1.0, file_sweep_interval_seconds=0.2):
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
async def quota_chat(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatServer]:
    """Guests may upload 10 000 bytes a day."""
    async for server in configured(request, tmp_path, guest_upload_bytes_per_day=10_000):
        yield server


# Recall and retention --------------------------------------------------------------------------


async def test_recalled_message_takes_its_file(chat: ChatServer) -> None:
    ann, bob, cid = await team(chat)
    f = (await upload(chat, ann, [("chart.png", PNG)]))["file"]
    m = await post_file(chat, ann, cid, f["id"])
    assert await download(chat, bob, f["id"]) == (200, PNG)
    await chat.call("DELETE", f"/v1/messages/{m['id']}", ann, expect=200)
    for who in (bob, ann):  # the reader and the uploader alike
        status, body = await download(chat, who, f["id"])
        assert status == 404 and body["error"]["code"] == "file_not_found"
    # Nor can it be posted again, by its uploader or anyone.
    again = await chat.call("POST", "/v1/messages", ann, {"to": cid, "type": "file", "attachments": [
        {"type": "file", "file_id": f["id"]}]}, expect=404)
    assert again["error"]["code"] == "file_not_found"
    # Admins keep it for legal export: the blob is still there.
    assert await download(chat, None, f["id"]) == (200, PNG)
    assert hashlib.sha256(PNG).hexdigest() in blobs(chat)


async def test_file_stays_while_another_message_carries_it(chat: ChatServer) -> None:
    ann, bob, cid = await team(chat)
    f = (await upload(chat, ann, [("chart.png", PNG)]))["file"]
    first = await post_file(chat, ann, cid, f["id"])
    await post_file(chat, ann, cid, f["id"])
    await chat.call("DELETE", f"/v1/messages/{first['id']}", ann, expect=200)
    assert await download(chat, bob, f["id"]) == (200, PNG)


async def test_expired_message_takes_its_file(chat: ChatServer) -> None:
    ann, bob, cid = await team(chat)
    f = (await upload(chat, ann, [("notes.txt", b"minutes of the board")]))["file"]
    await post_file(chat, ann, cid, f["id"])
    assert (await download(chat, bob, f["id"]))[0] == 200
    sha = hashlib.sha256(b"minutes of the board").hexdigest()
    blob = chat.api.config.files_dir / sha[:2] / sha
    os.utime(blob, (time.time() - 30, time.time() - 30))  # not touched since long before the run
    # The org keeps 183 days: a year from now the retention job deletes the message, its file and its blob.
    assert chat.api.retention is not None
    report = await chat.api.retention.run(time.time() + 365 * 86400)
    assert (report.messages, report.files, report.bytes, report.blobs) == (1, 1, 20, 1)
    for who in (bob, ann, None):  # admins too: deleted, not withdrawn
        status, body = await download(chat, who, f["id"])
        assert status == 404 and body["error"]["code"] == "file_not_found"
    assert not blob.exists()


# Executables and scripts ------------------------------------------------------------------------


def jar() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMain-Class: Evil\n")
        z.writestr("Evil.class", b"\xca\xfe\xba\xbe" + bytes(20))
    return out.getvalue()


TEXT = b"harmless looking text\n"
REFUSED = [
    # By name, whatever the content (case, double extensions, what Windows strips at the end).
    *[(f"x.{ext}", TEXT) for ext in ("exe", "msi", "bat", "cmd", "ps1", "vbs", "wsf", "hta", "js", "jar", "scr",
                                      "com")],
    ("Invoice.JS", TEXT), ("report.pdf.exe", TEXT), ("run.exe.", TEXT), ("run.exe . .", TEXT), ("page.HTA", TEXT),
    # By content, whatever the name.
    ("report.pdf", b"MZ\x90\x00\x03\x00\x00\x00" + bytes(120)),
    ("data", b"\x7fELF\x02\x01\x01" + bytes(100)),
    ("picture", b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + bytes(100)),
    ("notes.txt", b"#!/bin/sh\nrm -rf ~\n"),
    ("Main", b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(40)),
    ("archive.zip", jar()),
    ("page.html", b"<html><head><HTA:APPLICATION ID=x APPLICATIONNAME=y></head><script>run()</script></html>"),
]


@pytest.mark.parametrize("name,data", REFUSED, ids=[n for n, _ in REFUSED])
async def test_executables_and_scripts_refused(sqlite_chat: ChatServer, name: str, data: bytes) -> None:
    chat = sqlite_chat
    ann = await chat.user("ann")
    bad = await upload(chat, ann, [(name, data)], expect=400)
    assert bad["error"]["code"] == "file_type_refused"
    assert blobs(chat) == set() and tmp_files(chat) == []


async def test_one_refused_part_stores_nothing(chat: ChatServer) -> None:
    ann = await chat.user("ann")
    bad = await upload(chat, ann, [("chart.png", PNG), ("tool.wsf", TEXT)], expect=400)
    assert bad["error"]["code"] == "file_type_refused"
    assert blobs(chat) == set() and tmp_files(chat) == []


async def test_ordinary_files_still_pass(sqlite_chat: ChatServer) -> None:
    ann = await sqlite_chat.user("ann")
    ok = [("MZ-notes.txt", b"MZ is where the meeting was\n"), ("chart.png", PNG), ("json.txt", b'{"a": 1}'),
          ("slides.zip", zip_without_manifest())]
    got = await upload(sqlite_chat, ann, ok)
    assert [f["name"] for f in got["files"]] == [n for n, _ in ok]


def zip_without_manifest() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("a.txt", "hello")
    return out.getvalue()


# Uploads never posted -------------------------------------------------------------------------


async def wait_for(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_unposted_uploads_are_swept_with_their_blobs(fast_sweep_chat: ChatServer) -> None:
    chat = fast_sweep_chat
    ann, bob, cid = await team(chat)
    shared = b"the same bytes, uploaded twice\n"
    lonely = (await upload(chat, ann, [("lonely.txt", b"never posted\n")]))["file"]
    twin = (await upload(chat, ann, [("twin.txt", shared)]))["file"]
    kept = (await upload(chat, ann, [("kept.txt", shared)]))["file"]
    posted = (await upload(chat, ann, [("posted.png", PNG)]))["file"]
    await post_file(chat, ann, cid, kept["id"])
    await post_file(chat, ann, cid, posted["id"])
    assert (await download(chat, ann, lonely["id"]))[0] == 200
    dead = chat.api.config.files_dir / "tmp" / "left-by-a-crash"
    dead.write_bytes(b"half an upload")
    os.utime(dead, (time.time() - 3600, time.time() - 3600))

    async def swept() -> bool:
        return (await download(chat, ann, lonely["id"]))[0] == 404 and (await download(chat, ann, twin["id"]))[0] == 404

    await wait_for(swept)
    assert (await download(chat, ann, lonely["id"]))[1]["error"]["code"] == "file_not_found"
    assert (await download(chat, None, lonely["id"]))[0] == 404  # the record is gone, not just hidden
    # The lonely blob is deleted; the twin's blob stays: a posted file shares it.
    assert blobs(chat) == {hashlib.sha256(shared).hexdigest(), hashlib.sha256(PNG).hexdigest()}
    assert await download(chat, bob, kept["id"]) == (200, shared)
    assert await download(chat, bob, posted["id"]) == (200, PNG)
    assert tmp_files(chat) == []
    # Attaching a swept upload finds nothing.
    gone = await chat.call("POST", "/v1/messages", ann, {"to": cid, "type": "file", "attachments": [
        {"type": "file", "file_id": lonely["id"]}]}, expect=404)
    assert gone["error"]["code"] == "file_not_found"


# Guest quota ----------------------------------------------------------------------------------


async def test_guest_upload_quota(quota_chat: ChatServer) -> None:
    chat = quota_chat
    guest = await chat.user("visitor", role="guest")
    member = await chat.user("ann")
    first = await upload(chat, guest, [("a.txt", b"a" * 6000)])
    before = blobs(chat)
    over = await upload(chat, guest, [("b.txt", b"b" * 6000)], expect=413)
    assert over["error"]["code"] == "quota_exceeded"
    assert blobs(chat) == before and tmp_files(chat) == []
    # Several parts add up in one request too.
    over = await upload(chat, guest, [("c.txt", b"c" * 2000), ("d.txt", b"d" * 2500)], expect=413)
    assert over["error"]["code"] == "quota_exceeded" and blobs(chat) == before
    await upload(chat, guest, [("e.txt", b"e" * 4000)])
    spent = await upload(chat, guest, [("f.txt", b"f")], expect=413)
    assert spent["error"]["code"] == "quota_exceeded"
    # Members are not limited.
    await upload(chat, member, [("big.txt", b"m" * 30_000)])
    assert first["file"]["size"] == 6000
