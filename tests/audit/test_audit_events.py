"""The audit log on a real server: what people and keys do shows up with actor (login, credential, address,
client), object and before/after state; a recall keeps a hash of the content, never the content;
GET /v1/audit streams NDJSON or CSV, filters, and refuses those without read_audit."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

import aiohttp

from audit.chain import GENESIS, chain_hash
from audit.event import canonical_json
from chat.web import CHAT_API
from signaling.appkeys import API_KEYS
from tests.conftest import RunningServer
from tests.sfu.peers import join

UA = "audit-test/1.0"
SECRET_TEXT = "the merger closes on friday"


class Api:
    def __init__(self, server: RunningServer, http: aiohttp.ClientSession) -> None:
        self.server, self.http = server, http

    async def call(self, method: str, path: str, credential: str | None = None, expect: int = 200,
                   **kwargs: Any) -> Any:
        headers = {"User-Agent": UA}
        headers["Authorization"] = f"Bearer {credential or self.server.api_key}"
        async with self.http.request(method, self.server.url + path, headers=headers, **kwargs) as r:
            text = await r.text()
            assert r.status == expect, (method, path, r.status, text)
            if r.content_type == "application/json":
                return json.loads(text)
            return text

    async def audit(self, credential: str | None = None, **params: str) -> list[dict[str, Any]]:
        text = await self.call("GET", "/v1/audit", credential, params=params)
        return [json.loads(line) for line in text.splitlines()]


def only(lines: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line["event"] for line in lines if line["event"]["event"] == event]


async def user_token(api: Api, login: str, role: str = "member") -> str:
    await api.call("POST", "/v1/users", json={"login": login, "role": role}, expect=201)
    return str((await api.call("POST", f"/v1/users/{login}/tokens", json={"ttl": 3600}, expect=201))["token"])


async def test_chat_and_identity_events_are_recorded_with_actor_object_and_state(server: RunningServer) -> None:
    key_id = server.api_key.split("_")[1]
    async with aiohttp.ClientSession() as http:
        api = Api(server, http)
        alice = await user_token(api, "alice")
        bob = await user_token(api, "bob")
        await api.call("PATCH", "/v1/users/bob", json={"role": "admin"})
        channel = await api.call("POST", "/v1/channels", json={"name": "ops", "kind": "team", "members": ["alice"]},
                                 expect=201)
        cid = channel["id"]
        await api.call("POST", f"/v1/channels/{cid}/members", json={"add": ["bob"]})
        await api.call("POST", f"/v1/channels/{cid}/members", json={"remove": ["bob"]})
        await api.call("PATCH", f"/v1/channels/{cid}", json={"topic": "on call"})
        await api.call("PATCH", f"/v1/channels/{cid}", json={"retention_days": 30})
        own = await api.call("POST", "/v1/messages", alice, json={"to": cid, "content": SECRET_TEXT}, expect=201)
        await api.call("DELETE", f"/v1/messages/{own['id']}", alice)
        other = await api.call("POST", "/v1/messages", alice, json={"to": cid, "content": "second"},
                               expect=201)
        await api.call("DELETE", f"/v1/messages/{other['id']}")  # the admin key deletes alice's message
        await api.call("PATCH", "/v1/org", json={"retention_days": 365})
        await api.call("POST", "/v1/users/bob/deactivate")
        extra, _ = await server.app[API_KEYS].create("ci-bot", "bot")
        await api.call("DELETE", f"/v1/keys/{extra.key_id}")

        lines = await api.audit()

    # Every line: its hash chains from the previous, and the event re-serialises to the text that was hashed.
    prev = GENESIS
    for n, line in enumerate(lines, start=1):
        assert line["seq"] == n and line["prev_hash"] == prev
        assert line["hash"] == chain_hash(prev, canonical_json(line["event"]))
        prev = line["hash"]
    assert SECRET_TEXT not in json.dumps(lines)

    by_key = {"login": "tests", "credential": f"key:{key_id}", "address": "127.0.0.1", "client": UA}
    (role,) = only(lines, "user.role")
    assert role["actor"] == by_key and role["object"] == {"type": "user", "id": "bob"}
    assert (role["before"], role["after"]) == ({"role": "member"}, {"role": "admin"})
    (created,) = only(lines, "channel.create")
    assert created["object"] == {"type": "channel", "id": cid}
    assert created["after"] == {"name": "ops", "kind": "team", "topic": "", "members": ["alice", "tests"]}
    assert only(lines, "member.add")[0]["after"] == {"logins": ["bob"]}
    assert only(lines, "member.remove")[0]["before"] == {"logins": ["bob"]}
    (topic,) = only(lines, "channel.topic")
    assert (topic["before"], topic["after"]) == ({"topic": ""}, {"topic": "on call"})
    assert only(lines, "channel.retention")[0]["after"] == {"retention_days": 30}

    (recall,) = only(lines, "message.recall")
    assert recall["actor"]["login"] == "alice" and recall["actor"]["credential"] == "user_token"
    assert recall["object"] == {"type": "message", "id": own["id"]}
    assert recall["before"]["content_sha256"] == hashlib.sha256(SECRET_TEXT.encode()).hexdigest()
    assert recall["after"] == {"deleted": True, "deleted_by": "alice"}
    (deleted,) = only(lines, "message.delete")
    assert deleted["actor"] == by_key and deleted["before"]["author"] == "alice"

    (org,) = only(lines, "org.settings")
    assert org["after"] == {"retention_days": 365} and "retention_days" in org["before"]
    (deactivated,) = only(lines, "user.deactivate")
    assert deactivated["actor"] == by_key and deactivated["object"] == {"type": "user", "id": "bob"}
    assert deactivated["after"]["active"] is False
    assert [e["object"]["id"] for e in only(lines, "user_token.create")] == ["alice", "bob"]
    assert {e["object"]["id"] for e in only(lines, "api_key.create")} >= {key_id, extra.key_id}
    (revoked,) = only(lines, "api_key.revoke")
    assert revoked["actor"] == by_key and revoked["after"]["name"] == "ci-bot"
    assert {e["object"]["id"] for e in only(lines, "user.create")} >= {"alice", "bob"}


async def test_reading_filters_csv_and_refusals(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        api = Api(server, http)
        member = await user_token(api, "mia")
        await user_token(api, "noel")
        everything = await api.audit()
        created = await api.audit(event="user.create")  # the key's own user (made on first use), mia, noel
        assert [e["event"]["object"]["id"] for e in created] == ["tests", "mia", "noel"]
        assert {e["event"]["actor"]["login"] for e in await api.audit(actor="tests")} == {"tests"}
        cut = everything[-1]["event"]["time"]
        later = await api.audit(since=cut)
        assert later and all(e["event"]["time"] >= cut for e in later)
        assert all(e["event"]["time"] < cut for e in await api.audit(until=cut))
        assert await api.audit(event="nothing.happened") == []

        text = await api.call("GET", "/v1/audit", params={"format": "csv", "event": "user.create"})
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["object_id"] for r in rows] == ["tests", "mia", "noel"]
        assert rows[1]["actor"] == "tests" and rows[1]["address"] == "127.0.0.1" and rows[1]["client"] == UA
        assert json.loads(rows[1]["after"])["role"] == "member" and rows[1]["hash"] == created[1]["hash"]

        refused = await api.call("GET", "/v1/audit", member, expect=403)
        assert refused["error"]["code"] == "not_permitted"
        guest = await server.token("aud", "visitor")
        assert (await api.call("GET", "/v1/audit", guest, expect=403))["error"]["code"] == "out_of_scope"
        async with http.get(server.url + "/v1/audit") as r:
            assert r.status == 401
        bad = await api.call("GET", "/v1/audit", params={"since": "yesterday"}, expect=400)
        assert bad["error"]["code"] == "invalid_field"
        await api.call("GET", "/v1/audit", params={"format": "xml"}, expect=400)
        await api.call("GET", "/v1/audit", params={"limit": "3"}, expect=400)


async def test_meeting_start_end_moderation_and_captions_are_recorded(server: RunningServer) -> None:
    mod = await join(server.url, "board", await server.token("board", "boss", moderator=True))
    alice = await join(server.url, "board", await server.token("board", "alice"))
    carol = await join(server.url, "board", await server.token("board", "carol"))
    try:
        await alice.publish(("audio", "audio/opus", "microphone"))
        await mod.client.send({"type": "mute_participant", "participant_id": alice.id})
        await alice.client.wait_for("track_muted")
        await mod.client.send({"type": "set_captions", "enabled": True})
        await mod.client.wait_for("captions")
        await mod.client.send({"type": "remove_participant", "participant_id": carol.id})
        await carol.client.wait_for("removed")
        await mod.client.send({"type": "end_room"})
        await alice.client.wait_for("room_ended")
    finally:
        for p in (mod, alice, carol):
            await p.close()
    async with aiohttp.ClientSession() as http:
        lines = await Api(server, http).audit()
    (start,) = only(lines, "meeting.start")
    meeting_id = start["object"]["id"]
    assert start["after"] == {"room": "board", "guests": True}
    (mute,) = only(lines, "meeting.mute")
    assert mute["actor"]["login"] == "boss" and mute["actor"]["credential"] == "meeting_token"
    assert mute["actor"]["address"] == "127.0.0.1"
    assert mute["object"] == {"type": "participant", "id": "alice"} and mute["after"]["meeting"] == meeting_id
    (captions,) = only(lines, "captions.on")
    assert (captions["before"], captions["after"]) == ({"captions": False}, {"captions": True})
    assert only(lines, "meeting.remove")[0]["object"]["id"] == "carol"
    (end,) = only(lines, "meeting.end")
    assert end["object"]["id"] == meeting_id and end["actor"]["login"] == "boss"
    assert end["after"] == {"reason": "ended by a moderator"}




async def test_a_signed_in_persons_change_names_the_session(server: RunningServer) -> None:
    api_ = server.app[CHAT_API]
    await api_.service.add_user(None, "olga", "admin")
    assert api_.accounts is not None
    await api_.accounts.set_password("olga", "correct horse battery")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"User-Agent": UA}) as http:
        async with http.post(server.url + "/v1/auth/login",
                             json={"login": "olga", "password": "correct horse battery"}) as r:
            csrf = (await r.json())["csrf"]
        async with http.patch(server.url + "/v1/org", json={"recall_window_seconds": 60},
                              headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
        async with http.get(server.url + "/v1/audit", params={"event": "org.settings"}) as r:
            (line,) = [json.loads(t) for t in (await r.text()).splitlines()]
    assert line["event"]["actor"] == {"login": "olga", "credential": "session", "address": "127.0.0.1",
                                      "client": UA}
    assert line["event"]["after"] == {"recall_window_seconds": 60}
