"""Retention cost: `python -m loadtest.retention_bench [--messages 100000] [--files 1000] [--batch 1000]
[--database-url URL]`.

Fills one channel with --messages messages older than the organisation's policy (each with its search terms;
--files of them carry a file of their own, with its blob on disk), then times one retention run: messages
deleted per second, files and blobs, and the event loop's worst stall while it ran (a 10 ms ticker), and the
time of a post made while it runs. A fresh SQLite file in a temporary directory unless --database-url names an
(empty) PostgreSQL database.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import tempfile
import time
from pathlib import Path

from chat.bus import LocalBus
from chat.files import FileVault
from chat.legal_hold import HoldStore
from chat.model import Attachment, Channel, FileMeta, Message, new_id
from chat.retention import Retention
from chat.service import ChatService
from chat.sql_store import SqlChatStore
from store.database import Database

WORDS = ("budget review roadmap launch customer invoice meeting design release hiring travel quarterly "
         "report update deploy server incident retro planning sprint").split()


def _text(n: int) -> str:
    return " ".join(WORDS[(n * k) % len(WORDS)] for k in range(1, 9)) + f" #{n}"


async def _fill(store: SqlChatStore, vault: FileVault, channel: str, messages: int, files: int) -> None:
    old = time.time() - 400 * 86400
    step = max(1, messages // files) if files else messages + 1
    chunk: list[Message] = []
    for n in range(messages):
        attachments: tuple[Attachment, ...] = ()
        if n % step == 0 and n // step < files:
            data = f"file {n} ".encode() * 64
            sha = hashlib.sha256(data).hexdigest()
            blob = vault.path_of(sha)
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            fid = new_id("f_")
            await store.put_file(FileMeta(id=fid, sha256=sha, name=f"{n}.txt", mime="text/plain", size=len(data),
                                          uploader="alice", created_at=old))
            attachments = (Attachment(file_id=fid, name=f"{n}.txt", mime="text/plain", size=len(data)),)
        chunk.append(Message(id=new_id("m_"), channel_id=channel, author="alice", type="file" if attachments else "text",
                             content=_text(n), created_at=old + n, attachments=attachments))
        if len(chunk) == 5000 or n == messages - 1:
            await store.insert_many(chunk)
            for m in chunk:
                for a in m.attachments:
                    assert a.file_id
                    await store.attach_file(a.file_id, m.id, channel, old)
            chunk = []


async def _ticker(stalls: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.01)
        stalls.append(time.perf_counter() - start - 0.01)


async def run(messages: int, files: int, batch: int, url: str | None, data_dir: Path) -> None:
    db = Database.for_config(url, data_dir)
    store = SqlChatStore(db)
    await store.open()
    service = ChatService(store, LocalBus())
    service.legal_holds = HoldStore(db)
    vault = FileVault(data_dir / "files")
    try:
        await service.ensure_user("alice")
        channel = Channel(id=new_id("c_"), name="bench", kind="team", created_by="alice", created_at=time.time())
        await store.create_channel(channel, ["alice"])
        start = time.perf_counter()
        await _fill(store, vault, channel.id, messages, files)
        print(f"filled {messages} messages ({files} with a file) in {time.perf_counter() - start:.1f} s")

        stalls: list[float] = []
        stop = asyncio.Event()
        ticker = asyncio.create_task(_ticker(stalls, stop))
        job = Retention(service, db, vault, batch=batch)
        start = time.perf_counter()
        running = asyncio.create_task(job.run())
        await asyncio.sleep(0.5)
        post_start = time.perf_counter()
        await store.insert_message(Message(id=new_id("m_"), channel_id=channel.id, author="alice", type="text",
                                           content="posted during retention", created_at=time.time()))
        post_ms = (time.perf_counter() - post_start) * 1000
        report = await running
        took = time.perf_counter() - start
        stop.set()
        await ticker
        print(f"retention: {report.messages} messages, {report.files} files ({report.bytes} bytes), "
              f"{report.blobs} blobs in {took:.2f} s = {report.messages / took:,.0f} messages/s "
              f"(batches of {batch})")
        print(f"event loop worst stall during the run: {max(stalls) * 1000:.0f} ms; "
              f"a post made during the run took {post_ms:.0f} ms")
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.messages, args.files, args.batch, args.database_url, Path(tmp)))


if __name__ == "__main__":
    main()
