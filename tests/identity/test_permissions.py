"""The permission table (#10), against real servers: role × permission × organisation setting, on REST and on the
chat socket.

The expected table below is written out by hand from docs/permissions.md (not read from identity/permissions.py),
so a changed default fails here. Each scenario is one organisation setting; every role then tries the action each
permission guards, and `GET /v1/me` must list exactly the permissions the role holds.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from chat.web import CHAT, CHAT_API
from identity.appkeys import PERMISSIONS
from signaling.appkeys import API_KEYS
from tests.conftest import RunningServer, running_server, server_config

ROLES = ("owner", "admin", "member", "bot", "guest")
PEOPLE = {"owner": "olive", "admin": "ada", "member": "mel", "guest": "gus"}  # bots come as an API key
EVERYONE = set(ROLES)

DEFAULTS: dict[str, set[str]] = {
    "create_group": {"owner", "admin", "member", "bot"},
    "create_team_channel": {"owner", "admin", "member"},
    "start_meeting": {"owner", "admin", "member"},
    "invite_guests": {"owner", "admin", "member"},
    "upload_files": EVERYONE,
    "manage_integrations": {"owner", "admin"},
    "read_audit": {"owner", "admin"},
    "read_stats": {"owner", "admin"},
    "manage_users": {"owner", "admin"},
}


@dataclass(frozen=True)
class Scenario:
    put: dict[str, Any] | None = None  # PUT /v1/admin/permissions (by the owner)
    org: dict[str, Any] | None = None  # PATCH /v1/org (by the owner)
    expect: dict[str, set[str]] = field(default_factory=dict)  # rows that differ from DEFAULTS


SCENARIOS = {
    "defaults": Scenario(),
    # "Ordinary staff cannot create groups" is one setting.
    "staff_cannot_create_groups": Scenario(put={"create_group": ["owner", "admin"]},
                                           expect={"create_group": {"owner", "admin"}}),
    # The organisation setting the team-channel default depends on.
    "members_create_no_channels": Scenario(org={"members_create_channels": False},
                                           expect={"create_team_channel": {"owner", "admin"}}),
    "locked_down": Scenario(
        put={"start_meeting": ["owner", "admin"], "invite_guests": ["owner"], "upload_files": ["owner", "admin",
             "member"], "manage_integrations": ["owner", "admin", "member"], "read_audit": ["owner"],
             "create_team_channel": ["owner", "admin", "bot"]},
        expect={"start_meeting": {"owner", "admin"}, "invite_guests": {"owner"},
                "upload_files": {"owner", "admin", "member"}, "manage_integrations": {"owner", "admin", "member"},
                "read_audit": {"owner"}, "create_team_channel": {"owner", "admin", "bot"}}),
}


@dataclass
class Org:
    server: RunningServer
    http: aiohttp.ClientSession
    creds: dict[str, str] = field(default_factory=dict)  # role -> bearer credential
    lobby: str = "lobby"  # a live meeting to invite to
    counter: itertools.count[int] = field(default_factory=itertools.count)

    async def call(self, method: str, path: str, role: str | None, body: Any = None) -> tuple[int, Any]:
        data: Any = None
        if body == "multipart":
            data = aiohttp.FormData()
            data.add_field("file", b"agenda\n", filename="agenda.txt", content_type="text/plain")
            body = None
        credential = self.server.api_key if role is None else self.creds[role]
        async with self.http.request(method, self.server.url + path, json=body, data=data,
                                     headers={"Authorization": f"Bearer {credential}"}) as r:
            return r.status, await r.json(content_type=None)

    async def ok(self, method: str, path: str, role: str | None, body: Any = None) -> Any:
        status, got = await self.call(method, path, role, body)
        assert 200 <= status < 300, (method, path, role, status, got)
        return got


Action = Callable[[Org, str], Awaitable[tuple[int, Any]]]


async def _create_group(org: Org, role: str) -> tuple[int, Any]:
    return await org.call("POST", "/v1/channels", role, {"kind": "group", "members": ["mel"]})


async def _create_team_channel(org: Org, role: str) -> tuple[int, Any]:
    return await org.call("POST", "/v1/channels", role, {"kind": "team", "name": f"team-{next(org.counter)}"})


async def _start_meeting(org: Org, role: str) -> tuple[int, Any]:
    status, body = await org.call("POST", "/v1/rooms", role, {"name": f"room-{next(org.counter)}"})
    if role != "bot":  # a signed-in person's own join that starts a meeting asks the same row
        joined = await org.call("POST", f"/v1/rooms/room-{next(org.counter)}/join-as-member", role, {})
        assert (joined[0] < 300) == (status < 300), ("join-as-member disagrees", role, joined, status, body)
    return status, body


async def _invite_guests(org: Org, role: str) -> tuple[int, Any]:
    return await org.call("POST", f"/v1/rooms/{org.lobby}/tokens", role,
                          {"identity": f"visitor-{next(org.counter)}", "name": "Visitor"})


async def _upload_files(org: Org, role: str) -> tuple[int, Any]:
    return await org.call("POST", "/v1/files", role, "multipart")


async def _manage_users(org: Org, role: str) -> tuple[int, Any]:
    return await org.call("POST", "/v1/users", role, {"login": f"hire{next(org.counter)}", "role": "member"})


def _asked_of_the_store(permission: str) -> Action:
    """Rows whose endpoints other parts serve (audit, webhooks and bots): the server's own store is asked, as
    those parts ask it (`await app[PERMISSIONS].require(principal, permission)`)."""
    async def ask(org: Org, role: str) -> tuple[int, Any]:
        store = org.server.app[PERMISSIONS]
        return (200, {}) if await store.holds(role, permission) else (403, {"error": {"code": "not_permitted"}})
    return ask


ACTIONS: dict[str, Action] = {
    "create_group": _create_group,
    "create_team_channel": _create_team_channel,
    "start_meeting": _start_meeting,
    "invite_guests": _invite_guests,
    "upload_files": _upload_files,
    "manage_users": _manage_users,
}
# API keys other than admin keys never reach the rooms REST: the refusal there is the key's, not the table's.
KEY_REFUSALS = {("bot", "start_meeting"): "forbidden", ("bot", "invite_guests"): "forbidden"}


async def setup_org(server: RunningServer, http: aiohttp.ClientSession) -> Org:
    org = Org(server, http)
    service, auth = server.app[CHAT], server.app[CHAT_API].auth
    for role, login in PEOPLE.items():
        await service.add_user(None, login, role, name=login.title())  # the operator's CLI path
        org.creds[role] = auth.mint_user_token(login, 3600)
    _, org.creds["bot"] = await server.app[API_KEYS].create("botty", "bot")
    await org.ok("GET", "/v1/me", "bot")
    await org.ok("POST", "/v1/rooms", None, {"name": org.lobby})
    return org


@pytest.fixture
async def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Org]:
    monkeypatch.setenv("CONVENE_CHAT_RATE", "1000")
    monkeypatch.setenv("CONVENE_CHAT_BURST", "1000")
    async with running_server(server_config(tmp_path / "data", guest_joins_per_minute=10_000)) as server:
        async with aiohttp.ClientSession() as http:
            yield await setup_org(server, http)


@pytest.fixture(params=["sqlite", "postgres"])
async def org_on(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Org]:
    """The organisation on either store backend (a real PostgreSQL from tests/postgres.py for the second)."""
    url = request.getfixturevalue("postgres").create_database() if request.param == "postgres" else None
    async with running_server(server_config(tmp_path / "data", database_url=url)) as server:
        async with aiohttp.ClientSession() as http:
            yield await setup_org(server, http)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_role_by_permission_under_each_setting_on_rest(org: Org, name: str) -> None:
    scenario = SCENARIOS[name]
    if scenario.put is not None:
        await org.ok("PUT", "/v1/admin/permissions", "owner", scenario.put)
    if scenario.org is not None:
        await org.ok("PATCH", "/v1/org", "owner", scenario.org)
    expected = {**DEFAULTS, **scenario.expect}
    wrong: list[str] = []
    for role in ROLES:
        me = await org.ok("GET", "/v1/me", role)
        held = {p for p in me["permissions"] if p in DEFAULTS}
        want = {p for p, roles in expected.items() if role in roles}
        if held != want:
            wrong.append(f"{role}: /v1/me lists {sorted(held)}, want {sorted(want)}")
        for permission in DEFAULTS:
            action = ACTIONS.get(permission) or _asked_of_the_store(permission)
            status, body = await action(org, role)
            code = body.get("error", {}).get("code") if isinstance(body, dict) else None
            if role in expected[permission]:
                if not 200 <= status < 300:
                    wrong.append(f"{role} {permission}: refused {status} {code}")
            elif (status, code) != (403, KEY_REFUSALS.get((role, permission), "not_permitted")):
                wrong.append(f"{role} {permission}: want 403, got {status} {code}")
            elif code == "not_permitted" and permission in ACTIONS and permission != "start_meeting" \
                    and body["error"]["details"].get("permission") != permission:
                wrong.append(f"{role} {permission}: the refusal names {body['error']['details']}")
    assert not wrong, f"scenario {name}:\n" + "\n".join(wrong)


async def test_the_table_shows_defaults_and_overrides_and_one_put_resets_a_row(org_on: Org) -> None:
    org = org_on
    table = await org.ok("GET", "/v1/admin/permissions", "admin")
    rows = {r["name"]: r for r in table["permissions"]}
    assert {n for n, r in rows.items() if r["editable"]} == set(DEFAULTS)
    assert {"post", "read_directory", "recall_any", "change_roles", "edit_org"} <= set(rows)
    assert all(set(rows[n]["roles"]) == DEFAULTS[n] and not rows[n]["overridden"] for n in DEFAULTS)
    after = await org.ok("PUT", "/v1/admin/permissions", "admin", {"create_group": ["admin", "owner"]})
    row = next(r for r in after["permissions"] if r["name"] == "create_group")
    assert (row["roles"], row["default"], row["overridden"]) == (["owner", "admin"], ["owner", "admin", "member",
                                                                                         "bot"], True)
    back = await org.ok("PUT", "/v1/admin/permissions", "admin", {"create_group": None})
    row = next(r for r in back["permissions"] if r["name"] == "create_group")
    assert row["overridden"] is False and "member" in row["roles"]
    for role in ("member", "bot", "guest"):  # the table is for those who edit the organisation
        status, body = await org.call("GET", "/v1/admin/permissions", role)
        assert (status, body["error"]["code"]) == (403, "not_permitted")


@pytest.mark.parametrize(("role", "body", "status", "code"), [
    # No lock-out: owners and admins keep manage_users, whoever asks.
    ("owner", {"manage_users": ["owner"]}, 400, "invalid_field"),
    ("admin", {"manage_users": ["admin", "owner", "member"]}, 200, None),
    # Nobody changes a row for a role above their own (an admin takes nothing from owners).
    ("admin", {"read_audit": ["admin"]}, 403, "not_permitted"),
    ("admin", {"create_group": ["owner", "admin", "guest"]}, 200, None),
    ("member", {"create_group": ["owner", "admin", "member", "bot"]}, 403, "not_permitted"),
    ("bot", {"upload_files": ["bot"]}, 403, "not_permitted"),
    # What is not an organisation's to edit, or not a role, or not a list.
    ("owner", {"post": ["owner"]}, 400, "invalid_field"),
    ("owner", {"create_groups": ["owner"]}, 400, "bad_request"),
    ("owner", {"create_group": ["owner", "intern"]}, 400, "invalid_field"),
    ("owner", {"create_group": "owner"}, 400, "invalid_field"),
    ("owner", {}, 400, "invalid_field"),
])
async def test_who_may_change_what(org: Org, role: str, body: dict[str, Any], status: int, code: str | None) -> None:
    got, answer = await org.call("PUT", "/v1/admin/permissions", role, body)
    assert got == status, answer
    if code is not None:
        assert answer["error"]["code"] == code, answer


async def test_an_admin_does_not_grant_owners_what_they_lack(org: Org) -> None:
    await org.ok("PUT", "/v1/admin/permissions", "owner", {"read_audit": ["admin"]})
    status, body = await org.call("PUT", "/v1/admin/permissions", "admin", {"read_audit": ["admin", "owner"]})
    assert (status, body["error"]["code"]) == (403, "not_permitted")
    status, body = await org.call("PUT", "/v1/admin/permissions", "admin", {"read_audit": None})  # gives owners it
    assert (status, body["error"]["code"]) == (403, "not_permitted")


async def test_a_refused_row_changes_none(org_on: Org) -> None:
    org = org_on
    status, _ = await org.call("PUT", "/v1/admin/permissions", "owner",
                               {"create_group": ["owner", "admin"], "manage_users": ["owner"]})
    assert status == 400
    me = await org.ok("GET", "/v1/me", "member")
    assert "create_group" in me["permissions"]


async def test_the_org_setting_and_the_row_agree(org: Org) -> None:
    """members_create_channels is the create_team_channel row as members see it, both ways."""
    await org.ok("PUT", "/v1/admin/permissions", "owner", {"create_team_channel": ["owner", "admin", "bot"]})
    assert (await org.ok("GET", "/v1/org", "admin"))["members_create_channels"] is False
    await org.ok("PATCH", "/v1/org", "admin", {"members_create_channels": True})
    table = await org.ok("GET", "/v1/admin/permissions", "admin")
    row = next(r for r in table["permissions"] if r["name"] == "create_team_channel")
    assert row["roles"] == ["owner", "admin", "member", "bot"]
    assert (await _create_team_channel(org, "member"))[0] == 201


async def test_a_person_invite_is_for_a_guest(org: Org) -> None:
    """A member's invite is for a guest: the server makes its identity (what was asked for is only the name shown,
    so it cannot be `ceo`'s meeting token, nor squat a login), and it grants no moderation. An admin key's
    invite still names its identity."""
    status, answer = await org.call("POST", f"/v1/rooms/{org.lobby}/tokens", "member",
                                    {"identity": "visitor", "grants": {"moderator": True}})
    assert (status, answer["error"]["code"]) == (403, "not_permitted")
    seen = set()
    for body in ({"identity": "ada"}, {"identity": "ceo", "name": "The CEO"}):
        invite = await org.ok("POST", f"/v1/rooms/{org.lobby}/tokens", "member", body)
        assert re.fullmatch(r"guest-[0-9a-f]{16}", invite["identity"]) and invite["identity"] not in seen
        seen.add(invite["identity"])
        claims = jwt.decode(invite["token"], options={"verify_signature": False})
        assert claims["sub"] == invite["identity"] and claims["name"] == body.get("name", body["identity"])
    by_key = await org.ok("POST", f"/v1/rooms/{org.lobby}/tokens", None, {"identity": "ceo"})
    assert by_key["identity"] == "ceo"
    started = await org.ok("POST", "/v1/rooms", "member", {"name": "standup"})
    assert started["token"] and started["identity"] == "mel"
    again = await org.ok("POST", "/v1/rooms", "admin", {"name": "standup"})  # live already: no moderator token
    assert "token" not in again
    status, answer = await org.call("POST", "/v1/rooms", "member", {"name": "open-house", "guests": True})
    assert status == 201  # members hold invite_guests by default
    await org.ok("PUT", "/v1/admin/permissions", "owner", {"invite_guests": ["owner", "admin"]})
    status, answer = await org.call("POST", "/v1/rooms", "member", {"name": "open-house-2", "guests": True})
    assert (status, answer["error"]["details"]["permission"]) == (403, "invite_guests")


# -- the chat socket -----------------------------------------------------------------------------------------------


async def next_of_type(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 5) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        frame: dict[str, Any] = await ws.receive_json(timeout=max(0.01, deadline - asyncio.get_running_loop().time()))
        if frame.get("type") == kind:
            return frame


@pytest.mark.parametrize("name", ["staff_cannot_create_groups", "members_create_no_channels", "locked_down"])
async def test_open_sockets_hear_the_new_table_and_rest_follows_it(org: Org, name: str) -> None:
    """Every person's live chat socket gets the table as it now is (each role's list), at once; a meeting
    token's socket (scoped to its meeting) does not; and what the frame says is what REST then does."""
    scenario = SCENARIOS[name]
    expected = {**DEFAULTS, **scenario.expect}
    guest_token = (await org.ok("POST", "/v1/rooms/walk-in/join", None, {"name": "Walk In"}))["token"]
    sockets = {}
    for who, credential in (*((r, org.creds[r]) for r in ROLES), ("meeting", guest_token)):
        ws = await org.http.ws_connect(org.server.url.replace("http", "ws", 1) + "/v1/chat/ws")
        await ws.send_json({"type": "auth", "token": credential})
        assert (await next_of_type(ws, "hello"))["type"] == "hello"
        sockets[who] = ws
    try:
        if scenario.put is not None:
            await org.ok("PUT", "/v1/admin/permissions", "owner", scenario.put)
        if scenario.org is not None:
            await org.ok("PATCH", "/v1/org", "owner", scenario.org)
        for role in ROLES:
            frame = await next_of_type(sockets[role], "permissions")
            held = set(frame["roles"][role]) & set(DEFAULTS)
            assert held == {p for p, roles in expected.items() if role in roles}, (role, frame)
            for permission, action in ACTIONS.items():
                status, _ = await action(org, role)
                assert (200 <= status < 300) == (permission in held), (role, permission, status)
        with pytest.raises(asyncio.TimeoutError):
            await next_of_type(sockets["meeting"], "permissions", timeout=0.5)
    finally:
        for ws in sockets.values():
            await ws.close()


