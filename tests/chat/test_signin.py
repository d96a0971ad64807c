"""Sign-in (POST /v1/auth/login, /v1/auth/logout) on SQLite and a real PostgreSQL: the session cookie and token,
one answer for a wrong password and an unknown login, the lockout after 5 failures, and the session cookie
authenticating chat REST with a CSRF header for writes."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from tests.chat.conftest import ChatServer

PASSWORD = "correct horse battery"


async def post(http: aiohttp.ClientSession, url: str, body: Any,
               headers: dict[str, str] | None = None) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.post(url, json=body, headers=headers or {}) as resp:
        return resp.status, await resp.json(), resp


async def signed_up(chat: ChatServer, login: str) -> None:
    await chat.api.service.add_user(None, login, "member", "eng/web", "Dana")
    assert chat.api.accounts is not None
    await chat.api.accounts.set_password(login, PASSWORD)


async def test_sign_in_sets_a_session_cookie_that_reads_and_writes_with_csrf(chat: ChatServer) -> None:
    await signed_up(chat, "dana")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        status, body, resp = await post(http, chat.url + "/v1/auth/login", {"login": "dana", "password": PASSWORD})
        assert status == 200, body
        assert body["user"]["login"] == "dana" and body["user"]["department"] == "eng/web"
        cookie = resp.headers["Set-Cookie"]
        assert "convene_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # plain HTTP here; under TLS request.secure adds it
        # The token works as a bearer token too.
        me = await chat.call("GET", "/v1/me", body["token"], expect=200)
        assert me["user"]["login"] == "dana"

        # The cookie alone reads, and /v1/me hands the page its CSRF token.
        async with http.get(chat.url + "/v1/me") as r:
            assert r.status == 200
            assert (await r.json())["csrf"] == body["csrf"]
        # A write with only the cookie (what a cross-site form post would carry) is refused and changes nothing.
        status, refused, _ = await post(http, chat.url + "/v1/channels", {"kind": "group", "members": ["dana"]})
        assert status == 403 and refused["error"]["code"] == "csrf_required"
        status, refused, _ = await post(http, chat.url + "/v1/channels", {"kind": "group", "members": ["dana"]},
                                        {"X-CSRF-Token": "0" * 64})
        assert status == 403 and refused["error"]["code"] == "csrf_required"
        async with http.get(chat.url + "/v1/channels") as r:
            assert (await r.json())["channels"] == []
        status, made, _ = await post(http, chat.url + "/v1/channels", {"kind": "group", "members": ["dana"]},
                                     {"X-CSRF-Token": body["csrf"]})
        assert status in (200, 201), made

        # Logout drops the cookie: the next request has no credential.
        status, _, resp = await post(http, chat.url + "/v1/auth/logout", {})
        assert status == 200 and "convene_session=" in resp.headers["Set-Cookie"]
        async with http.get(chat.url + "/v1/me") as r:
            assert r.status == 401
        # The session itself has ended, not just the cookie: its token, replayed, is refused.
        refused = await chat.call("GET", "/v1/me", body["token"], expect=401)
        assert refused["error"]["code"] == "unauthorized"
        async with http.get(chat.url + "/v1/me", headers={"Cookie": f"convene_session={body['token']}"}) as r:
            assert r.status == 401
        # A second sign-in is a new session, unaffected.
        status, again, _ = await post(http, chat.url + "/v1/auth/login", {"login": "dana", "password": PASSWORD})
        assert status == 200 and again["token"] != body["token"]
        await chat.call("GET", "/v1/me", again["token"], expect=200)


async def test_wrong_password_and_unknown_login_get_one_answer_then_lockout(chat: ChatServer) -> None:
    await signed_up(chat, "erin")
    url = chat.url + "/v1/auth/login"
    async with aiohttp.ClientSession() as http:
        answers, costs = [], []
        for login, password in [("erin", "wrong password"), ("nobody", "wrong password"),
                                ("erin", "another wrong one"), ("nobody2", PASSWORD)]:
            start = time.perf_counter()
            status, body, _ = await post(http, url, {"login": login, "password": password})
            costs.append(time.perf_counter() - start)
            answers.append((status, body))
        assert all(a == answers[0] for a in answers), answers
        assert answers[0][0] == 401 and answers[0][1]["error"]["code"] == "invalid_credentials"
        # Each runs one argon2 check (~25 ms): an unknown login takes about as long as a wrong password.
        assert min(costs) > 0.3 * max(costs), costs
        # A missing password is bad input, not a failed attempt.
        status, body, _ = await post(http, url, {"login": "erin"})
        assert status == 400 and body["error"]["code"] == "invalid_field"
        # The fifth failure from this address; the sixth attempt, even with the right password, is refused.
        status, _, _ = await post(http, url, {"login": "erin", "password": "wrong again"})
        assert status == 401
        status, body, resp = await post(http, url, {"login": "erin", "password": PASSWORD})
        assert status == 429 and body["error"]["code"] == "too_many_attempts", body
        assert 800 < int(resp.headers["Retry-After"]) <= 900


async def test_lockout_counts_per_account_too(chat: ChatServer) -> None:
    """Failures for fay from five addresses (127.0.0.2-6) lock fay out from a sixth: her account is under attack."""
    await signed_up(chat, "fay")
    for n in range(2, 8):
        connector = aiohttp.TCPConnector(local_addr=(f"127.0.0.{n}", 0))
        async with aiohttp.ClientSession(connector=connector) as http:
            status, body, _ = await post(http, chat.url + "/v1/auth/login",
                                         {"login": "fay", "password": PASSWORD if n == 7 else "wrong password"})
        assert (status, body["error"]["code"]) == ((429, "too_many_attempts") if n == 7
                                                   else (401, "invalid_credentials")), (n, body)


async def test_a_forged_cookie_is_not_a_session(chat: ChatServer) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(chat.url + "/v1/me", headers={"Cookie": "convene_session=forged"}) as r:
            assert r.status == 401


async def test_me_lists_the_permissions_the_role_holds(chat: ChatServer) -> None:
    await signed_up(chat, "dana")
    member = await chat.call("GET", "/v1/me", chat.token("dana"), expect=200)
    assert (member["login"], member["name"], member["role"], member["department"]) == (
        "dana", "Dana", "member", ["eng", "web"])
    admin = await chat.call("GET", "/v1/me", await chat.user("ada", role="admin"), expect=200)
    assert "manage_users" in admin["permissions"] and "manage_users" not in member["permissions"]
    assert set(member["permissions"]) < set(admin["permissions"])
    # Organisation settings change what members hold (group creation off for members).
    await chat.call("PATCH", "/v1/org", json={"members_create_channels": False}, expect=200)
    after = await chat.call("GET", "/v1/me", chat.token("dana"), expect=200)
    assert set(after["permissions"]) < set(member["permissions"])


async def test_the_live_socket_signs_in_with_the_session_cookie(chat: ChatServer) -> None:
    await signed_up(chat, "dana")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.ws_connect(chat.url + "/v1/chat/ws") as ws:  # no cookie yet
            await ws.send_json({"type": "auth", "cookie": True})
            refused = await ws.receive_json(timeout=5)
            assert refused["error"]["code"] == "unauthorized"
        status, _, _ = await post(http, chat.url + "/v1/auth/login", {"login": "dana", "password": PASSWORD})
        assert status == 200
        async with http.ws_connect(chat.url + "/v1/chat/ws") as ws:
            await ws.send_json({"type": "auth", "cookie": True})
            hello = await ws.receive_json(timeout=5)
            assert hello["type"] == "hello" and hello["user"]["login"] == "dana"
