"""Activity on a real server for the analytics tests: posts from a signed-in browser session, an API key, a bot,
an incoming webhook and a scheduled post; a meeting two people join; a file."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp
from yarl import URL

from chat.web import CHAT_API
from signaling.stats_api import write_noted
from tests.conftest import RunningServer
from tests.sfu.peers import join, wait_until

PASSWORD = "correct horse battery"
FILE_BYTES = b"quarterly numbers\n" * 100  # 1800 bytes


@dataclass
class Seeded:
    session_posts: int = 3
    key_posts: int = 2
    bot_posts: int = 1
    hook_posts: int = 2
    scheduled_posts: int = 1
    file_bytes: int = len(FILE_BYTES)


async def call(http: aiohttp.ClientSession, server: RunningServer, method: str, path: str,
               credential: str | None = None, expect: int | tuple[int, ...] = (200, 201), **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {credential or server.api_key}"}
    async with http.request(method, server.url + path, headers=headers, **kwargs) as r:
        text = await r.text()
        assert r.status in ((expect,) if isinstance(expect, int) else expect), (method, path, r.status, text)
        return json.loads(text) if r.content_type == "application/json" else text


async def add_person(server: RunningServer, login: str, role: str) -> None:
    api = server.app[CHAT_API]
    await api.service.add_user(None, login, role, name=login.title())
    assert api.accounts is not None
    await api.accounts.set_password(login, PASSWORD)


async def seed(server: RunningServer) -> Seeded:
    s = Seeded()
    await add_person(server, "olga", "owner")
    await add_person(server, "ann", "member")
    async with aiohttp.ClientSession() as http:
        channel = await call(http, server, "POST", "/v1/channels",
                             json={"name": "ops", "kind": "team", "members": ["olga", "ann"]})
        cid = channel["id"]
        # A signed-in browser session (cookie + CSRF): web.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.post(server.url + "/v1/auth/login", json={"login": "ann", "password": PASSWORD}) as r:
                assert r.status == 200
                csrf = (await r.json())["csrf"]
            for i in range(s.session_posts):
                async with browser.post(server.url + "/v1/messages", headers={"X-CSRF-Token": csrf},
                                        json={"to": cid, "content": f"from the browser {i}"}) as r:
                    assert r.status == 201, await r.text()
        # The server's admin API key (a person's key): api.
        for i in range(s.key_posts):
            await call(http, server, "POST", "/v1/messages", json={"to": cid, "content": f"from a script {i}"})
        # A bot's own key: bot.
        bot = await call(http, server, "POST", "/v1/bots", json={"login": "reportbot", "name": "Reports"})
        await call(http, server, "POST", f"/v1/channels/{cid}/members", json={"add": ["reportbot"]})
        await call(http, server, "POST", "/v1/messages", bot["key"], json={"to": cid, "content": "daily report"})
        # An incoming webhook: webhook.
        hook = await call(http, server, "POST", "/v1/hooks/incoming", json={"channel": cid, "name": "ci"})
        for i in range(s.hook_posts):
            async with http.post(server.url + URL(hook["url"]).path, json={"text": f"build {i} passed"}) as r:
                assert r.status == 200, await r.text()
            await asyncio.sleep(1.1)  # the hook's rate limit: about one a second
        # A scheduled post, due in two seconds (one was too close on a loaded machine: "at must be in the future").
        at = datetime.fromtimestamp(time.time() + 2.0, tz=timezone.utc).isoformat()
        made = await call(http, server, "POST", "/v1/scheduled_posts",
                          json={"channel": cid, "text": "stand-up in 5", "at": at})
        for _ in range(100):
            post = await call(http, server, "GET", f"/v1/scheduled_posts/{made['id']}")
            if post["status"] == "done":
                break
            await asyncio.sleep(0.1)
        assert post["status"] == "done", post
        # A file of known size.
        form = aiohttp.FormData()
        form.add_field("file", FILE_BYTES, filename="numbers.txt", content_type="text/plain")
        await call(http, server, "POST", "/v1/files", data=form)
        # A meeting two people join.
        await call(http, server, "POST", "/v1/rooms", json={"name": "weekly"})
        people = [await join(server.url, "weekly", await server.token("weekly", who)) for who in ("carol", "dave")]
        await asyncio.sleep(0.3)
        for p in people:
            await p.close()
        await call(http, server, "DELETE", "/v1/rooms/weekly", expect=(200, 204))
        # Activity and attendance are written within a second, gathered (stats/pending.py); the tests roll the
        # day up at once, so they write them first, as the server's rollup job does.
        await write_noted(server.app)
    return s


__all__ = ["PASSWORD", "Seeded", "call", "seed", "wait_until"]
