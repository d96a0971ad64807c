"""Organisations (#10) under `convene serve --workers 2`: a real server process that starts a media worker
process beside it on the next port, one data dir, two organisations made with the CLI.

Every process answers by Host: the front process (w0, with chat and sign-in) and the media worker (w1: rooms,
placement and signaling, no chat) each tell the organisations apart, and a credential of one organisation at the
other's Host is 404 in both. A deactivation made at w0 ends the person's key at w1 within a second.

The workers are on their own ports (w0 on --port, w1 on --port + 1; browsers are sent to w1 by placement), so
each process is asked directly rather than hoping a balancer spreads the requests. One participant per worker
(`--per-worker 1`), so a meeting is placed on w1 as soon as someone is in w0.

A participant of globex placed on w1 is sent to globex's own Host at w1's port, and joins there (a page globex's
Host served at w0 may open that socket); acme's token at that worker and Host finds nothing (404 not_found).
Loopback counts as a trusted proxy (`--trusted-proxies`), so a proxy's X-Forwarded-Host/-Proto can be sent too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
ACME, GLOBEX = "acme.test", "globex.test"

pytestmark = pytest.mark.slow


def convene(data: Path, *args: str, stdin: str = "") -> str:
    out = subprocess.run([sys.executable, "-m", "signaling.cli", *args, "--data-dir", str(data)], cwd=ROOT,
                         input=stdin, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def two_free_ports() -> int:
    """A port whose next port is free too (the media worker takes it)."""
    while True:
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue


@dataclass
class Keys:
    acme: str  # an admin key of acme
    globex: str  # an admin key of globex
    pat: str  # pat's own key (a member of acme)


def prepare(data: Path) -> Keys:
    convene(data, "orgs", "add", "acme", "--host", ACME)
    convene(data, "orgs", "add", "globex", "--host", GLOBEX)
    convene(data, "users", "add", "alice", "--org", "acme", "--role", "owner", "--password-stdin", stdin=PASSWORD)
    convene(data, "users", "add", "gina", "--org", "globex", "--role", "owner", "--password-stdin", stdin=PASSWORD)
    convene(data, "users", "add", "pat", "--org", "acme", "--role", "member")
    return Keys(acme=convene(data, "keys", "create", "--name", "acme-ops", "--role", "admin", "--org", "acme"),
                globex=convene(data, "keys", "create", "--name", "globex-ops", "--role", "admin", "--org", "globex"),
                pat=convene(data, "keys", "create", "--name", "pat", "--role", "member", "--org", "acme"))


class Http:
    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session, self.w0, self.w1 = session, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"

    async def call(self, base: str, method: str, path: str, host: str, token: str | None = None,
                   **kw: Any) -> tuple[int, Any]:
        headers = {"Host": host, **({"Authorization": f"Bearer {token}"} if token else {})}
        async with self.session.request(method, base + path, headers=headers, **kw) as resp:
            return resp.status, await resp.json(content_type=None)


async def ready(http: aiohttp.ClientSession, url: str) -> None:
    for _ in range(300):
        try:
            async with http.get(url + "/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} did not get ready")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Http, Keys]]:
    data = tmp_path / "data"
    keys = await asyncio.to_thread(prepare, data)
    port = two_free_ports()
    proc = subprocess.Popen([sys.executable, "-m", "signaling.cli", "serve", "--port", str(port), "--data-dir",
                             str(data), "--workers", "2", "--per-worker", "1",
                             "--trusted-proxies", "127.0.0.1/32"], cwd=ROOT, env={**os.environ},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            http = Http(session, port)
            await ready(session, http.w0)
            await ready(session, http.w1)
            yield http, keys
    finally:
        proc.terminate()  # w0 stops its media worker on the way out
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def test_organisations_hold_in_every_worker_process(served: tuple[Http, Keys]) -> None:
    http, keys = served
    w0, w1 = http.w0, http.w1
    # w0: sign-in at the organisation's own Host; the session is 404 at the other's, and so is its login.
    status, signed = await http.call(w0, "POST", "/v1/auth/login", ACME, json={"login": "alice", "password": PASSWORD})
    assert status == 200, signed
    status, me = await http.call(w0, "GET", "/v1/me", ACME, signed["token"])
    assert (status, me["org"], me["login"]) == (200, "acme", "alice"), me
    status, body = await http.call(w0, "GET", "/v1/me", GLOBEX, signed["token"])
    assert (status, body["error"]["code"]) == (404, "not_found"), body
    status, body = await http.call(w0, "POST", "/v1/auth/login", GLOBEX, json={"login": "alice", "password": PASSWORD})
    assert (status, body["error"]["code"]) == (401, "invalid_credentials"), body
    status, gina = await http.call(w0, "POST", "/v1/auth/login", GLOBEX, json={"login": "gina", "password": PASSWORD})
    assert status == 200 and gina["user"]["login"] == "gina", gina
    # A room of acme's, and a meeting token for it (w0 answers both).
    status, room = await http.call(w0, "POST", "/v1/rooms", ACME, keys.acme, json={"name": "standup"})
    assert status == 201, room
    status, invite = await http.call(w0, "POST", "/v1/rooms/standup/tokens", ACME, keys.acme,
                                     json={"identity": "guest-1", "name": "Guest"})
    assert status == 201, invite
    # Every process: each organisation's key at its own Host, 404 at the other's; the meeting token likewise.
    for base in (w0, w1):
        for key, own, other in ((keys.acme, ACME, GLOBEX), (keys.globex, GLOBEX, ACME)):
            assert (await http.call(base, "GET", "/v1/rooms", own, key))[0] == 200, base
            status, body = await http.call(base, "GET", "/v1/rooms", other, key)
            assert (status, body["error"]["code"]) == (404, "not_found"), (base, body)
        status, placed = await http.call(base, "GET", "/v1/rooms/standup/placement", ACME, invite["token"])
        assert status == 200 and placed["ws_url"].endswith("/v1/rooms/standup/ws"), (base, placed)
        status, body = await http.call(base, "GET", "/v1/rooms/standup/placement", GLOBEX, invite["token"])
        assert (status, body["error"]["code"]) == (404, "not_found"), (base, body)
        # pat's member key is pat at acme (not an admin: 403 where admins only), 404 at globex.
        assert (await http.call(base, "GET", "/v1/rooms/standup/placement", ACME, keys.pat))[0] == 403
        assert (await http.call(base, "GET", "/v1/rooms/standup/placement", GLOBEX, keys.pat))[0] == 404
    # Deactivating pat at w0 (acme's admin key) ends pat's key at w1 within a second (and at w0).
    status, done = await http.call(w0, "POST", "/v1/users/pat/deactivate", ACME, keys.acme)
    assert status == 200 and done["active"] is False, done
    since = time.monotonic()
    pending = {w0: "/v1/me", w1: "/v1/rooms/standup/placement"}
    while pending:
        for base, path in list(pending.items()):
            status, body = await http.call(base, "GET", path, ACME, keys.pat)
            if status == 401:
                del pending[base]
        assert time.monotonic() - since < 1.0, f"pat's key still works at {list(pending)}"
        await asyncio.sleep(0.05)


async def standup_invites(http: Http, keys: Keys) -> dict[str, str]:
    """Room `standup` in acme and in globex (made at w0), and a guest's meeting token for each, by Host."""
    tokens = {}
    for host, key in ((ACME, keys.acme), (GLOBEX, keys.globex)):
        assert (await http.call(http.w0, "POST", "/v1/rooms", host, key, json={"name": "standup"}))[0] == 201
        status, invite = await http.call(http.w0, "POST", "/v1/rooms/standup/tokens", host, key,
                                         json={"identity": "guest-1", "name": "Guest"})
        assert status == 201, invite
        tokens[host] = invite["token"]
    return tokens


