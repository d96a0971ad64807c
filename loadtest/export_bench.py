"""Export and import rates: `python -m loadtest.export_bench [--messages 50000] [--database-url URL]`.

Fills a fresh SQLite store (200 users, 20 channels, --messages messages: every 10th a thread reply, every 20th
with a reaction and an edit, every 100th a task), exports it (chat/export.py), imports the export into a second,
empty store (SQLite, or the empty PostgreSQL database --database-url names), then imports it again (all
existing). Prints messages per second for each and the export's size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from audit import Recorder
from chat.export import Exporter
from chat.files import FileVault
from chat.import_jsonl import import_file
from chat.model import Channel, Edit, Message, Task, User, new_id
from chat.sql_store import SqlChatStore
from store.database import Database

WORDS = "release plan budget review meeting notes design media server latency report customer".split()


def _message(n: int, channel: str, roots: dict[str, str]) -> Message:
    text = " ".join(WORDS[(n * k) % len(WORDS)] for k in range(1, 12))
    m = Message(id=new_id("m_"), channel_id=channel, author=f"user{n % 200:03d}", type="text", content=text,
                created_at=1.7e9 + n)
    if n % 10 == 5 and channel in roots:
        m = Message(**{**m.__dict__, "thread": roots[channel]})
    if n % 20 == 0:
        m = Message(**{**m.__dict__, "reactions": (("👍", ("user001", "user002")),),
                       "edits": (Edit(content="first draft", at=1.7e9 + n),), "edited_at": 1.7e9 + n + 1})
    if n % 100 == 0:
        m = Message(**{**m.__dict__, "type": "task", "task": Task(title=text[:40], assignee="user003")})
    roots.setdefault(channel, m.id)
    return m


async def fill(db: Database, messages: int) -> None:
    store = SqlChatStore(db)
    for i in range(200):
        await store.put_user(User(login=f"user{i:03d}", name=f"User {i}", department=f"dept{i % 7}"))
    channels = [Channel(id=new_id("c_"), name=f"chan{i:02d}", kind="team") for i in range(20)]
    for c in channels:
        await store.create_channel(c, [f"user{k:03d}" for k in range(0, 200, 3)])
    roots: dict[str, str] = {}
    batch = [_message(n, channels[n % 20].id, roots) for n in range(messages)]
    for i in range(0, messages, 1000):
        await store.insert_many(batch[i:i + 1000])


async def run(messages: int, url: str | None, tmp: Path) -> None:
    source = Database.for_config(None, tmp / "source")
    await source.open()
    try:
        started = time.perf_counter()
        await fill(source, messages)
        print(f"filled {messages} messages in {time.perf_counter() - started:.1f} s")
        out = tmp / "export.jsonl"
        counts = await Exporter(source, FileVault(tmp / "source-files")).run(out)
    finally:
        await source.close()
    print(f"export:        {counts.seconds:6.1f} s, {messages / counts.seconds:8.0f} messages/s, "
          f"{out.stat().st_size / 1e6:.1f} MB")
    target = Database.for_config(url, tmp / "target")
    await target.open()
    try:
        vault = FileVault(tmp / "target-files")
        first = await import_file(target, vault, out, Recorder.on(target))
        print(f"import:        {first.seconds:6.1f} s, {messages / first.seconds:8.0f} messages/s "
              f"({first.of('messages').created} created)")
        again = await import_file(target, vault, out, Recorder.on(target))
        print(f"import again:  {again.seconds:6.1f} s, {messages / again.seconds:8.0f} messages/s "
              f"({again.created_total()} created, {again.of('messages').existing} messages existing)")
    finally:
        await target.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--database-url", default=None, help="an empty PostgreSQL database for the import")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.messages, args.database_url, Path(tmp)))


if __name__ == "__main__":
    main()
