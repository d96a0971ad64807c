"""What the operator does with `convene keys` and `convene users` is in the audit log as operator:<os user>,
credential cli, and `convene audit verify` reads the same store."""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
from pathlib import Path

import pytest

from audit.log import AuditLog
from store.database import Database

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # four `convene` processes


def convene(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signaling.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


async def test_operator_commands_are_recorded_and_verified(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert convene("keys", "create", "--name", "ci", "--role", "bot", "--data-dir", data).returncode == 0
    assert convene("users", "add", "zoe", "--data-dir", data).returncode == 0
    assert convene("users", "disable", "zoe", "--data-dir", data).returncode == 0
    db = Database.for_config(None, Path(data))
    await db.open()
    try:
        events = [json.loads(r.event) async for rows in AuditLog(db).rows() for r in rows]
    finally:
        await db.close()
    assert [e["event"] for e in events] == ["api_key.create", "user.create", "user.deactivate"]
    for e in events:
        assert e["actor"] == {"login": f"operator:{getpass.getuser()}", "credential": "cli", "address": "local",
                              "client": "convene-cli"}
    assert events[0]["after"] == {"name": "ci", "role": "bot"}
    verified = convene("audit", "verify", "--data-dir", data)
    assert verified.returncode == 0 and "intact: 3 rows" in verified.stdout
