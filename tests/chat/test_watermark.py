"""Watermark (#11) over REST on a real server: GET /v1/me's watermark_text comes from the credential (a sign-in
session, a meeting token) and never from the request; the org and channel settings and who may change them; the
important flag on messages; POST /v1/watermark/tamper records watermark.tamper at most once a minute per person."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import aiohttp

from chat.web import CHAT_API
from tests.conftest import RunningServer

PASSWORD = "correct horse battery"


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


class Api:
    def __init__(self, server: RunningServer, http: aiohttp.ClientSession) -> None:
        self.server, self.http = server, http

    async def call(self, method: str, path: str, credential: str | None = None, expect: int = 200,
                   headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        sent = dict(headers or {})
        if credential != "cookie":
            sent["Authorization"] = f"Bearer {credential or self.server.api_key}"
        async with self.http.request(method, self.server.url + path, headers=sent, **kwargs) as r:
            text = await r.text()
            assert r.status == expect, (method, path, r.status, text)
            return json.loads(text) if r.content_type == "application/json" else text

    async def audit(self, event: str) -> list[dict[str, Any]]:
        text = await self.call("GET", "/v1/audit", params={"event": event})
        return [json.loads(line)["event"] for line in text.splitlines()]

    async def user(self, login: str, name: str = "", role: str = "member") -> str:
        await self.call("POST", "/v1/users", json={"login": login, "role": role, "name": name}, expect=201)
        body = await self.call("POST", f"/v1/users/{login}/tokens", json={"ttl": 3600}, expect=201)
        return str(body["token"])


async def signed_in(api: Api, login: str, name: str) -> str:
    """Signs `login` in by password on api.http (its cookie jar keeps the session); returns the CSRF token."""
    await api.call("POST", "/v1/users", json={"login": login, "role": "member", "name": name}, expect=201)
    accounts = api.server.app[CHAT_API].accounts
    assert accounts is not None
    await accounts.set_password(login, PASSWORD)
    body = await api.call("POST", "/v1/auth/login", "cookie", json={"login": login, "password": PASSWORD})
    return str(body["csrf"])


async def test_me_gives_the_session_owners_watermark_text_whatever_the_page_asks(server: RunningServer) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        api = Api(server, http)
        await signed_in(api, "dana", "Dana Li")
        me = await api.call("GET", "/v1/me", "cookie")
        assert me["watermark"] == "off"
        assert me["watermark_text"] == f"Dana Li · dana · {today()}"
        # Nothing the page sends changes it: not a query parameter, not a header.
        forged = await api.call("GET", "/v1/me?watermark_text=ceo&login=ceo&name=CEO", "cookie",
                                headers={"X-Watermark-Text": "ceo"})
        assert forged["watermark_text"] == me["watermark_text"]

        # An admin turns it on for the organisation: the session sees it on its next read; the change is audited.
        org = await api.call("PATCH", "/v1/org", json={"watermark": "all"})
        assert org["watermark"] == "all"
        assert (await api.call("GET", "/v1/me", "cookie"))["watermark"] == "all"
        (change,) = [e for e in await api.audit("org.settings") if "watermark" in (e["after"] or {})]
        assert change["before"] == {"watermark": "off"} and change["after"] == {"watermark": "all"}
        refused = await api.call("PATCH", "/v1/org", json={"watermark": "sometimes"}, expect=400)
        assert refused["error"]["code"] == "invalid_field" and refused["error"]["details"]["field"] == "watermark"
        assert (await api.call("GET", "/v1/org"))["watermark"] == "all"

        # A user without a display name: login and date only.
        bare = await api.user("erin")
        assert (await api.call("GET", "/v1/me", bare))["watermark_text"] == f"erin · {today()}"


async def test_channel_setting_overrides_the_orgs_and_meeting_guests_get_name_identity_and_meeting_date(
        server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        api = Api(server, http)
        member = await api.user("mo", "Mo")
        channel = await api.call("POST", "/v1/channels", member, json={"name": "deals", "kind": "team"}, expect=201)
        assert channel["watermark"] is None  # follows the organisation's
        # The channel's creator may change its topic, but the watermark is the organisation's policy: edit_org.
        refused = await api.call("PATCH", f"/v1/channels/{channel['id']}", member, json={"watermark": "off"},
                                 expect=403)
        assert refused["error"]["code"] == "not_permitted"
        bad = await api.call("PATCH", f"/v1/channels/{channel['id']}", json={"watermark": "yes"}, expect=400)
        assert bad["error"]["details"]["field"] == "watermark"
        changed = await api.call("PATCH", f"/v1/channels/{channel['id']}", json={"watermark": "important"})
        assert changed["watermark"] == "important"
        assert (await api.call("GET", f"/v1/channels/{channel['id']}", member))["watermark"] == "important"
        (audited,) = await api.audit("channel.watermark")
        assert audited["object"]["id"] == channel["id"]
        assert audited["before"] == {"watermark": None} and audited["after"] == {"watermark": "important"}
        cleared = await api.call("PATCH", f"/v1/channels/{channel['id']}", json={"watermark": None})
        assert cleared["watermark"] is None

        # A meeting guest: the token's name and identity, the day the meeting started; the meeting channel's own
        # setting when it has one, else the organisation's.
        guest = await server.token("board", "visitor-7", name="Vic Tor")
        me = await api.call("GET", "/v1/me", guest)
        assert me["watermark"] == "off"
        meeting = await server.app[CHAT_API].auth.meetings.get(me["meeting"])
        assert meeting is not None
        day = datetime.fromtimestamp(meeting.started_at, timezone.utc).strftime("%Y-%m-%d")
        assert me["watermark_text"] == f"Vic Tor · visitor-7 · {day}"
        await api.call("PATCH", f"/v1/channels/{me['channel']}", json={"watermark": "all"})
        assert (await api.call("GET", "/v1/me", guest))["watermark"] == "all"
        await api.call("PATCH", "/v1/org", json={"watermark": "important"})
        assert (await api.call("GET", "/v1/me", guest))["watermark"] == "all"  # the channel's wins
        assert (await api.call("GET", "/v1/me", member))["watermark"] == "important"


async def test_important_flag_is_set_when_posting_and_changed_by_the_author_only(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        api = Api(server, http)
        alice = await api.user("alice")
        bob = await api.user("bob")
        channel = await api.call("POST", "/v1/channels", alice, json={"name": "ops", "kind": "team",
                                                                      "members": ["bob"]}, expect=201)
        cid = channel["id"]
        flagged = await api.call("POST", "/v1/messages", alice, json={"to": cid, "content": "Q3 numbers",
                                                                      "important": True}, expect=201)
        assert flagged["important"] is True
        plain = await api.call("POST", "/v1/messages", alice, json={"to": cid, "content": "lunch?"}, expect=201)
        assert "important" not in plain
        bad = await api.call("POST", "/v1/messages", alice, json={"to": cid, "content": "x", "important": "yes"},
                             expect=400)
        assert bad["error"]["details"]["field"] == "important"

        # Someone else may not flag or unflag it; the author may, and the history shows it.
        refused = await api.call("PATCH", f"/v1/messages/{flagged['id']}", bob, json={"important": False},
                                 expect=403)
        assert refused["error"]["code"] == "not_permitted"
        raised = await api.call("PATCH", f"/v1/messages/{plain['id']}", alice, json={"important": True})
        assert raised["important"] is True and raised["content"] == "lunch?" and raised["edits"] == []
        lowered = await api.call("PATCH", f"/v1/messages/{flagged['id']}", alice, json={"important": False})
        assert "important" not in lowered
        history = await api.call("GET", f"/v1/channels/{cid}/messages", bob)
        assert {m["id"]: m.get("important", False) for m in history["messages"]} == {
            flagged["id"]: False, plain["id"]: True}
        empty = await api.call("PATCH", f"/v1/messages/{plain['id']}", alice, json={}, expect=400)
        assert empty["error"]["code"] == "invalid_field"
        # A recall takes the flag with the content.
        recalled = await api.call("DELETE", f"/v1/messages/{plain['id']}", alice)
        assert recalled["deleted"] is True and "important" not in recalled


async def test_tamper_reports_are_audited_at_most_once_a_minute_per_person(server: RunningServer) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        api = Api(server, http)
        csrf = await signed_in(api, "dana", "Dana Li")
        headers = {"X-CSRF-Token": csrf}
        first = await api.call("POST", "/v1/watermark/tamper", "cookie", headers=headers,
                               json={"page": "chat", "what": "removed"})
        assert first == {"recorded": True}
        for _ in range(5):  # a page that keeps being tampered with keeps reporting; one row a minute
            again = await api.call("POST", "/v1/watermark/tamper", "cookie", headers=headers,
                                   json={"page": "chat", "what": "style:display"})
            assert again == {"recorded": False}
        # Another person is counted apart (a meeting guest here, on the meeting page).
        guest = await server.token("standup", "visitor", name="Vee")
        assert await api.call("POST", "/v1/watermark/tamper", guest, json={"page": "meeting"}) == {"recorded": True}
        bad = await api.call("POST", "/v1/watermark/tamper", "cookie", headers=headers, json={"page": "admin"},
                             expect=400)
        assert bad["error"]["details"]["field"] == "page"
        long = await api.call("POST", "/v1/watermark/tamper", "cookie", headers=headers,
                              json={"page": "chat", "what": "x" * 65}, expect=400)
        assert long["error"]["details"]["field"] == "what"

        events = await api.audit("watermark.tamper")
        assert [(e["actor"]["login"], e["after"]["page"]) for e in events] == [("dana", "chat"),
                                                                              ("visitor", "meeting")]
        assert events[0]["actor"]["credential"] == "session" and events[0]["after"]["what"] == "removed"
        assert events[0]["object"] == {"type": "user", "id": "dana"}
        assert "channel" in events[1]["after"]  # a meeting token's report names its meeting's channel
