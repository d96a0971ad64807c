"""Governance per organisation (#10): the audit log, usage statistics, legal holds, retention and integrations
(webhooks, bots, slash commands, scheduled posts) of two organisations on one real server. Each organisation's
admins read and act on their own only; the other's is absent or 404, and never touched.

The two organisations are those of tests/identity/test_organisations.py (its `open_world`: acme.test and
globex.test, each with an owner, a member, a channel "general" with a message and a file, and a meeting)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from audit.appkeys import AUDIT
from audit.event import AuditEvent
from audit.log import AuditLog
from audit.verify import verify_log
from chat.web import CHAT_API
from identity.appkeys import DATABASE
from stats.rollup import roll_up_day
from tests.conftest import server_config
from tests.identity.test_organisations import Client, Org, open_world
from tests.integrations.hooks_helpers import Receiver

World = tuple[Client, dict[str, Org]]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    # Outgoing hooks and slash commands call a receiver on loopback.
    async with open_world(server_config(tmp_path / "data", hooks_allow_private=True)) as made:
        yield made


def events(ndjson: bytes) -> list[dict[str, Any]]:
    return [json.loads(line)["event"] for line in ndjson.decode().splitlines() if line]


async def test_each_organisation_reads_its_own_audit_log_and_the_chain_stays_whole(world: World) -> None:
    client, orgs = world
    server = client.server
    seen: dict[str, list[dict[str, Any]]] = {}
    for name, org in orgs.items():
        seen[name] = events(await client.call("GET", "/v1/audit", org.host, org.token, 200))
        assert seen[name] and {e["org_id"] for e in seen[name]} == {name}
        kinds = {(e["event"], e["object"]["id"]) for e in seen[name]}
        assert ("user.create", org.owner) in kinds and ("user.create", f"{name}-bob") in kinds
        assert ("channel.create", org.channel) in kinds and ("meeting.start", org.meeting) in kinds
        # The organisation's admin API key reads the same log (and, first, its own user's making); CSV too.
        keyed = events(await client.call("GET", "/v1/audit", org.host, org.key, 200))
        assert keyed[:len(seen[name])] == seen[name] and {e["org_id"] for e in keyed} == {name}
        seen[name] = keyed
        csv = (await client.call("GET", "/v1/audit?format=csv", org.host, org.token, 200)).decode()
        assert f",{name}," in csv
    # An event recorded outside any request (the command line, a job) is the organisation of the user it names.
    recorder = server.app[AUDIT]
    await recorder.record(AuditEvent("user.deactivate", "user", "acme-bob", after={"active": False}))
    await recorder.record(AuditEvent("user.update", "user", "nobody-at-all"))
    acme_now = events(await client.call("GET", "/v1/audit", orgs["acme"].host, orgs["acme"].token, 200))
    assert [e["object"]["id"] for e in acme_now if e["event"] == "user.deactivate"] == ["acme-bob"]
    seen["acme"] = acme_now
    acme_ids = {e["object"]["id"] for e in seen["acme"]}
    assert not acme_ids & {e["object"]["id"] for e in seen["globex"]}
    # The default organisation (every other Host, the server's key) sees neither's events.
    default = events(await client.call("GET", "/v1/audit", None, server.api_key, 200))
    assert {e["org_id"] for e in default} <= {"default"}
    assert "nobody-at-all" in {e["object"]["id"] for e in default}  # no such user: the server's own
    assert not {e["object"]["id"] for e in default} & (acme_ids | {o.channel for o in orgs.values()})
    # Another organisation's credential is not there at all.
    await client.call("GET", "/v1/audit", orgs["globex"].host, orgs["acme"].token, 404)
    # One chain for the whole server: verify walks every organisation's rows together.
    verdict = await verify_log(AuditLog(server.app[DATABASE]))
    assert verdict.ok and verdict.rows == len(default) + len(seen["acme"]) + len(seen["globex"])


def _today(series: dict[str, Any], metric: str, dimension: str = "") -> float:
    return float(series["metrics"][metric][dimension][series["days"].index(_utc_today())])


def _in_an_hour() -> str:
    return datetime.fromtimestamp(time.time() + 3600, timezone.utc).isoformat()


def _utc_today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


async def test_usage_statistics_are_rolled_up_and_read_per_organisation(world: World) -> None:
    client, orgs = world
    server = client.server
    acme, globex = orgs["acme"], orgs["globex"]
    for n in range(3):  # acme posts three more than globex
        await client.call("POST", "/v1/messages", acme.host, acme.token, 201, json={"to": "general", "content": f"x{n}"})
    await roll_up_day(server.app[DATABASE], datetime.now(timezone.utc).date())
    mine = {name: await client.call("GET", "/v1/admin/stats", org.host, org.token, 200) for name, org in orgs.items()}
    assert _today(mine["acme"], "messages") == _today(mine["globex"], "messages") + 3
    for name, org in orgs.items():
        assert _today(mine[name], "files") == 1
        assert _today(mine[name], "file_bytes") == len(f"{name} quarterly numbers")
        assert _today(mine[name], "meetings") == 1
        assert _today(mine[name], "active_users", "dau") == 1  # the owner; bob did nothing
        # The organisation's admin key reads the same rows (CSV as well).
        csv = (await client.call("GET", "/v1/admin/stats?format=csv", org.host, org.key, 200)).decode()
        assert f"{_utc_today()},file_bytes,,{len(f'{name} quarterly numbers')}" in csv
    default = await client.call("GET", "/v1/admin/stats", None, server.api_key, 200)
    assert _today(default, "files") == 0 and _today(default, "meetings") == 0 and _today(default, "messages") == 0


async def test_legal_holds_are_each_organisations_own(world: World) -> None:
    client, orgs = world
    acme, globex = orgs["acme"], orgs["globex"]
    hold = await client.call("POST", "/v1/admin/legal_holds", acme.host, acme.token, 201,
                             json={"name": "acme case", "users": ["acme-bob"], "channels": ["general"]})
    assert hold["channels"] == [acme.channel]
    # A hold names only its own organisation's people and channels.
    err = await client.call("POST", "/v1/admin/legal_holds", acme.host, acme.token, 404,
                            json={"name": "reach", "users": ["globex-bob"]})
    assert err["error"]["code"] == "user_not_found"
    err = await client.call("POST", "/v1/admin/legal_holds", acme.host, acme.token, 404,
                            json={"name": "reach", "channels": [globex.channel]})
    assert err["error"]["code"] == "channel_not_found"
    # globex neither lists nor reads nor lifts acme's hold.
    assert (await client.call("GET", "/v1/admin/legal_holds", globex.host, globex.token, 200))["holds"] == []
    for method, path in (("GET", f"/v1/admin/legal_holds/{hold['id']}/messages"),
                         ("DELETE", f"/v1/admin/legal_holds/{hold['id']}")):
        err = await client.call(method, path, globex.host, globex.token, 404)
        assert err["error"]["code"] == "legal_hold_not_found"
    listed = await client.call("GET", "/v1/admin/legal_holds", acme.host, acme.token, 200)
    assert [h["id"] for h in listed["holds"]] == [hold["id"]] and listed["holds"][0]["active"]
    export = (await client.call("GET", f"/v1/admin/legal_holds/{hold['id']}/messages", acme.host, acme.token,
                                200)).decode()
    assert "zebracorn plan of acme" in export and "globex" not in export
    await client.call("DELETE", f"/v1/admin/legal_holds/{hold['id']}", acme.host, acme.token, 200)


async def test_retention_of_one_organisation_leaves_the_others_messages(world: World) -> None:
    client, orgs = world
    acme, globex = orgs["acme"], orgs["globex"]
    retention = client.server.app[CHAT_API].retention
    assert retention is not None
    # globex holds its own channel; acme's run must not care (and globex's hold keeps nothing of acme's).
    await client.call("POST", "/v1/admin/legal_holds", globex.host, globex.token, 201,
                      json={"name": "globex case", "channels": ["general"]})
    later = time.time() + 400 * 86400  # past both organisations' policy (183 days)
    report = await retention.run(now=later, org="acme")
    assert report.messages >= 1 and report.held_back == 0 and report.files == 1
    await client.call("GET", f"/v1/messages/{acme.message}", acme.host, acme.token, 404)
    assert (await client.call("GET", f"/v1/messages/{globex.message}", globex.host, globex.token, 200))["id"] == \
        globex.message
    assert await client.call("GET", f"/v1/files/{globex.file}", globex.host, globex.token, 200) == \
        b"globex quarterly numbers"
    # The daily job runs every organisation under its own policy: globex keeps messages forever now.
    await client.call("PATCH", "/v1/org", globex.host, globex.token, 200, json={"retention_days": 0})
    holds = (await client.call("GET", "/v1/admin/legal_holds", globex.host, globex.token, 200))["holds"]
    await client.call("DELETE", f"/v1/admin/legal_holds/{holds[0]['id']}", globex.host, globex.token, 200)
    await retention.run(now=later)
    assert (await client.call("GET", f"/v1/messages/{globex.message}", globex.host, globex.token, 200))["id"] == \
        globex.message
    # A run over HTTP is the caller's organisation's, and its audit event is in that organisation's log.
    ran = await client.call("POST", "/v1/admin/retention/run", globex.host, globex.token, 200)
    assert ran["messages"] == 0
    logged = events(await client.call("GET", "/v1/audit?event=retention.run", globex.host, globex.token, 200))
    assert logged and {e["object"]["id"] for e in logged} == {"globex"}
    acme_runs = events(await client.call("GET", "/v1/audit?event=retention.run", acme.host, acme.token, 200))
    assert {e["object"]["id"] for e in acme_runs} == {"acme"} and len(acme_runs) == 2


async def test_an_incoming_webhook_posts_only_into_its_own_organisation(world: World) -> None:
    client, orgs = world
    acme, globex = orgs["acme"], orgs["globex"]
    hook = await client.call("POST", "/v1/hooks/incoming", globex.host, globex.token, 201,
                             json={"channel": "general", "name": "ci"})
    path = hook["url"].removeprefix(f"http://{globex.host}")
    assert path.startswith("/v1/hooks/incoming/")  # the URL is globex's Host
    assert await client.call("POST", path, globex.host, None, 200, json={"text": "build green"}) == b"ok"
    got = await client.call("GET", f"/v1/channels/{globex.channel}/messages", globex.host, globex.token, 200)
    assert got["messages"][-1]["content"] == "build green"
    # The same URL at acme's Host is not there; a globex hook into acme's channel is refused when made.
    err = await client.call("POST", path, acme.host, None, 404, json={"text": "sneak"})
    assert err["error"]["code"] == "hook_not_found"
    err = await client.call("POST", "/v1/hooks/incoming", globex.host, globex.token, 404,
                            json={"channel": acme.channel, "name": "sneak"})
    assert err["error"]["code"] == "channel_not_found"
    acme_msgs = await client.call("GET", f"/v1/channels/{acme.channel}/messages", acme.host, acme.token, 200)
    assert all(m["content"] not in ("build green", "sneak") for m in acme_msgs["messages"])
    # acme's admins neither list, read nor delete globex's hook.
    assert (await client.call("GET", "/v1/hooks", acme.host, acme.token, 200))["hooks"] == []
    for method in ("GET", "DELETE"):
        err = await client.call(method, f"/v1/hooks/{hook['id']}", acme.host, acme.token, 404)
        assert err["error"]["code"] == "hook_not_found"
    listed = await client.call("GET", "/v1/hooks", globex.host, globex.token, 200)
    assert [h["id"] for h in listed["hooks"]] == [hook["id"]]


async def test_an_outgoing_webhook_hears_only_its_own_organisation(world: World) -> None:
    client, orgs = world
    acme, globex = orgs["acme"], orgs["globex"]

    async def ok(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response({})

    async with Receiver(ok) as receiver:
        await client.call("POST", "/v1/hooks/outgoing", acme.host, acme.token, 201,
                          json={"name": "zapper", "url": receiver.url, "trigger_words": ["zap"]})
        await client.call("POST", "/v1/messages", globex.host, globex.token, 201,
                          json={"to": "general", "content": "zap from globex"})
        await client.call("POST", "/v1/messages", acme.host, acme.token, 201,
                          json={"to": "general", "content": "zap from acme"})
        await asyncio.wait_for(receiver.arrived.wait(), 10)
        await asyncio.sleep(0.5)  # globex's message was posted first: it would have arrived by now
    assert len(receiver.seen) == 1
    payload = json.loads(receiver.seen[0].body)
    assert (payload["text"], payload["org"], payload["channel_id"]) == ("zap from acme", "acme", acme.channel)


async def test_bots_commands_and_scheduled_posts_are_each_organisations_own(world: World) -> None:
    client, orgs = world
    acme, globex = orgs["acme"], orgs["globex"]
    bot = await client.call("POST", "/v1/bots", acme.host, acme.token, 201, json={"login": "acme-helper"})
    me = await client.call("GET", "/v1/me", acme.host, bot["key"], 200)
    assert (me["login"], me["org"]) == ("acme-helper", "acme")
    await client.call("GET", "/v1/me", globex.host, bot["key"], 404)  # its key is acme's
    assert [b["login"] for b in (await client.call("GET", "/v1/bots", acme.host, acme.token, 200))["bots"]] == \
        ["acme-helper"]
    assert (await client.call("GET", "/v1/bots", globex.host, globex.token, 200))["bots"] == []
    # Both organisations may have /deploy; each sees and removes only its own.
    made = {}
    for name, org in orgs.items():
        made[name] = await client.call("POST", "/v1/commands", org.host, org.token, 201,
                                       json={"trigger": "deploy", "url": "http://127.0.0.1:9/deploy"})
        listed = await client.call("GET", "/v1/commands", org.host, org.token, 200)
        assert [c["id"] for c in listed["commands"]] == [made[name]["id"]]
    err = await client.call("DELETE", f"/v1/commands/{made['globex']['id']}", acme.host, acme.token, 404)
    assert err["error"]["code"] == "command_not_found"
    # A scheduled post of globex is not acme's to see or cancel (acme's owner is an admin).
    post = await client.call("POST", "/v1/scheduled_posts", globex.host, globex.token, 201,
                             json={"channel": "general", "text": "weekly", "at": _in_an_hour()})
    assert (await client.call("GET", "/v1/scheduled_posts", acme.host, acme.token, 200))["scheduled_posts"] == []
    await client.call("GET", f"/v1/scheduled_posts/{post['id']}", acme.host, acme.token, 404)
    await client.call("DELETE", f"/v1/scheduled_posts/{post['id']}", acme.host, acme.token, 404)
    mine = await client.call("GET", "/v1/scheduled_posts", globex.host, globex.token, 200)
    assert [p["id"] for p in mine["scheduled_posts"]] == [post["id"]]