async def test_the_operator_sets_a_row_from_the_cli_and_the_server_follows(tmp_path: Path) -> None:
    """`convene permissions set create_group owner admin` on the server's data directory: ordinary staff cannot
    create groups once the server reads the table; `--default` gives it back; manage_users stays with admins."""
    from signaling.cli import main as cli_main

    data = str(tmp_path / "data")
    assert await asyncio.to_thread(cli_main, ["permissions", "set", "create_group", "owner", "admin",
                                              "--data-dir", data]) == 0
    assert await asyncio.to_thread(cli_main, ["permissions", "set", "manage_users", "owner",
                                              "--data-dir", data]) == 2
    async with running_server(server_config(tmp_path / "data")) as server:
        async with aiohttp.ClientSession() as http:
            org = await setup_org(server, http)
            status, body = await _create_group(org, "member")
            assert (status, body["error"]["details"]["permission"]) == (403, "create_group")
            assert (await _create_group(org, "admin"))[0] == 201
            assert await asyncio.to_thread(cli_main, ["permissions", "set", "create_group", "--default",
                                                      "--data-dir", data]) == 0
            await asyncio.sleep(1.2)  # another process's change: read within a second
            assert (await _create_group(org, "member"))[0] == 201


async def test_staff_rows_are_never_given_to_guests_or_bots(org: Org) -> None:
    for row, roles in (("manage_users", ["owner", "admin", "bot"]), ("read_audit", ["owner", "admin", "guest"]),
                       ("manage_integrations", ["owner", "admin", "bot"])):
        status, body = await org.call("PUT", "/v1/admin/permissions", "owner", {row: roles})
        assert (status, body["error"]["code"], body["error"]["details"]["field"]) == (400, "invalid_field", row)
    table = await org.ok("GET", "/v1/admin/permissions", "owner")
    rows = {r["name"]: set(r["roles"]) for r in table["permissions"]}
    assert rows["manage_users"] == rows["read_audit"] == rows["manage_integrations"] == {"owner", "admin"}


