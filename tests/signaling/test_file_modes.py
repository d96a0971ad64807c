"""The data dir is the server user's alone: 0700, and every file in it 0600 (issue #8).

It holds the token secret, API key hashes, chat, uploads, transcripts and the workers' pipe addresses;
another local account reading any of them could mint tokens or listen in. Checked with `stat` on a real
server's data dir after a meeting, a chat message, an upload and an API key exist.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import running_server, server_config
from tests.sfu.peers import join
from transcribe.web import TRANSCRIBE
from transcribe.transcript import Transcript


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common default, so modes come from the server, not from a strict test environment."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def loose_modes(data: Path) -> list[str]:
    """Every entry under `data` (and `data` itself) whose mode is not 0700 (dirs) / 0600 (files)."""
    wrong = []
    for path in [data, *sorted(data.rglob("*"))]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir() and mode != 0o700 or path.is_file() and mode != 0o600:
            wrong.append(f"{path.relative_to(data.parent)} {oct(mode)}")
    return wrong


async def test_server_data_is_private_after_a_meeting_chat_upload_and_api_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_server(server_config(data, worker_id="w1")) as server:  # running_server made an API key
        peer = await join(server.url, "standup", await server.token("standup", "alice"))
        try:
            headers = {"Authorization": f"Bearer {server.api_key}"}
            async with aiohttp.ClientSession(headers=headers) as http:
                r = await http.post(f"{server.url}/v1/channels", json={"name": "general", "kind": "team"})
                assert r.status == 201, await r.text()
                form = aiohttp.FormData()
                form.add_field("file", b"minutes of the standup\n", filename="notes.txt", content_type="text/plain")
                r = await http.post(f"{server.url}/v1/files", data=form)
                assert r.status == 201, await r.text()
                file_id = (await r.json())["file"]["id"]
                r = await http.post(f"{server.url}/v1/messages",
                                    json={"to": "general", "content": "see the notes",
                                          "attachments": [{"type": "file", "file_id": file_id}]})
                assert r.status == 201, await r.text()
            # The transcript a meeting leaves, written by the store the transcriber uses (a table in convene.db).
            await server.app[TRANSCRIBE].store.asave(Transcript("standup", "m1", time.time()))
        finally:
            await peer.close()
        made = {p.name for p in data.rglob("*")}
        # One store file (keys, meetings, the workers' directory, chat and transcripts are tables in it), the secret.
        assert {"token_secret", "convene.db"} <= made and "transcripts" not in made
        assert any(len(p.name) == 64 for p in (data / "chat" / "files").rglob("*") if p.is_file())  # the upload
        assert any(n.endswith("-wal") for n in made)  # SQLite's side files are covered too
        assert loose_modes(data) == []


async def test_startup_tightens_a_data_dir_an_older_version_left_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_server(server_config(data, worker_id="w1")):
        pass
    for path in [data, *data.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    async with running_server(server_config(data, worker_id="w1")):
        assert loose_modes(data) == []
