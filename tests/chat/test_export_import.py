"""`convene export` then `convene import` into an empty store: a real server answers the same before and after
(users, channels, history with threads, reactions and edits, tasks, files with the same bytes); a second import
creates nothing; both runs are in the audit log (docs/export.md)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from audit.log import AuditLog
from signaling.cli import main as convene
from store.database import Database
from tests.conftest import running_server, server_config

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str, key: str) -> None:
        self.session, self.url, self.key = session, url, key

    async def call(self, method: str, path: str, token: str | None = None, expect: int | None = None,
                   **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token or self.key}"}
        async with self.session.request(method, self.url + path, headers=headers, **kwargs) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.read()
            assert expect is None or resp.status == expect, (method, path, resp.status, body)
            return body

    async def token(self, login: str) -> str:
        return str((await self.call("POST", f"/v1/users/{login}/tokens", json={"ttl": 3600}, expect=201))["token"])


async def fill(c: Client) -> dict[str, str]:
    """People, a team channel, a private group, a DM, a thread, reactions, an edit, a recall, a task and a file."""
    for login, dept in (("alice", "engineering/media"), ("bob", "engineering"), ("carol", "sales")):
        await c.call("POST", "/v1/users", json={"login": login, "department": dept, "name": login.title()}, expect=201)
    await c.call("POST", "/v1/users/carol/deactivate", expect=200)
    alice, bob = await c.token("alice"), await c.token("bob")
    general = (await c.call("POST", "/v1/channels", alice, json={"name": "general", "members": ["bob"],
                                                                 "topic": "all hands"}, expect=201))["id"]
    secret = (await c.call("POST", "/v1/channels", alice, json={"name": "secret", "kind": "group",
                                                                "members": ["bob"]}, expect=201))["id"]
    dm = (await c.call("POST", "/v1/channels", alice, json={"kind": "direct", "members": ["bob"]}, expect=201))["id"]
    root = (await c.call("POST", "/v1/messages", alice, json={"to": general, "content": "release plan?",
                                                              "client_id": "c-1"}, expect=201))["id"]
    await c.call("POST", "/v1/messages", bob, json={"to": general, "content": "friday", "thread": root}, expect=201)
    await c.call("POST", f"/v1/messages/{root}/reactions", bob, json={"emoji": "👍"}, expect=200)
    await c.call("PATCH", f"/v1/messages/{root}", alice, json={"content": "release plan for 2.0?"}, expect=200)
    gone = (await c.call("POST", "/v1/messages", alice, json={"to": general, "content": "oops"}, expect=201))["id"]
    await c.call("DELETE", f"/v1/messages/{gone}", alice, expect=200)
    await c.call("POST", "/v1/messages", alice, json={"to": secret, "type": "task", "task": {
        "title": "write notes", "assignee": "bob", "due": "2030-01-01T09:00:00Z"}}, expect=201)
    await c.call("POST", "/v1/messages", bob, json={"to": dm, "content": "hi @alice"}, expect=201)
    form = aiohttp.FormData()
    form.add_field("file", PNG, filename="diagram.png", content_type="image/png")
    file_id = (await c.call("POST", "/v1/files", alice, data=form, expect=201))["file"]["id"]
    await c.call("POST", "/v1/messages", alice, json={"to": general, "content": "diagram",
                                                      "attachments": [{"file_id": file_id}]}, expect=201)
    return {"general": general, "secret": secret, "dm": dm, "root": root, "file": file_id}


def _drop(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _drop(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_drop(v, keys) for v in value]
    return value


async def answers(c: Client, ids: dict[str, str]) -> dict[str, Any]:
    """What the API says; ord/seq (positions in this store's counter) and read marks are the store's own."""
    alice, bob = await c.token("alice"), await c.token("bob")
    out: dict[str, Any] = {"users": (await c.call("GET", "/v1/users", alice, expect=200))["users"]}
    for who, token in (("alice", alice), ("bob", bob)):
        out[f"channels:{who}"] = sorted((await c.call("GET", "/v1/channels", token, expect=200))["channels"],
                                        key=lambda ch: ch["id"])
    for name in ("general", "secret", "dm"):
        out[f"history:{name}"] = (await c.call("GET", f"/v1/channels/{ids[name]}/messages?limit=500", alice,
                                               expect=200))["messages"]
    out["thread"] = (await c.call("GET", f"/v1/channels/{ids['general']}/messages?thread={ids['root']}", bob,
                                  expect=200))["messages"]
    out["tasks"] = (await c.call("GET", "/v1/tasks?assignee=bob&status=all", bob, expect=200))
    out["file"] = await c.call("GET", f"/v1/files/{ids['file']}", bob, expect=200)
    return _drop(out, {"ord", "seq", "last_read", "unread", "next", "prev", "cursor"})


async def audit_events(data: Path, url: str | None = None) -> list[dict[str, Any]]:
    db = Database.for_config(url, data)
    await db.open()
    try:
        return [json.loads(r.event) async for rows in AuditLog(db).rows() for r in rows]
    finally:
        await db.close()


async def run_cli(*args: str) -> int:
    return await asyncio.to_thread(convene, list(args))  # its own event loop, on a thread


@pytest.mark.parametrize("target", ["sqlite", "postgres"])
async def test_export_then_import_answers_the_same(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   request: pytest.FixtureRequest, target: str) -> None:
    """From SQLite into an empty SQLite, or an empty PostgreSQL."""
    before_dir, after_dir, out = tmp_path / "before", tmp_path / "after", tmp_path / "out" / "convene.jsonl"
    url = request.getfixturevalue("postgres").create_database() if target == "postgres" else None
    to = ["--data-dir", str(after_dir), *(["--database-url", url] if url else [])]
    out.parent.mkdir()
    async with aiohttp.ClientSession() as session:
        async with running_server(server_config(before_dir)) as server:
            c = Client(session, server.url, server.api_key)
            ids = await fill(c)
            before = await answers(c, ids)
        assert await run_cli("export", "--out", str(out), "--data-dir", str(before_dir)) == 0
        printed = capsys.readouterr().out
        assert "messages 6" in printed and "files 1" in printed, printed

        kinds = [json.loads(line)["type"] for line in out.read_text().splitlines()]
        order = ["version", "organisation", "department", "user", "channel", "membership", "message", "task", "file"]
        assert sorted(set(kinds), key=order.index) == order
        assert kinds == sorted(kinds, key=order.index)  # Mattermost's bulk order
        assert (out.parent / "convene.jsonl.files").is_dir()

        assert await run_cli("import", str(out), *to) == 0
        first = capsys.readouterr().out
        assert "messages: 6 created, 0 existing" in first and "files: 1 created" in first, first
        async with running_server(server_config(after_dir, database_url=url)) as server:
            after = await answers(Client(session, server.url, server.api_key), ids)

    before_users = [u for u in before["users"]]
    assert {u["login"] for u in before_users} >= {"alice", "bob", "carol"}
    assert after == before
    assert before["file"] == PNG
    assert [m["content"] for m in before["thread"]][-1] == "friday"

    assert await run_cli("import", str(out), *to) == 0
    second = capsys.readouterr().out
    assert "imported 0 new records" in second and "messages: 0 created, 6 existing" in second, second

    exported = [e for e in await audit_events(before_dir) if e["event"] == "export.run"]
    assert len(exported) == 1 and exported[0]["after"]["messages"] == 6
    imported = [e for e in await audit_events(after_dir, url) if e["event"] == "import.run"]
    assert [e["after"]["messages"]["created"] for e in imported] == [6, 0]
    assert imported[0]["actor"]["credential"] == "cli"


async def test_carol_stays_deactivated_after_import(tmp_path: Path) -> None:
    before_dir, after_dir, out = tmp_path / "before", tmp_path / "after", tmp_path / "x.jsonl"
    async with aiohttp.ClientSession() as session:
        async with running_server(server_config(before_dir)) as server:
            await fill(Client(session, server.url, server.api_key))
        assert await run_cli("export", "--out", str(out), "--data-dir", str(before_dir)) == 0
        assert await run_cli("import", str(out), "--data-dir", str(after_dir)) == 0
        async with running_server(server_config(after_dir)) as server:
            c = Client(session, server.url, server.api_key)
            token = await c.token("carol")  # minted, but carol's account is inactive: refused
            await c.call("GET", "/v1/me", token, expect=401)
            await c.call("GET", "/v1/me", await c.token("alice"), expect=200)


async def test_a_damaged_line_stops_the_import_with_its_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bad.jsonl"
    out.write_text('{"type":"version","version":{"format":"convene-export","version":1}}\n{"type":"user"\nnot json\n')
    assert await run_cli("import", str(out), "--data-dir", str(tmp_path / "d")) == 2
    assert "import_unreadable: line 2" in capsys.readouterr().err
    out.write_text('{"type":"user","user":{"login":"x"}}\n')
    assert await run_cli("import", str(out), "--data-dir", str(tmp_path / "d")) == 2
    assert "not a Convene export" in capsys.readouterr().err