async def test_user_tokens_are_minted_only_for_lower_ranks(org: Org) -> None:
    """A user token acts as its user: with manage_users a member still may not become a peer, nor an admin
    another admin; the operator's admin key keeps minting up to admins."""
    service = org.server.app[CHAT_API].service
    await service.add_user(None, "max", "member")
    await service.add_user(None, "abe", "admin")
    await org.ok("PUT", "/v1/admin/permissions", "owner", {"manage_users": ["owner", "admin", "member"]})
    for role, login, status in (("member", "max", 403), ("member", "ada", 403), ("member", "gus", 201),
                                ("member", "mel", 201), ("admin", "abe", 403), ("admin", "olive", 403),
                                ("admin", "max", 201), ("owner", "ada", 201), (None, "abe", 201),
                                (None, "olive", 403)):
        got, body = await org.call("POST", f"/v1/users/{login}/tokens", role, {"ttl": 600})
        assert got == status, (role, login, got, body)
        if status == 403:
            assert body["error"]["code"] == "not_permitted"


async def test_the_directory_sync_asks_the_manage_users_row(org: Org) -> None:
    """A sync adds and deactivates people: it is manage_users, as /v1/users is, and follows the organisation's row."""
    status, body = await org.call("GET", "/v1/admin/ldap/status", "member")
    assert (status, body["error"]["code"]) == (403, "not_permitted"), body
    await org.ok("PUT", "/v1/admin/permissions", "owner", {"manage_users": ["owner", "admin", "member"]})
    assert (await org.ok("GET", "/v1/admin/ldap/status", "member"))["configured"] is False
    status, body = await org.call("POST", "/v1/admin/ldap/sync", "member")
    assert (status, body["error"]["code"]) == (409, "directory_not_configured"), body
