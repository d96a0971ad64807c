"""`convene import FILE`: reads one of our exports (chat/export.py, docs/export.md) into the store.

The file is read and parsed on a thread a batch of lines at a time (never whole), and each batch is loaded
(chat/importer.Loader) before the next is read. A blob is read from `<FILE>.files/<sha256>` and filed only when
its content hashes to the name it was exported under.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from audit import AuditEvent, Recorder
from chat.errors import ImportUnreadable
from chat.export import FORMAT, VERSION
from chat.files import FileVault
from chat.importer import ImportCounts, Loader
from store.database import Database

BATCH = 2000


class _Lines:
    """The export's records, BATCH at a time, with the number of the line each batch starts at."""

    def __init__(self, path: Path) -> None:
        self.handle = path.open("rb")
        self.number = 0

    def next_batch(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for raw in self.handle:
            self.number += 1
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError as exc:
                raise ImportUnreadable(f"line {self.number} is not JSON ({exc})", line=self.number) from None
            if not isinstance(record, dict) or not isinstance(record.get("type"), str):
                raise ImportUnreadable(f"line {self.number} is not a record", line=self.number)
            out.append(record)
            if len(out) >= BATCH:
                break
        return out


def check_version(record: dict[str, Any] | None) -> None:
    version = record.get("version") if record is not None and record.get("type") == "version" else None
    if not isinstance(version, dict) or version.get("format") != FORMAT:
        raise ImportUnreadable(f"not a Convene export: its first line must be a {FORMAT} version record")
    if not isinstance(version.get("version"), int) or version["version"] > VERSION:
        raise ImportUnreadable(f"export version {version.get('version')!r}; this server reads up to {VERSION}")


def blob_opener(base: Path) -> Callable[[str], Callable[[], BinaryIO] | None]:
    """Opens `<name>.files/<sha256>` beside the export, and nothing outside that directory."""
    root = base.resolve()

    def open_(relative: str) -> Callable[[], BinaryIO] | None:
        path = (root / relative).resolve()
        if root not in path.parents or not path.is_file():
            return None
        return lambda: path.open("rb")

    return open_


async def import_file(db: Database, vault: FileVault, path: Path, recorder: Recorder) -> ImportCounts:
    started = time.perf_counter()
    try:
        lines = await asyncio.to_thread(_Lines, path)
    except OSError as exc:
        raise ImportUnreadable(f"cannot read {path}: {exc.strerror}") from None
    loader = Loader(db, vault, blob_opener(path.parent))
    try:
        batch = await asyncio.to_thread(lines.next_batch)
        check_version(batch[0] if batch else None)
        while batch:
            await loader.feed(batch)
            batch = await asyncio.to_thread(lines.next_batch)
        await loader.finish()
    finally:
        lines.handle.close()
    loader.counts.seconds = time.perf_counter() - started
    await recorder.record(AuditEvent("import.run", "import", path.name, after={
        "format": FORMAT, **loader.counts.as_dict()}))
    return loader.counts
