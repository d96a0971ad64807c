"""Audit log costs: `python -m loadtest.audit_bench [--rows 100000] [--database-url URL]`.

Prints the append cost per event one at a time (each its own transaction and commit), the cost per event when
many are recorded at once (the store's writer groups them into shared transactions), and the time
`convene audit verify` needs for the whole chain at --rows rows. A fresh SQLite file in a temporary directory
unless --database-url names an (empty) PostgreSQL database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from audit import AuditEvent, Recorder, content_digest
from audit.log import AuditLog
from audit.verify import verify_log
from store.database import Database


def _event(n: int) -> AuditEvent:
    return AuditEvent("message.recall", "message", f"m_{n:08d}", actor="alice",
                      before={"author": "alice", "channel": "c_bench", "content_sha256": content_digest(str(n)),
                              "files": []}, after={"deleted": True, "deleted_by": "alice"})


async def run(rows: int, url: str | None, data_dir: Path) -> None:
    db = Database.for_config(url, data_dir)
    await db.open()
    recorder = Recorder.on(db)
    try:
        one = 500
        start = time.perf_counter()
        for n in range(one):
            await recorder.record(_event(n))
        sequential = (time.perf_counter() - start) / one * 1e6
        print(f"append, one at a time:  {sequential:8.0f} µs/event ({one} events, a commit each)")

        done, batch = one, 1000
        start = time.perf_counter()
        while done < rows:
            size = min(batch, rows - done)
            await asyncio.gather(*(recorder.record(_event(done + k)) for k in range(size)))
            done += size
        concurrent = (time.perf_counter() - start) / max(1, rows - one) * 1e6
        print(f"append, {batch} at once:   {concurrent:8.0f} µs/event ({rows - one} events, grouped commits)")

        start = time.perf_counter()
        verdict = await verify_log(AuditLog(db))
        took = time.perf_counter() - start
        assert verdict.ok and verdict.rows == rows, verdict
        print(f"verify {rows} rows:      {took:8.2f} s ({took / rows * 1e6:.1f} µs/row)")
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.rows, args.database_url, Path(tmp)))


if __name__ == "__main__":
    main()
