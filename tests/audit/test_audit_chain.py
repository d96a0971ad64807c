"""The chain on both backends: processes appending at once never fork it; `convene audit verify` exits 0 while it
is intact and 1, naming the first bad row, once a row is edited, deleted or moved (changed straight in the
database, as an intruder with database access would)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from store.engine import create_engine, database_url
from tests.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # a dozen `convene` processes
PROCESSES, EACH = 3, 120

APPENDER = """
import asyncio, sys
from pathlib import Path
from audit import AuditEvent, Recorder
from store.database import Database

async def main(data_dir, url, tag, n):
    db = Database.for_config(url or None, Path(data_dir))
    await db.open()
    recorder = Recorder.on(db)
    try:
        # Half one at a time (each its own transaction), half at once (grouped in the writer's transactions).
        for i in range(n // 2):
            await recorder.record(AuditEvent("test.append", "thing", f"{tag}-{i}", actor=tag))
        await asyncio.gather(*(recorder.record(AuditEvent("test.append", "thing", f"{tag}-{i}", actor=tag,
                                                          after={"n": i, "text": "héllo 你好"}))
                               for i in range(n // 2, n)))
    finally:
        await db.close()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


@pytest.fixture(params=["sqlite", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    pg: PostgresServer | None = request.getfixturevalue("postgres") if request.param == "postgres" else None
    return tmp_path / "data", pg.create_database() if pg else ""


def verify(where: tuple[Path, str]) -> tuple[int, str]:
    data_dir, url = where
    args = [sys.executable, "-m", "signaling.cli", "audit", "verify", "--data-dir", str(data_dir),
            *(["--database-url", url] if url else [])]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout + out.stderr


async def sql(where: tuple[Path, str], *statements: str, **params: Any) -> list[Any]:
    engine = create_engine(database_url(where[1] or None, where[0]))
    try:
        async with engine.begin() as conn:
            results = [await conn.execute(text(s), params) for s in statements]
            return [r.all() if r.returns_rows else r.rowcount for r in results]
    finally:
        await engine.dispose()


def fill(where: tuple[Path, str]) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(where[0]), where[1], f"p{k}", str(EACH)],
                              cwd=ROOT) for k in range(PROCESSES)]
    assert [p.wait(timeout=180) for p in procs] == [0] * PROCESSES


async def test_concurrent_processes_keep_one_chain_and_verify_names_tampering(where: tuple[Path, str]) -> None:
    fill(where)
    total = PROCESSES * EACH
    code, said = verify(where)
    assert code == 0, said
    assert f"intact: {total} rows" in said
    (seqs,) = await sql(where, "SELECT seq FROM audit_log ORDER BY seq")
    assert [r[0] for r in seqs] == list(range(1, total + 1))

    # An edited event.
    (original,) = await sql(where, "SELECT event FROM audit_log WHERE seq = 7")
    await sql(where, "UPDATE audit_log SET event = replace(event, 'thing', 'other') WHERE seq = 7")
    code, said = verify(where)
    assert code == 1 and "row 7:" in said and "edited" in said, said
    await sql(where, "UPDATE audit_log SET event = :e WHERE seq = 7", e=original[0][0])
    code, said = verify(where)
    assert code == 0, said

    # A filter column edited to hide a row from GET /v1/audit?actor=.
    (actor,) = await sql(where, "SELECT actor FROM audit_log WHERE seq = 9")
    await sql(where, "UPDATE audit_log SET actor = 'nobody' WHERE seq = 9")
    code, said = verify(where)
    assert code == 1 and "row 9:" in said, said
    await sql(where, "UPDATE audit_log SET actor = :a WHERE seq = 9", a=actor[0][0])
    assert verify(where)[0] == 0

    # A deleted row in the middle.
    (saved,) = await sql(where, "SELECT seq, org_id, at, event_type, actor, event, prev_hash, hash FROM audit_log "
                                "WHERE seq = 12")
    await sql(where, "DELETE FROM audit_log WHERE seq = 12")
    code, said = verify(where)
    assert code == 1 and "row 12 is missing" in said, said
    restore = ("INSERT INTO audit_log (seq, org_id, at, event_type, actor, event, prev_hash, hash) "
               "VALUES (:s, :o, :a, :t, :ac, :e, :p, :h)")
    row = dict(zip(("s", "o", "a", "t", "ac", "e", "p", "h"), saved[0]))
    await sql(where, restore, **row)
    assert verify(where)[0] == 0

    # Two rows swapped (their seqs exchanged).
    swap = ("UPDATE audit_log SET seq = -1 WHERE seq = 20", "UPDATE audit_log SET seq = 20 WHERE seq = 21",
            "UPDATE audit_log SET seq = 21 WHERE seq = -1")
    await sql(where, *swap)
    code, said = verify(where)
    assert code == 1 and "row 20:" in said and "reordered" in said, said
    await sql(where, *swap)
    assert verify(where)[0] == 0

    # The last row deleted: the counter says more were written.
    (last,) = await sql(where, f"SELECT seq, org_id, at, event_type, actor, event, prev_hash, hash FROM audit_log "
                               f"WHERE seq = {total}")
    await sql(where, f"DELETE FROM audit_log WHERE seq = {total}")
    code, said = verify(where)
    assert code == 1 and f"row {total}" in said and "missing" in said, said
    await sql(where, restore, **dict(zip(("s", "o", "a", "t", "ac", "e", "p", "h"), last[0])))
    code, said = verify(where)
    assert code == 0, said
