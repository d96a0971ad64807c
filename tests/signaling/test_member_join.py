"""Signed-in people join meetings as themselves (POST /v1/rooms/{room}/join-as-member) on a real server: the
session cookie with its CSRF header, the token for the member's own login and name in the body, the starter and
admins moderate, the token works on the signaling socket, and what is refused (no CSRF, keys, meeting tokens)."""

from __future__ import annotations

from typing import Any

import aiohttp

from chat.web import CHAT_API
from identity.tokens import TokenIssuer
from signaling.appkeys import TOKENS
from signaling.client import SignalingClient
from tests.conftest import RunningServer

PASSWORD = "correct horse battery"


async def add_person(server: RunningServer, login: str, role: str, name: str) -> None:
    api = server.app[CHAT_API]
    await api.service.add_user(None, login, role, "eng", name)
    assert api.accounts is not None
    await api.accounts.set_password(login, PASSWORD)


async def signed_in(server: RunningServer, login: str) -> tuple[aiohttp.ClientSession, str]:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(server.url + "/v1/auth/login", json={"login": login, "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
        return http, (await r.json())["csrf"]


async def join(http: aiohttp.ClientSession, server: RunningServer, room: str, csrf: str | None,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    sent = {**({"X-CSRF-Token": csrf} if csrf else {}), **(headers or {})}
    async with http.post(f"{server.url}/v1/rooms/{room}/join-as-member", headers=sent) as r:
        return r.status, await r.json()


async def test_members_join_as_themselves_and_the_starter_moderates(server: RunningServer) -> None:
    await add_person(server, "dana", "member", "Dana Li")
    await add_person(server, "eve", "member", "Eve")
    await add_person(server, "boss", "admin", "The Boss")
    tokens: TokenIssuer = server.app[TOKENS]
    dana, dana_csrf = await signed_in(server, "dana")
    eve, eve_csrf = await signed_in(server, "eve")
    boss, boss_csrf = await signed_in(server, "boss")
    try:
        # The cookie alone is what a cross-site form would carry: refused, and no meeting starts.
        status, body = await join(dana, server, "standup", None)
        assert status == 403 and body["error"]["code"] == "csrf_required"
        assert await server.app[CHAT_API].auth.meetings.live("standup") is None

        status, started = await join(dana, server, "standup", dana_csrf)
        assert status == 201, started
        assert started["started"] and started["moderator"] and started["identity"] == "dana"
        claims = tokens.verify(started["token"])
        assert (claims.identity, claims.name, claims.room) == ("dana", "Dana Li", "standup")
        assert claims.grants.moderator and "token" not in str(started.get("url", ""))

        status, second = await join(eve, server, "standup", eve_csrf)
        assert status == 201 and not second["started"] and not second["moderator"]
        assert second["meeting_id"] == started["meeting_id"]
        status, admin = await join(boss, server, "standup", boss_csrf)
        assert status == 201 and admin["moderator"] and not admin["started"]

        # The tokens are real meeting tokens: both people are in the room, under their own names.
        a = SignalingClient(server.url, "standup", started["token"])
        b = SignalingClient(server.url, "standup", second["token"])
        try:
            await a.connect()
            joined = await b.connect()
            names = {p["name"] for p in joined["room"]["participants"]} | {joined["participant"]["name"]}
            assert {"Dana Li", "Eve"} <= names
        finally:
            await b.close()
            await a.close()

        # The meeting is on the member's list from now on: its channel (named by the meeting id, topic the room).
        async with dana.get(server.url + "/v1/channels") as r:
            channels = (await r.json())["channels"]
        assert any(c["kind"] == "meeting" and c["name"] == started["meeting_id"] and c["topic"] == "standup"
                   for c in channels)

        # Keys and meeting tokens are not people signing in.
        async with aiohttp.ClientSession() as plain:
            status, body = await join(plain, server, "standup", None, {"Authorization": f"Bearer {server.api_key}"})
            assert status == 403 and body["error"]["code"] == "forbidden"
            status, body = await join(plain, server, "standup", None,
                                      {"Authorization": f"Bearer {started['token']}"})
            assert status == 403 and body["error"]["code"] == "out_of_scope"
            status, body = await join(plain, server, "standup", None)
            assert status == 401
    finally:
        for http in (dana, eve, boss):
            await http.close()


async def test_guests_do_not_join_as_members(server: RunningServer) -> None:
    await add_person(server, "walkin", "guest", "Walk In")
    http, csrf = await signed_in(server, "walkin")
    try:
        status, body = await join(http, server, "private", csrf)
        assert status == 403 and body["error"]["code"] == "not_permitted"
        assert await server.app[CHAT_API].auth.meetings.live("private") is None
    finally:
        await http.close()
