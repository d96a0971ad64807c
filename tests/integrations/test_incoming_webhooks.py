"""Incoming webhooks on a real server: Slack payloads (JSON, form `payload=`, attachments, blocks) become posts by
the hook's bot; bad payloads get Slack's reasons; the URL is the only credential, bound to one channel, kept
only as a hash and never written to the access log; a flood is cut off with 429."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from chat.web import CHAT
from identity.appkeys import API_KEYS, DATABASE
from store.schema import hooks
from tests.conftest import RunningServer, running_server, server_config
from tests.integrations.hooks_helpers import call, messages, team_channel


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(server_config(tmp_path / "data")) as running:
        yield running


async def make_hook(server: RunningServer, channel: str, name: str = "Alerts") -> dict[str, Any]:
    status, hook = await call(server, "POST", "/v1/hooks/incoming", {"channel": channel, "name": name})
    assert status == 201, hook
    return hook


async def send(url: str, **kwargs: Any) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, **kwargs) as r:
            return r.status, r.content_type, await r.text()


async def test_a_json_payload_is_posted_by_the_hooks_bot_and_answered_ok(server: RunningServer) -> None:
    channel = await team_channel(server, "alerts")
    hook = await make_hook(server, channel)
    assert hook["url"].startswith(f"{server.url}/v1/hooks/incoming/{hook['id']}/")
    status, ctype, text = await send(hook["url"], json={"text": "Build <https://ci.example/42|#42> passed"})
    assert (status, ctype, text) == (200, "text/plain", "ok")
    [posted] = await messages(server, channel)
    assert posted["author"] == hook["bot"] and posted["content"] == "Build [#42](https://ci.example/42) passed"
    bot = await server.app[CHAT].store.get_user(hook["bot"])
    assert bot is not None and (bot.role, bot.name) == ("bot", "Alerts")


async def test_a_form_payload_with_attachments_and_a_username_renders_readable_markdown(
        server: RunningServer) -> None:
    channel = await team_channel(server, "deploys")
    hook = await make_hook(server, channel, "Deploy bot")
    payload = {"username": "Jenkins", "icon_emoji": ":robot:", "attachments": [{
        "fallback": "Deploy finished", "pretext": "Deploy of *api* finished", "title": "Release 1.4.2",
        "title_link": "https://ci.example/releases/142", "text": "All checks green",
        "fields": [{"title": "Environment", "value": "production", "short": True},
                   {"title": "Duration", "value": "3m 12s"}], "footer": "ci.example"}]}
    status, _, text = await send(hook["url"], data={"payload": json.dumps(payload)})
    assert (status, text) == (200, "ok")
    [posted] = await messages(server, channel)
    content = posted["content"]
    assert content.startswith("**Jenkins** · _via Deploy bot_\n"), content  # the username shown, author the bot
    assert posted["author"] == hook["bot"]
    for line in ("Deploy of *api* finished", "**[Release 1.4.2](https://ci.example/releases/142)**",
                 "All checks green", "**Environment**: production", "**Duration**: 3m 12s", "_ci.example_"):
        assert line in content.splitlines(), (line, content)


async def test_blocks_are_the_message_and_text_only_their_fallback(server: RunningServer) -> None:
    channel = await team_channel(server, "blocks")
    hook = await make_hook(server, channel)
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "Incident 7"}},
              {"type": "section", "text": {"type": "mrkdwn", "text": "Database *latency* high"},
               "fields": [{"type": "mrkdwn", "text": "*Severity*: 2"}]},
              {"type": "divider"},
              {"type": "context", "elements": [{"type": "mrkdwn", "text": "<https://status.example|status page>"}]}]
    status, _, _ = await send(hook["url"], json={"text": "fallback only", "blocks": blocks})
    assert status == 200
    [posted] = await messages(server, channel)
    assert posted["content"] == ("### Incident 7\n\nDatabase *latency* high\n\n- *Severity*: 2\n\n---\n\n"
                                 "_[status page](https://status.example)_")


@pytest.mark.parametrize("kwargs, code", [
    ({"json": {"username": "x"}}, "no_text"),
    ({"json": {"text": ""}}, "no_text"),
    ({"json": {"attachments": [{}]}}, "no_text"),
    ({"data": b"not json", "headers": {"Content-Type": "application/json"}}, "invalid_payload"),
    ({"data": {"text": "a form without payload"}}, "invalid_payload"),
    ({"json": ["a", "list"]}, "invalid_payload"),
    ({"json": {"text": 5}}, "invalid_payload"),
    ({"json": {"text": "x", "attachments": "nope"}}, "invalid_payload"),
    ({"json": {"text": "x", "surely_not_a_field": 1}}, "invalid_payload"),
])
async def test_bad_payloads_get_slacks_reasons_and_post_nothing(server: RunningServer, kwargs: dict[str, Any],
                                                                 code: str) -> None:
    channel = await team_channel(server, "bad")
    hook = await make_hook(server, channel)
    status, ctype, text = await send(hook["url"], **kwargs)
    assert status == 400 and ctype == "application/json" and json.loads(text)["error"]["code"] == code, text
    assert await messages(server, channel) == []


async def test_the_url_is_the_credential_bound_to_its_channel_and_kept_as_a_hash(
        server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    channel = await team_channel(server, "bound")
    other = await team_channel(server, "elsewhere")
    hook = await make_hook(server, channel)
    secret = hook["url"].rsplit("/", 1)[1]
    # A wrong secret or id is as unknown as no hook; the payload's `channel` does not move the post.
    assert (await send(hook["url"][:-2] + "xx", json={"text": "x"}))[0] == 404
    assert (await send(f"{server.url}/v1/hooks/incoming/nope/{secret}", json={"text": "x"}))[0] == 404
    assert (await send(hook["url"], json={"text": "here", "channel": "#elsewhere"}))[0] == 200
    assert [m["content"] for m in await messages(server, channel)] == ["here"]
    assert await messages(server, other) == []
    # The store keeps the secret's hash only; the API never shows it again.
    async with server.app[DATABASE].read() as conn:
        row = (await conn.execute(select(hooks).where(hooks.c.id == hook["id"]))).one()
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in json.dumps([str(v) for v in row])
    _, listed = await call(server, "GET", "/v1/hooks?kind=incoming")
    assert [h["id"] for h in listed["hooks"]] == [hook["id"]] and secret not in json.dumps(listed)
    # The access log has the request, not the secret.
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any(f"/v1/hooks/incoming/{hook['id']}/[redacted]" in line for line in lines), lines
    assert not any(secret in line for line in lines)


async def test_making_hooks_takes_manage_integrations_and_deleting_one_ends_its_url(server: RunningServer) -> None:
    channel = await team_channel(server, "managed")
    _, member_key = await server.app[API_KEYS].create("member-key", "member")
    status, body = await call(server, "POST", "/v1/hooks/incoming", {"channel": channel, "name": "x"},
                              key=member_key)
    assert status == 403 and body["error"]["code"] == "not_permitted"
    hook = await make_hook(server, channel)
    status, _ = await call(server, "GET", "/v1/hooks", key=member_key)
    assert status == 403
    status, body = await call(server, "DELETE", f"/v1/hooks/{hook['id']}")
    assert (status, body) == (200, {"id": hook["id"], "deleted": True})
    # Both are in the audit log, by the admin key's user, without the secret.
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {server.api_key}"}) as http:
        async with http.get(f"{server.url}/v1/audit") as r:
            assert r.status == 200
            events = [json.loads(line)["event"] for line in (await r.text()).splitlines() if line]
    audited = [(e["event"], e["object"], e["actor"]["login"]) for e in events if e["event"].startswith("hook.")]
    assert audited == [("hook.create", {"id": hook["id"], "type": "hook"}, "tests"),
                       ("hook.delete", {"id": hook["id"], "type": "hook"}, "tests")], events
    assert hook["url"].rsplit("/", 1)[1] not in json.dumps(events)
    assert (await send(hook["url"], json={"text": "after delete"}))[0] == 404
    assert await messages(server, channel) == []
    # An organisation that gives members the permission lets them make hooks (in channels they are in).
    status, _ = await call(server, "PUT", "/v1/admin/permissions", {"manage_integrations": ["owner", "admin", "member"]})
    assert status == 200
    status, body = await call(server, "POST", "/v1/hooks/incoming", {"channel": channel, "name": "x"},
                              key=member_key)
    assert status == 403 and body["error"]["code"] == "not_a_member"
    await call(server, "POST", f"/v1/channels/{channel}/members", {"add": ["member-key"]})
    status, body = await call(server, "POST", "/v1/hooks/incoming", {"channel": channel, "name": "x"},
                              key=member_key)
    assert status == 201 and body["owner"] == "member-key"


async def test_a_flood_beyond_the_hooks_rate_is_refused_with_429(server: RunningServer) -> None:
    channel = await team_channel(server, "flood")
    hook = await make_hook(server, channel)
    statuses = []
    async with aiohttp.ClientSession() as http:
        for i in range(40):
            async with http.post(hook["url"], json={"text": f"spam {i}"}) as r:
                statuses.append(r.status)
                if r.status == 429:
                    assert (await r.json())["error"]["code"] == "rate_limited" and "Retry-After" in r.headers
    assert statuses[:20] == [200] * 20, statuses
    assert statuses.count(429) >= 15, statuses
    assert len(await messages(server, channel)) == statuses.count(200)


async def test_a_deactivated_owners_hooks_stop(server: RunningServer) -> None:
    status, _ = await call(server, "POST", "/v1/users", {"login": "ops", "role": "admin"})
    assert status in (200, 201)
    status, minted = await call(server, "POST", "/v1/users/ops/tokens", {"ttl": 3600})
    assert status == 201
    ops = minted["token"]
    channel = await team_channel(server, "ops-alerts")
    await call(server, "POST", f"/v1/channels/{channel}/members", {"add": ["ops"]})
    status, hook = await call(server, "POST", "/v1/hooks/incoming", {"channel": channel, "name": "Ops"}, key=ops)
    assert status == 201 and hook["owner"] == "ops"
    status, git = await call(server, "POST", "/v1/hooks/gitlab", {"channel": channel, "name": "Ops git"}, key=ops)
    assert status == 201
    assert (await send(hook["url"], json={"text": "before"}))[0] == 200
    status, _ = await call(server, "POST", "/v1/users/ops/deactivate")
    assert status == 200
    status, _, text = await send(hook["url"], json={"text": "after"})
    assert status == 403 and json.loads(text)["error"]["code"] == "hook_disabled"
    status, _, text = await send(git["url"], json={"object_kind": "push"}, headers={
        "X-Gitlab-Token": git["secret"], "X-Gitlab-Event": "Push Hook"})
    assert status == 403 and json.loads(text)["error"]["code"] == "hook_disabled"
    status, _, _ = await send(git["url"], json={}, headers={"X-Gitlab-Token": "wrong", "X-Gitlab-Event": "Push Hook"})
    assert status == 401  # the credential is checked first: a stranger learns nothing about the owner
    assert [m["content"] for m in await messages(server, channel)] == ["before"]


async def test_hooks_stop_when_their_owner_leaves_the_channel(server: RunningServer) -> None:
    status, _ = await call(server, "POST", "/v1/users", {"login": "ops", "role": "admin"})
    assert status in (200, 201)
    status, minted = await call(server, "POST", "/v1/users/ops/tokens", {"ttl": 3600})
    ops = minted["token"]
    channel = await team_channel(server, "ops-leaving")
    await call(server, "POST", f"/v1/channels/{channel}/members", {"add": ["ops"]})
    status, hook = await call(server, "POST", "/v1/hooks/incoming", {"channel": channel, "name": "Ops"}, key=ops)
    assert status == 201
    status, git = await call(server, "POST", "/v1/hooks/gitlab", {"channel": channel, "name": "Ops git"}, key=ops)
    assert status == 201
    assert (await send(hook["url"], json={"text": "before"}))[0] == 200
    status, _ = await call(server, "POST", f"/v1/channels/{channel}/members", {"remove": ["ops"]})
    assert status == 200
    status, _, text = await send(hook["url"], json={"text": "after"})
    assert status == 403 and json.loads(text)["error"]["code"] == "hook_owner_left", text
    status, _, text = await send(git["url"], json={"object_kind": "push"}, headers={
        "X-Gitlab-Token": git["secret"], "X-Gitlab-Event": "Push Hook"})
    assert status == 403 and json.loads(text)["error"]["code"] == "hook_owner_left", text
    assert [m["content"] for m in await messages(server, channel)] == ["before"]