@contextlib.asynccontextmanager
async def someone_in_w0(http: Http, acme_token: str) -> AsyncIterator[None]:
    """acme's guest in w0 while the block runs: with one participant a worker, placement then picks w1."""
    port = int(http.w0.rsplit(":", 1)[1])
    async with http.session.ws_connect(f"ws://127.0.0.1:{port}/v1/rooms/standup/ws",
                                       headers={"Host": f"{ACME}:{port}"}) as filler:
        await filler.send_json({"type": "join", "token": acme_token})
        assert (await asyncio.wait_for(filler.receive_json(), 10))["type"] == "joined"
        yield


async def join_at(http: Http, ws_url: str, token: str, origin: str | None = None) -> dict[str, Any]:
    """Opens the socket `ws_url` names on loopback, with its Host as the browser would send it; answers the reply
    to `join` (`joined` or `error`), then leaves."""
    url = urlsplit(ws_url)
    headers = {"Host": url.netloc, **({"Origin": origin} if origin else {})}
    async with http.session.ws_connect(f"ws://127.0.0.1:{url.port}{url.path}", headers=headers) as ws:
        await ws.send_json({"type": "join", "token": token})
        while True:
            reply = await asyncio.wait_for(ws.receive_json(), 10)
            if reply.get("type") in ("joined", "error"):
                return dict(reply)


