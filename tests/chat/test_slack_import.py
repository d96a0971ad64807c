"""`convene import --slack EXPORT.zip`: a Slack export built here (users with emails, a public and a private
channel, a DM, a thread, reactions, a file in the zip and one that is not) lands with its threads, files, times
and counts; an author Slack did not list becomes a deactivated placeholder; a second run creates nothing."""

from __future__ import annotations

import asyncio
import json
import zipfile
from pathlib import Path

import aiohttp
import pytest

from chat.slack_import import convert_text, People
from signaling.cli import main as convene
from store.database import Database
from store.schema import chat_users
from tests.chat.test_export_import import Client
from tests.conftest import running_server, server_config

PDF = b"%PDF-1.4\n" + b"quarterly numbers\n" * 200
T0 = "1704186000.000100"


def slack_zip(path: Path) -> None:
    users = [
        {"id": "U1", "name": "alice.w", "profile": {"email": "Alice@Corp.example", "real_name": "Alice W"}},
        {"id": "U2", "name": "bob", "profile": {"email": "bob@corp.example", "real_name": "Bob B", "title": "CFO"}},
        {"id": "U3", "name": "dana", "deleted": True, "profile": {"real_name": "Dana"}},
    ]
    general = [
        {"type": "message", "subtype": "channel_join", "user": "U2", "text": "<@U2> has joined", "ts": "1704185000.000000"},
        {"type": "message", "user": "U1", "ts": T0, "thread_ts": T0, "reply_count": 1,
         "text": "hello <@U2>, see <https://example.com/plan|the plan> &amp; <#C1|general>",
         "reactions": [{"name": "+1", "users": ["U2"], "count": 1}, {"name": "party_parrot", "users": ["U1"], "count": 1}]},
        {"type": "message", "user": "U2", "ts": "1704186060.000200", "thread_ts": T0, "text": "ok",
         "edited": {"user": "U2", "ts": "1704186100.000000"}},
        {"type": "message", "user": "U9", "ts": "1704186120.000300", "text": "ghost writes"},
        {"type": "message", "user": "U2", "ts": "1704186180.000400", "text": "numbers",
         "files": [{"id": "F0REPORT1", "name": "report.pdf", "mimetype": "application/pdf",
                    "url_private": "https://files.slack.com/files-pri/T1-F0REPORT1/report.pdf"}]},
        {"type": "message", "user": "U1", "ts": "1704186240.000500", "text": "old scan",
         "files": [{"id": "F0GONE22", "name": "scan.png", "url_private": "https://files.slack.com/x/scan.png"}]},
    ]
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("users.json", json.dumps(users))
        z.writestr("channels.json", json.dumps([{"id": "C1", "name": "general", "created": 1704000000, "creator": "U1",
                                                 "members": ["U1", "U2"], "topic": {"value": "everything"}}]))
        z.writestr("groups.json", json.dumps([{"id": "G1", "name": "secret-plans", "created": 1704000100,
                                               "creator": "U1", "members": ["U1", "U2", "U3"]}]))
        z.writestr("dms.json", json.dumps([{"id": "D1", "created": 1704000200, "members": ["U1", "U2"]}]))
        z.writestr("general/2024-01-02.json", json.dumps(general))
        z.writestr("secret-plans/2024-01-03.json", json.dumps([
            {"type": "message", "user": "U3", "ts": "1704272400.000100", "text": "<!here> plans"}]))
        z.writestr("D1/2024-01-04.json", json.dumps([{"type": "message", "user": "U2", "ts": "1704358800.000100",
                                                      "text": "psst"}]))
        z.writestr("__uploads/F0REPORT1/report.pdf", PDF)


async def run_cli(*args: str) -> int:
    return await asyncio.to_thread(convene, list(args))


async def seed_alice(data: Path) -> None:
    """A user of ours already, known by the email Slack has (in another case), under another login."""
    db = Database.for_config(None, data)
    await db.open()
    try:
        await db.write(lambda c: c.execute(chat_users.insert().values(
            login="ali", role="member", name="Ali", department="", created_at=1.0, email="alice@corp.example")))
    finally:
        await db.close()


