"""Organisations (tenants, #10): two organisations on one real server, told apart by the Host header, cannot see
each other's users, channels, messages, search hits, files, rooms or meetings; a credential of one presented at the
other's Host answers 404 `not_found`; the default organisation (every other Host) keeps working as before.

The organisations and their owners are made with the real CLI (`convene orgs add`, `convene users add --org`)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chat.web import CHAT_API
from common.config import Config
from identity.appkeys import API_KEYS
from identity.appkeys import ORGS as IDENTITY_ORGS
from tests.conftest import RunningServer, running_server, server_config

ROOT = Path(__file__).resolve().parents[2]
ORGS = {"acme": ("acme.test", "alice"), "globex": ("globex.test", "gina")}
PASSWORD = "correct horse battery staple"


def convene(data_dir: Path, *args: str, stdin: str = "") -> str:
    out = subprocess.run([sys.executable, "-m", "signaling.cli", *args, "--data-dir", str(data_dir)], cwd=ROOT,
                         input=stdin, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@dataclass
class Org:
    host: str
    owner: str
    token: str = ""  # the owner's session token
    key: str = ""  # an admin API key of the organisation
    channel: str = ""  # its channel "general"
    message: str = ""
    file: str = ""
    meeting: str = ""  # its room "standup"'s meeting
    meeting_token: str = ""


class Client:
    def __init__(self, server: RunningServer, session: aiohttp.ClientSession) -> None:
        self.server, self.session = server, session

    async def call(self, method: str, path: str, host: str | None, token: str | None, expect: int,
                   **kw: Any) -> Any:
        headers = {"Host": host} if host else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.server.url + path, headers=headers, **kw) as resp:
            body = await resp.json(content_type=None) if resp.content_type == "application/json" else await resp.read()
            assert resp.status == expect, (method, path, host, resp.status, body)
            return body


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Client, dict[str, Org]]]:
    async with open_world(server_config(tmp_path / "data")) as made:
        yield made


@contextlib.asynccontextmanager
async def open_world(config: Config) -> AsyncIterator[tuple[Client, dict[str, Org]]]:
    """Two organisations with their owners, made in-process through what the CLI calls (the CLI itself is
    tested below), each then populated over HTTP at its own Host, on a real server of `config`."""
    async with running_server(config) as server, aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar()) as session:
        api = server.app[CHAT_API]
        assert api.accounts is not None
        for name, (host, owner) in ORGS.items():
            await server.app[IDENTITY_ORGS].add(name, [host])
            await api.service.add_user(None, owner, "owner", org=name)
            await api.accounts.set_password(owner, PASSWORD)
        client = Client(server, session)
        orgs = {name: Org(host, owner) for name, (host, owner) in ORGS.items()}
        for name, org in orgs.items():
            await populate(client, server, name, org)
        yield client, orgs


@pytest.mark.slow  # five `convene` processes
async def test_the_cli_adds_organisations_and_their_first_admins(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for name, (host, owner) in ORGS.items():
        assert convene(data, "orgs", "add", name, "--host", host).strip() == f"organisation {name}: {host}"
        out = convene(data, "users", "add", owner, "--org", name, "--role", "owner", "--password-stdin",
                      stdin=PASSWORD + "\n")
        assert "organisation " + name in out
    listing = convene(data, "orgs", "list")
    assert "acme\tacme.test" in listing and "globex\tglobex.test" in listing
    async with running_server(server_config(data)) as server, aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar()) as session:
        client = Client(server, session)
        signed = await client.call("POST", "/v1/auth/login", "ACME.test:8080", None, 200,
                                   json={"login": "alice", "password": PASSWORD})
        assert signed["user"]["login"] == "alice"
        me = await client.call("GET", "/v1/me", "acme.test", signed["token"], 200)
        assert (me["org"], me["role"]) == ("acme", "owner")
        await client.call("POST", "/v1/auth/login", "globex.test", None, 401,
                          json={"login": "alice", "password": PASSWORD})


async def populate(client: Client, server: RunningServer, name: str, org: Org) -> None:
    """The owner signs in at the organisation's Host, adds a member, makes a channel (the same name in both
    organisations), posts, uploads a file, and starts the room `standup` (the same name in both too)."""
    signed = await client.call("POST", "/v1/auth/login", org.host, None, 200,
                               json={"login": org.owner, "password": PASSWORD})
    org.token = signed["token"]
    await client.call("POST", "/v1/users", org.host, org.token, 201, json={"login": f"{name}-bob", "role": "member"})
    channel = await client.call("POST", "/v1/channels", org.host, org.token, 201,
                                json={"name": "general", "kind": "team", "members": [f"{name}-bob"]})
    org.channel = channel["id"]
    form = aiohttp.FormData()
    form.add_field("file", f"{name} quarterly numbers".encode(), filename=f"{name}.txt", content_type="text/plain")
    uploaded = await client.call("POST", "/v1/files", org.host, org.token, 201, data=form)
    org.file = uploaded["file"]["id"]
    posted = await client.call("POST", "/v1/messages", org.host, org.token, 201, json={
        "to": "general", "content": f"zebracorn plan of {name}", "attachments": [{"type": "file", "file_id": org.file}]})
    org.message = posted["id"]
    _, org.key = await server.app[API_KEYS].create(f"{name}-ops", "admin", org=name)
    room = await client.call("POST", "/v1/rooms", org.host, org.key, 201, json={"name": "standup"})
    assert room["name"] == "standup"  # clients see the plain name
    org.meeting = room["meeting_id"]
    invite = await client.call("POST", "/v1/rooms/standup/tokens", org.host, org.key, 201,
                               json={"identity": f"{name}-guest", "grants": {"moderator": True}})
    assert invite["url"] == f"http://{org.host}/r/standup#token={invite['token']}"
    org.meeting_token = invite["token"]


async def test_two_organisations_cannot_see_each_other(world: tuple[Client, dict[str, Org]]) -> None:
    client, orgs = world
    for name, org in orgs.items():
        other_name = next(n for n in orgs if n != name)
        other = orgs[other_name]
        host, token = org.host, org.token
        # Users and the directory.
        users = {u["login"] for u in (await client.call("GET", "/v1/users", host, token, 200))["users"]}
        assert users == {org.owner, f"{name}-bob"}
        tree = await client.call("GET", "/v1/departments", host, token, 200)
        assert set(tree["users"]) <= users and other.owner not in str(tree)
        me = await client.call("GET", "/v1/me", host, token, 200)
        assert me["org"] == name and me["login"] == org.owner
        for path in (f"/v1/users/{other.owner}", f"/v1/users/{other.owner}/tokens"):
            err = await client.call("PATCH" if path.endswith(other.owner) else "POST", path, host, token, 404,
                                    json={"name": "x"} if path.endswith(other.owner) else {})
            assert err["error"]["code"] == "user_not_found"
        await client.call("POST", "/v1/channels", host, token, 404, json={"kind": "direct", "members": [other.owner]})
        await client.call("POST", f"/v1/channels/{org.channel}/members", host, token, 404,
                          json={"add": [other.owner]})
        # A new user cannot take another organisation's login (logins are unique across organisations).
        taken = await client.call("POST", "/v1/users", host, token, 409, json={"login": f"{other_name}-bob"})
        assert taken["error"]["code"] == "conflict"
        # Channels: both have "general"; the other's is not there, by id or by listing.
        mine = await client.call("GET", "/v1/channels", host, token, 200)
        assert {c["name"] for c in mine["channels"]} == {"general"}
        assert [c["id"] for c in mine["channels"] if c["name"] == "general"] == [org.channel]
        browse = await client.call("GET", "/v1/channels/browse", host, token, 200)
        assert [c["id"] for c in browse["channels"]] == [org.channel]
        for path in (f"/v1/channels/{other.channel}", f"/v1/channels/{other.channel}/messages",
                     f"/v1/channels/{other.channel}/members"):
            assert (await client.call("GET", path, host, token, 404))["error"]["code"] == "channel_not_found"
        await client.call("POST", f"/v1/channels/{other.channel}/members", host, token, 404,
                          json={"add": [org.owner]})
        await client.call("GET", f"/v1/messages/{other.message}", host, token, 404)
        # Search and sync: only the organisation's own message.
        hits = await client.call("GET", "/v1/search?q=zebracorn", host, token, 200)
        assert [m["id"] for m in hits["messages"]] == [org.message]
        synced = await client.call("GET", "/v1/sync?since=0", host, token, 200)
        assert other.message not in str(synced) and org.message in str(synced)
        # Files: the owner (an admin) downloads its own, never the other's.
        assert await client.call("GET", f"/v1/files/{org.file}", host, token, 200) == f"{name} quarterly numbers".encode()
        assert (await client.call("GET", f"/v1/files/{other.file}", host, token, 404))["error"]["code"] == "file_not_found"
        # Rooms and meetings: both have "standup", each its own meeting.
        rooms = await client.call("GET", "/v1/rooms", host, org.key, 200)
        assert [(r["name"], r["meeting_id"]) for r in rooms["rooms"]] == [("standup", org.meeting)]
        assert (await client.call("GET", "/v1/rooms/standup", host, org.key, 200))["meeting_id"] == org.meeting
        meetings = await client.call("GET", "/v1/meetings", host, org.key, 200)
        assert [m["meeting_id"] for m in meetings["meetings"]] == [org.meeting]
        assert meetings["meetings"][0]["room"] == "standup"
        await client.call("GET", f"/v1/meetings/{other.meeting}", host, org.key, 404)
        await client.call("GET", f"/v1/meetings/{org.meeting}", host, org.key, 200)
        # The meeting token reaches its room at its own Host only.
        assert (await client.call("GET", "/v1/rooms/standup", host, org.meeting_token, 200))["meeting_id"] == org.meeting
        placed = await client.call("GET", "/v1/rooms/standup/placement", host, org.meeting_token, 200)
        assert placed["ws_url"] == f"ws://{host}/v1/rooms/standup/ws"


async def test_a_credential_of_one_organisation_is_not_found_at_the_other(
        world: tuple[Client, dict[str, Org]]) -> None:
    client, orgs = world
    acme, globex = orgs["acme"], orgs["globex"]
    for token in (acme.token, acme.key, acme.meeting_token):
        for path in ("/v1/me", "/v1/channels", "/v1/users", f"/v1/channels/{acme.channel}/messages",
                     "/v1/search?q=zebracorn", f"/v1/files/{acme.file}"):
            body = await client.call("GET", path, globex.host, token, 404)
            assert body["error"]["code"] == "not_found", (path, body)
    for path in ("/v1/rooms", "/v1/rooms/standup", "/v1/meetings", f"/v1/meetings/{acme.meeting}"):
        assert (await client.call("GET", path, globex.host, acme.key, 404))["error"]["code"] == "not_found"
    await client.call("GET", "/v1/rooms/standup", globex.host, acme.meeting_token, 404)
    # The default organisation's Host (any other) neither.
    await client.call("GET", "/v1/me", "127.0.0.1", acme.token, 404)
    # The session cookie too: the owner's sign-in at acme does not sign in at globex.
    jar_headers = {"Cookie": f"convene_session={acme.token}"}
    async with client.session.get(client.server.url + "/v1/me", headers={"Host": globex.host, **jar_headers}) as resp:
        assert resp.status == 404
    async with client.session.get(client.server.url + "/v1/me", headers={"Host": acme.host, **jar_headers}) as resp:
        assert resp.status == 200
    # The sockets: acme's meeting token joins no room at globex's Host, acme's user token opens no chat there.
    ws_url = client.server.url.replace("http", "ws", 1)
    async with client.session.ws_connect(ws_url + "/v1/rooms/standup/ws", headers={"Host": globex.host}) as ws:
        await ws.send_json({"type": "join", "token": acme.meeting_token})
        refused = await ws.receive_json(timeout=10)
        assert (refused["type"], refused["code"]) == ("error", "not_found")
    async with client.session.ws_connect(ws_url + "/v1/chat/ws", headers={"Host": globex.host}) as ws:
        await ws.send_json({"type": "auth", "token": acme.token})
        refused = await ws.receive_json(timeout=10)
        assert refused["error"]["code"] == "not_found"
    async with client.session.ws_connect(ws_url + "/v1/chat/ws", headers={"Host": acme.host}) as ws:
        await ws.send_json({"type": "auth", "token": acme.token})
        assert (await ws.receive_json(timeout=10))["type"] == "hello"
    # Signing in names no organisation but the Host's: alice has no account at globex.
    wrong = await client.call("POST", "/v1/auth/login", globex.host, None, 401,
                              json={"login": acme.owner, "password": PASSWORD})
    assert wrong["error"]["code"] == "invalid_credentials"


async def test_the_default_organisation_is_unchanged(world: tuple[Client, dict[str, Org]]) -> None:
    """Every Host no organisation lists is the default organisation's, which sees none of theirs."""
    client, orgs = world
    server = client.server
    rooms = await client.call("GET", "/v1/rooms", None, server.api_key, 200)
    assert rooms["rooms"] == []
    made = await client.call("POST", "/v1/rooms", None, server.api_key, 201, json={"name": "standup"})
    assert made["meeting_id"] not in {o.meeting for o in orgs.values()}
    users = {u["login"] for u in (await client.call("GET", "/v1/users", None, server.api_key, 200))["users"]}
    assert not users & {"alice", "gina", "acme-bob", "globex-bob"}
    channel = await client.call("POST", "/v1/channels", None, server.api_key, 201,
                                json={"name": "general", "kind": "team"})
    assert channel["id"] not in {o.channel for o in orgs.values()}
    assert (await client.call("GET", "/v1/search?q=zebracorn", None, server.api_key, 200))["messages"] == []
    meetings = await client.call("GET", "/v1/meetings", None, server.api_key, 200)
    assert [m["meeting_id"] for m in meetings["meetings"]] == [made["meeting_id"]]


async def test_x_forwarded_host_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    """Behind a proxy the organisation comes from its X-Forwarded-Host; from anyone else that header is ignored."""
    for trusted, expect in (((), 404), (("127.0.0.1",), 200)):
        config = server_config(tmp_path / f"data{len(trusted)}", trusted_proxies=trusted)
        async with running_server(config) as server, aiohttp.ClientSession() as session:
            await server.app[IDENTITY_ORGS].add("acme", ["acme.test"])
            _, key = await server.app[API_KEYS].create("acme-ops", "admin", org="acme")
            async with session.get(server.url + "/v1/rooms", headers={
                    "Authorization": f"Bearer {key}", "X-Forwarded-Host": "acme.test"}) as resp:
                assert resp.status == expect, trusted