async def test_a_meeting_of_an_organisation_works_on_a_media_worker(served: tuple[Http, Keys]) -> None:
    http, keys = served
    w0, w1 = http.w0, http.w1
    port = int(w0.rsplit(":", 1)[1])
    tokens = await standup_invites(http, keys)
    # Someone of acme's in w0 (each worker takes one participant): the next participant goes to w1.
    status, placed = await http.call(w0, "GET", "/v1/rooms/standup/placement", ACME, tokens[ACME])
    assert (status, placed["worker"]) == (200, "w0"), placed
    async with someone_in_w0(http, tokens[ACME]):
        # globex's participant is sent to w1 at globex's Host (w1's own URL would be the default organisation's).
        status, placed = await http.call(w0, "GET", "/v1/rooms/standup/placement", f"{GLOBEX}:{port}", tokens[GLOBEX])
        assert status == 200 and placed == {"worker": "w1",
                                            "ws_url": f"ws://{GLOBEX}:{port + 1}/v1/rooms/standup/ws"}, placed
        # It joins there, from a page globex's Host served at w0 (the Origin a browser sends).
        joined = await join_at(http, placed["ws_url"], tokens[GLOBEX], origin=f"http://{GLOBEX}:{port}")
        assert joined["type"] == "joined" and joined["room"]["name"] == "standup", joined
        # acme's token at that worker and Host: nothing there, by placement and by socket.
        status, body = await http.call(w1, "GET", "/v1/rooms/standup/placement", GLOBEX, tokens[ACME])
        assert (status, body["error"]["code"]) == (404, "not_found"), body
        refused = await join_at(http, placed["ws_url"], tokens[ACME])
        assert (refused["type"], refused["code"]) == ("error", "not_found"), refused
        # Behind a TLS proxy (loopback is trusted here): the forwarded Host and scheme, the worker's port.
        # w1 writes that globex's guest left by a task of its own, a moment after the leave; until then both
        # workers look full and the least loaded is w0, so this waits (bounded) for w1's announcement.
        proxied = {"X-Forwarded-Host": GLOBEX, "X-Forwarded-Proto": "https",
                   "Authorization": f"Bearer {tokens[GLOBEX]}"}
        deadline = time.monotonic() + 5
        while True:
            async with http.session.get(f"{w0}/v1/rooms/standup/placement", headers=proxied) as resp:
                answer = (resp.status, await resp.json())
            if answer[1].get("worker") == "w1" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert answer == (200, {"worker": "w1", "ws_url": f"wss://{GLOBEX}:{port + 1}/v1/rooms/standup/ws"})
        # A page of acme's Host may not open globex's socket (nor may another site).
        for origin in (f"http://{ACME}:{port}", "http://evil.test"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refusal:
                await join_at(http, placed["ws_url"], tokens[GLOBEX], origin=origin)
            assert refusal.value.status == 403
