"""Upgrading a data dir made by the release before the SQL store (commit 114e094; made by
tests/fixtures/make_datadir_114e094.py with that release's own code): the new server imports it on start, on
SQLite and on PostgreSQL, and everything is there through the REST API: messages by id and in order (edits,
reactions, the thread, the task, the file), search, the API key, the file and the transcript. The old files are
renamed, and a second start imports nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from identity.appkeys import DATABASE
from signaling.legacy_import import import_legacy
from tests.conftest import running_server, server_config

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "datadir-114e094"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres").create_database() if request.param == "postgres" else None


async def get(http: aiohttp.ClientSession, url: str, key: str, expect: int = 200) -> Any:
    async with http.get(url, headers={"Authorization": f"Bearer {key}"}) as r:
        body = await r.json() if r.content_type == "application/json" else await r.text()
        assert r.status == expect, (url, r.status, body)
        return body


async def test_a_114e094_data_dir_is_imported_once_and_served(tmp_path: Path, database_url: str | None) -> None:
    expected = json.loads((FIXTURE / "expected.json").read_text())
    data = tmp_path / "data"
    shutil.copytree(FIXTURE / "data", data)
    key = expected["key"]  # the old release's API key, kept as its hash
    ids = expected["message_ids"]
    config = server_config(data, database_url=database_url)

    async with running_server(config) as server, aiohttp.ClientSession() as http:
        base = server.url
        assert (await get(http, f"{base}/v1/me", key))["user"]["login"] == "ops"
        await get(http, f"{base}/v1/rooms", key)  # an admin key on the rooms API too

        history = await get(http, f"{base}/v1/channels/{expected['channel']}/messages?limit=50", key)
        got = history["messages"]
        assert [m["id"] for m in got] == ids
        assert [m["ord"] for m in got] == sorted(m["ord"] for m in got)
        by_id = {m["id"]: m for m in got}
        first = by_id[expected["first"]]
        assert first["content"] == "the deployment checklist is ready for review" and first.get("edited_at")
        assert by_id[expected["reacted"]]["reactions"] == {"👍": ["ops"]}
        assert by_id[expected["reply"]]["thread"] == expected["first"]
        assert by_id[expected["task"]]["task"]["title"] == "write the release notes"
        assert by_id[expected["task"]]["task"]["assignee"] == "alice"
        assert by_id[expected["with_file"]]["attachments"][0]["file_id"] == expected["file_id"]
        for message_id in ids:
            assert (await get(http, f"{base}/v1/messages/{message_id}", key))["id"] == message_id

        # Search finds them: an English prefix, an inflection, Chinese.
        for q, want in (("deploy", expected["first"]), ("approve", expected["reacted"]),
                        ("周报", expected["chinese"])):
            hits = await get(http, f"{base}/v1/search?q={q}", key)
            assert want in [m["id"] for m in hits["messages"]], (q, hits)

        async with http.get(f"{base}/v1/files/{expected['file_id']}",
                            headers={"Authorization": f"Bearer {key}"}) as r:
            assert r.status == 200 and await r.read() == b"release notes draft\n"

        t = expected["transcript"]
        vtt = await get(http, f"{base}/v1/rooms/{t['room']}/transcript?meeting={t['meeting_id']}&format=vtt", key)
        assert t["text"] in vtt

        # New writes go after the imported ones.
        posted = await (await http.post(f"{base}/v1/messages", json={"to": expected["channel"], "content": "after"},
                                        headers={"Authorization": f"Bearer {key}"})).json()
        assert posted["ord"] > max(m["ord"] for m in got)

    # Renamed: a second start (and `convene db upgrade`) imports nothing, and nothing is doubled.
    assert not (data / "chat" / "chat.db").exists() and (data / "chat" / "chat.db.imported").exists()
    assert not (data / "keys.db").exists() and (data / "keys.db.imported").exists()
    assert not (data / "transcripts").exists() and (data / "transcripts.imported").is_dir()
    async with running_server(config) as server, aiohttp.ClientSession() as http:
        assert not await import_legacy(server.app[DATABASE], data)
        history = await get(http, f"{server.url}/v1/channels/{expected['channel']}/messages?limit=50", key)
        assert [m["id"] for m in history["messages"]] == [*ids, posted["id"]]


def test_convene_db_upgrade_imports_a_114e094_data_dir_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE / "data", data)

    def db_upgrade() -> str:
        done = subprocess.run([sys.executable, "-m", "signaling.cli", "db", "upgrade", "--data-dir", str(data)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = db_upgrade()
    assert "imported 3 users, 1 channels, 6 messages, 1 files, 1 API keys, 0 meetings, 1 transcripts" in first
    assert "imported" not in db_upgrade()  # the old files were renamed: nothing twice