async def test_slack_export_imports_with_threads_files_and_placeholders(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, export = tmp_path / "data", tmp_path / "slack.zip"
    slack_zip(export)
    await seed_alice(data)
    assert await run_cli("import", "--slack", str(export), "--data-dir", str(data)) == 0
    printed = capsys.readouterr().out
    for expected in ("users: 3 created, 1 existing",  # bob, dana, placeholder slack-u9; alice is our ali
                     "channels: 3 created, 0 existing", "messages: 7 created, 0 existing, 1 skipped",
                     "files: 1 created", "files missing: 1"):
        assert expected in printed, printed

    async with aiohttp.ClientSession() as session, running_server(server_config(data)) as server:
        c = Client(session, server.url, server.api_key)
        ali, bob = await c.token("ali"), await c.token("bob")
        channels = {ch["name"]: ch for ch in (await c.call("GET", "/v1/channels", ali, expect=200))["channels"]}
        assert set(channels) == {"general", "secret-plans", "dm:ali:bob"}
        assert (channels["general"]["kind"], channels["secret-plans"]["kind"], channels["dm:ali:bob"]["kind"]) == \
            ("team", "group", "direct")
        assert channels["general"]["topic"] == "everything"
        history = (await c.call("GET", f"/v1/channels/{channels['general']['id']}/messages?limit=100", ali,
                                expect=200))["messages"]
        by_text = {m["content"]: m for m in history}
        hello = by_text.get("hello @bob, see [the plan](https://example.com/plan) & #general")
        assert hello is not None, list(by_text)
        assert hello["author"] == "ali" and hello["created_at"] == float(T0) and hello["mentions"] == ["bob"]
        assert hello["reactions"] == {"👍": ["bob"], ":party_parrot:": ["ali"]}
        assert by_text["ok"]["thread"] == hello["id"] and by_text["ok"]["edited_at"] == 1704186100.0
        assert by_text["ghost writes"]["author"] == "slack-u9"
        attached = by_text["numbers"]["attachments"][0]
        assert await c.call("GET", f"/v1/files/{attached['file_id']}", bob, expect=200) == PDF
        missing = by_text["old scan"]["attachments"][0]
        assert missing.get("file_id") is None and missing["url"].startswith("https://files.slack.com/")
        dm = (await c.call("GET", f"/v1/channels/{channels['dm:ali:bob']['id']}/messages", bob, expect=200))["messages"]
        assert [m["content"] for m in dm] == ["psst"]
        users = {u["login"]: u for u in (await c.call("GET", "/v1/users", ali, expect=200))["users"]}
        assert users["bob"]["email"] == "bob@corp.example" and users["bob"]["title"] == "CFO"
        # Deactivated in Slack, and the placeholder: both refused.
        for login in ("dana", "slack-u9"):
            await c.call("GET", "/v1/me", await c.token(login), expect=401)

    assert await run_cli("import", "--slack", str(export), "--data-dir", str(data)) == 0
    again = capsys.readouterr().out
    assert "imported 0 new records" in again and "messages: 0 created, 7 existing" in again, again


def test_mrkdwn_becomes_markdown() -> None:
    people = People(logins={"U1": "ann"})
    text, mentions = convert_text("<@U1|ann> <!channel> <mailto:a@b.example|a@b.example> <https://x.example> "
                                  "<@U7> &lt;b&gt;", people, {})
    assert text == "@ann @channel [a@b.example](mailto:a@b.example) https://x.example @slack-u7 <b>"
    assert mentions == ("ann", "slack-u7")
    assert people.records[0]["user"]["active"] is False  # the unknown U7 became a placeholder


async def test_not_a_zip_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"nope")
    assert await run_cli("import", "--slack", str(bad), "--data-dir", str(tmp_path / "d")) == 2
    assert "import_unreadable" in capsys.readouterr().err


