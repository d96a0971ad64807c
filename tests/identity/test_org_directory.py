"""Each organisation's own directory connection (#10), against real servers: two slapd instances (the default
organisation's, from the --ldap-* flags, and acme's, stored with `convene orgs set-directory`) and one real
OpenID Connect provider with two clients (the default organisation's, from the --oidc-* flags, and acme's, stored
with `convene orgs set-sso`). Everything about acme is set up with the real CLI.

Asserted: a sign-in at a Host binds against that organisation's directory only (a person of the other directory
is `invalid_credentials`), an acme admin's sync and status are acme's and its people land in acme, the default
organisation's sync leaves acme's people alone, the periodic sync covers both, SSO at acme's Host goes to acme's
client and lands the person in acme, and the stored secrets are sealed (not in the row, not in `orgs show`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from chat.directory_web import DIRECTORY_SYNCS
from chat.web import CHAT_API
from signaling.oidc_routes import ORG_OIDC_CLIENTS
from identity.appkeys import DATABASE
from identity.sealed import SecretSealer
from identity.signin import SESSION_COOKIE
from store.schema import chat_users, oidc_identities, org_directories
from tests.conftest import RunningServer, free_port, running_server, server_config
from tests.identity.oidc_idp import (CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, Provider,
                                     oidc_provider, sign_in_at_provider)
from tests.identity.slapd import SERVICE_DN, SERVICE_PW, SUFFIX, Slapd, group_ldif, person_ldif, running_slapd

pytestmark = pytest.mark.slow  # two directories, an OIDC provider, six `convene` processes
ROOT = Path(__file__).resolve().parents[2]
ACME = "acme.test"
CALLBACK = "/v1/auth/oidc/callback"
OWNER_PASSWORD = "acme owner password 1"
PW = {"dina": "dina-password-1", "aaron": "aaron-password-2", "amy": "amy-password-33",
      "acme-dina": "another-dina-password"}
# Acme's directory holds its own people, and also a `dina` (a different person from the default directory's).
ACME_GROUPS = f"""
[[group]]
dn = "cn=acme-admins,ou=groups,{SUFFIX}"
role = "admin"

[[group]]
dn = "cn=acme-eng,ou=groups,{SUFFIX}"
channels = ["eng"]
"""


def run_convene(data_dir: Path, *args: str, stdin: str = "", database_url: str | None = None
                ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"CONVENE_DATABASE_URL": database_url} if database_url else {})}
    return subprocess.run([sys.executable, "-m", "signaling.cli", *args, "--data-dir", str(data_dir)], cwd=ROOT,
                          input=stdin, capture_output=True, text=True, timeout=60, env=env)


def convene(data_dir: Path, *args: str, stdin: str = "", database_url: str | None = None) -> str:
    out = run_convene(data_dir, *args, stdin=stdin, database_url=database_url)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def directories(tmp_path: Path) -> Iterator[tuple[Slapd, Slapd]]:
    with running_slapd(tmp_path / "default", person_ldif("dina", PW["dina"], "Dina (default)")) as default, \
            running_slapd(tmp_path / "acme", person_ldif("aaron", PW["aaron"], "Aaron", "Eng")
                          + person_ldif("amy", PW["amy"], "Amy", "Eng/Ops")
                          + person_ldif("dina", PW["acme-dina"], "Dina (acme)")
                          + group_ldif("acme-admins", ["amy"]) + group_ldif("acme-eng", ["aaron", "amy"])) as acme:
        yield default, acme


@dataclass
class World:
    server: RunningServer
    default_dir: Slapd
    acme_dir: Slapd
    provider: Provider
    data: Path
    database_url: str | None

    async def cli_refused(self, *args: str, stdin: str = "") -> str:
        """`convene …` that must fail: its standard error."""
        out = await asyncio.to_thread(run_convene, self.data, *args, stdin=stdin, database_url=self.database_url)
        assert out.returncode != 0, out.stdout
        return out.stderr

    async def cli(self, *args: str) -> str:
        """`convene …` on this world's store, on a thread: the in-process server must keep its loop (and with it
        SQLite's write lock) moving meanwhile."""
        return await asyncio.to_thread(convene, self.data, *args, database_url=self.database_url)

    async def call(self, method: str, path: str, host: str | None = None, token: str | None = None,
                   body: Any = None, expect: int | None = None) -> Any:
        headers = {"Host": host} if host else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            async with http.request(method, self.server.url + path, json=body, headers=headers) as resp:
                got = await resp.json(content_type=None)
                assert expect is None or resp.status == expect, (method, path, host, resp.status, got)
                return got

    async def sign_in(self, host: str | None, login: str, password: str, expect: int) -> Any:
        return await self.call("POST", "/v1/auth/login", host, body={"login": login, "password": password},
                               expect=expect)


@pytest.fixture
async def world(directories: tuple[Slapd, Slapd], tmp_path: Path, request: pytest.FixtureRequest
                ) -> AsyncIterator[World]:
    """Parametrized indirectly with "postgres" it runs on a real PostgreSQL, else on SQLite; with "periodic" the
    server syncs every directory every second (after its first 5 s)."""
    default_dir, acme_dir = directories
    data = tmp_path / "data"
    url = request.getfixturevalue("postgres").create_database() if getattr(request, "param", "") == "postgres" \
        else None
    port = free_port()
    redirects = [f"http://127.0.0.1:{port}{CALLBACK}", f"http://{ACME}{CALLBACK}"]
    async with oidc_provider(tmp_path, redirects) as provider:
        convene(data, "orgs", "add", "acme", "--host", ACME, database_url=url)
        convene(data, "users", "add", "boss", "--org", "acme", "--role", "owner", "--password-stdin",
                stdin=OWNER_PASSWORD + "\n", database_url=url)
        groups = tmp_path / "acme-groups.toml"
        groups.write_text(ACME_GROUPS)
        convene(data, "orgs", "set-directory", "acme", "--ldap-url", acme_dir.url, "--ldap-bind-dn", SERVICE_DN,
                "--ldap-bind-password-stdin", "--ldap-base-dn", SUFFIX, "--ldap-ca-file", str(acme_dir.ca_file),
                "--ldap-group-map", str(groups), stdin=SERVICE_PW + "\n", database_url=url)
        convene(data, "orgs", "set-sso", "acme", "--oidc-issuer", provider.issuer, "--oidc-client-id",
                OTHER_CLIENT_ID, "--oidc-client-secret-stdin", stdin=OTHER_CLIENT_SECRET + "\n", database_url=url)
        config = server_config(
            data, port=port, ldap_url=default_dir.url, ldap_bind_dn=SERVICE_DN, ldap_bind_password=SERVICE_PW,
            ldap_base_dn=SUFFIX, ldap_ca_file=default_dir.ca_file,
            ldap_sync_interval_seconds=1 if getattr(request, "param", "") == "periodic" else 0,
            oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET,
            database_url=url)
        async with running_server(config) as server:
            yield World(server, default_dir, acme_dir, provider, data, url)


async def _user(world: World, login: str) -> Any:
    async with world.server.app[DATABASE].read() as conn:
        return (await conn.execute(select(chat_users).where(chat_users.c.login == login))).first()


async def test_sign_in_binds_against_the_organisations_own_directory(world: World) -> None:
    signed = await world.sign_in(ACME, "aaron", PW["aaron"], 200)
    me = await world.call("GET", "/v1/me", ACME, signed["token"], expect=200)
    assert (me["org"], me["login"], me["user"]["source"], me["name"]) == ("acme", "aaron", "ldap", "Aaron")
    # A person of the default organisation's directory is nobody at acme, and the reverse.
    refused = await world.sign_in(ACME, "dina", PW["dina"], 401)
    assert refused["error"]["code"] == "invalid_credentials"
    refused = await world.sign_in(None, "aaron", PW["aaron"], 401)
    assert refused["error"]["code"] == "invalid_credentials"
    signed = await world.sign_in(None, "dina", PW["dina"], 200)
    me = await world.call("GET", "/v1/me", None, signed["token"], expect=200)
    assert (me["org"], me["name"]) == ("default", "Dina (default)")
    # Acme's own `dina` (its directory's password) cannot sign in as the default organisation's dina either.
    refused = await world.sign_in(ACME, "dina", PW["acme-dina"], 401)
    assert refused["error"]["code"] == "invalid_credentials"
    assert (await _user(world, "dina")).org_id == "default"
    # Acme's local owner still signs in with a password.
    await world.sign_in(ACME, "boss", OWNER_PASSWORD, 200)


@pytest.mark.parametrize("world", ["sqlite", "postgres"], indirect=True)
async def test_sync_and_status_are_the_admins_own_organisations(world: World) -> None:
    await world.sign_in(None, "dina", PW["dina"], 200)  # the default organisation's dina exists
    boss = (await world.sign_in(ACME, "boss", OWNER_PASSWORD, 200))["token"]
    report = await world.call("POST", "/v1/admin/ldap/sync", ACME, boss, expect=200)
    assert (report["created"], report["deactivated"]) == (2, 0), report
    assert any("dina" in e and "another organisation" in e for e in report["errors"]), report
    for login, role in (("aaron", "member"), ("amy", "admin")):
        row = await _user(world, login)
        assert (row.org_id, row.role, row.source) == ("acme", role, "ldap")
    assert (await _user(world, "dina")).org_id == "default"  # skipped, not moved
    store = world.server.app[CHAT_API].service.store
    eng = await store.find_channel("eng", "acme")
    assert eng is not None and set(await store.members(eng.id)) == {"aaron", "amy"}
    assert await store.find_channel("eng") is None  # not in the default organisation

    status = await world.call("GET", "/v1/admin/ldap/status", ACME, boss, expect=200)
    assert status["configured"] and status["url"] == world.acme_dir.url
    assert status["last_run"]["created"] == 2 and status["groups_mapped"] == 2
    default_status = await world.call("GET", "/v1/admin/ldap/status", None, world.server.api_key, expect=200)
    assert default_status["url"] == world.default_dir.url

    # The default organisation's sync: its directory, its people; acme's are not "gone" from it.
    report = await world.call("POST", "/v1/admin/ldap/sync", None, world.server.api_key, expect=200)
    assert (report["created"], report["deactivated"]) == (0, 0), report
    assert (await _user(world, "aaron")).directory_active is not False
    assert (await world.sign_in(ACME, "aaron", PW["aaron"], 200))["user"]["login"] == "aaron"

    # The periodic sync runs every configured organisation's, the default one's first.
    assert [s.org for s in await world.server.app[DIRECTORY_SYNCS].all()] == ["default", "acme"]

    # The CLI syncs acme's stored directory into acme: nothing new.
    out = json.loads(await world.cli("ldap", "sync", "--org", "acme"))
    assert (out["created"], out["updated"], out["unchanged"], out["deactivated"]) == (0, 0, 2, 0), out


@pytest.mark.parametrize("world", ["periodic"], indirect=True)
async def test_the_periodic_sync_runs_every_organisations_directory(world: World) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        rows = {login: await _user(world, login) for login in ("dina", "aaron", "amy")}
        if all(rows.values()):
            break
        await asyncio.sleep(0.5)
    assert {login: row.org_id for login, row in rows.items() if row} == {
        "dina": "default", "aaron": "acme", "amy": "acme"}, "the periodic sync did not run both directories"


async def test_the_stored_secrets_are_sealed(world: World) -> None:
    async with world.server.app[DATABASE].read() as conn:
        rows = (await conn.execute(select(org_directories).order_by(org_directories.c.kind))).all()
    assert [(r.org_id, r.kind) for r in rows] == [("acme", "ldap"), ("acme", "oidc")]
    for row, secret in zip(rows, (SERVICE_PW, OTHER_CLIENT_SECRET), strict=True):
        assert secret not in row.settings and secret not in (row.sealed_secret or "")
        assert row.sealed_secret and row.sealed_secret.startswith("v1.")
    shown = await world.cli("orgs", "show", "acme")
    assert SERVICE_PW not in shown and OTHER_CLIENT_SECRET not in shown
    described = json.loads(shown)
    assert described["ldap"]["bind_password"] == described["oidc"]["client_secret"] == "(set, sealed)"
    assert described["ldap"]["url"] == world.acme_dir.url and described["oidc"]["client_id"] == OTHER_CLIENT_ID
    # A sealed value opens only for its own organisation and kind.
    sealer = SecretSealer(b"k" * 32)
    sealed = sealer.seal("s3cret", "org:acme:ldap")
    assert sealer.open(sealed, "org:acme:ldap") == "s3cret"
    for other in ("org:globex:ldap", "org:acme:oidc"):
        with pytest.raises(Exception, match="cannot be opened"):
            sealer.open(sealed, other)
    with pytest.raises(Exception, match="cannot be opened"):
        SecretSealer(b"x" * 32).open(sealed, "org:acme:ldap")


async def _sso(world: World, host: str | None, subject: str) -> tuple[aiohttp.ClientResponse, Any]:
    """/start at `host`, the provider's pages as `subject`, then the callback at `host`: its answer and /v1/me."""
    headers = {"Host": host} if host else {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(world.server.url + "/v1/auth/methods", headers=headers) as resp:
            assert (await resp.json())["oidc"] is True
        async with http.get(world.server.url + "/v1/auth/oidc/start", headers=headers, allow_redirects=False) as resp:
            assert resp.status == 302, await resp.text()
            location = resp.headers["Location"]
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        expected_client = OTHER_CLIENT_ID if host == ACME else CLIENT_ID
        base = f"http://{host}" if host else world.server.url
        assert (query["client_id"], query["redirect_uri"]) == (expected_client, base + CALLBACK)
        callback = await sign_in_at_provider(http, location, subject, base + CALLBACK)
        local = world.server.url + CALLBACK + "?" + urllib.parse.urlsplit(callback).query
        async with http.get(local, headers=headers, allow_redirects=False) as resp:
            body = await resp.read()
            answer = resp
        me = None
        if answer.status == 302:
            async with http.get(world.server.url + "/v1/me", headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                me = await resp.json()
        else:
            me = json.loads(body)
        return answer, me


@pytest.mark.parametrize("world", ["sqlite", "postgres"], indirect=True)
async def test_sso_goes_to_the_organisations_own_provider_and_lands_there(world: World) -> None:
    answer, me = await _sso(world, ACME, "sub-carol-0007")
    assert answer.status == 302 and answer.cookies[SESSION_COOKIE].value
    assert (me["org"], me["login"], me["user"]["source"]) == ("acme", "carol", "oidc")
    answer, me = await _sso(world, None, "sub-alice-0001")
    assert answer.status == 302 and (me["org"], me["login"]) == ("default", "alice")
    async with world.server.app[DATABASE].read() as conn:
        links = {(r.org_id, r.subject, r.login) for r in (await conn.execute(select(oidc_identities))).all()}
    assert links == {("acme", "sub-carol-0007", "carol"), ("default", "sub-alice-0001", "alice")}
    # Carol is acme's: the same person through the default organisation's client is refused, not moved.
    answer, body = await _sso(world, None, "sub-carol-0007")
    assert answer.status == 403 and body["error"]["code"] == "oidc_account_exists"
    assert (await _user(world, "carol")).org_id == "acme"
    # A sign-in started at the default organisation's address cannot be finished at acme's (the flow names its
    # organisation, sealed): not even with a code the provider really issued.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(world.server.url + "/v1/auth/oidc/start", allow_redirects=False) as resp:
            location = resp.headers["Location"]
        callback = await sign_in_at_provider(http, location, "sub-bob-0002", world.server.url + CALLBACK)
        async with http.get(world.server.url + CALLBACK + "?" + urllib.parse.urlsplit(callback).query,
                            headers={"Host": ACME}, allow_redirects=False) as resp:
            body = await resp.json()
            assert resp.status == 400 and body["error"]["code"] == "oidc_state_mismatch", body
    assert await _user(world, "bob") is None
    # Removed with the CLI: the running server stops offering acme's SSO at once; the default one's stays.
    await world.cli("orgs", "set-sso", "acme", "--remove")
    assert (await world.call("GET", "/v1/auth/methods", ACME, expect=200))["oidc"] is False
    refused = await world.call("GET", "/v1/auth/oidc/start", ACME, expect=404)
    assert refused["error"]["code"] == "oidc_not_configured"
    assert (await world.call("GET", "/v1/auth/methods", None, expect=200))["oidc"] is True


async def test_changing_one_setting_keeps_the_rest_and_the_secret_stays_with_its_server(world: World) -> None:
    await world.sign_in(ACME, "aaron", PW["aaron"], 200)  # acme's directory is built and kept
    syncs = world.server.app[DIRECTORY_SYNCS]
    before = await syncs.for_org("acme")
    assert before is not None
    await world.cli("orgs", "set-directory", "acme", "--ldap-attr-title", "title,description")
    shown = json.loads(await world.cli("orgs", "show", "acme"))["ldap"]
    assert (shown["attr_title"], shown["bind_dn"], shown["url"]) == ("title,description", SERVICE_DN,
                                                                     world.acme_dir.url)
    assert (shown["group_map"], shown["ca_pem"], shown["bind_password"]) == (
        "(2 group rule(s))", "(1 certificate(s))", "(set, sealed)")
    # Right after the change, sign-ins at once (five: in-flight attempts count against the address's limit):
    # each gets the rebuilt directory (one), none a 500.
    logins = ["aaron", "amy", "aaron", "amy", "aaron"]
    signed = await asyncio.gather(*(world.sign_in(ACME, login, PW[login], 200) for login in logins))
    assert [s["user"]["login"] for s in signed] == logins
    after = await syncs.for_org("acme")
    assert after is not None and after is not before and after.directory.settings.attr_title == (
        "title", "description")
    for _ in range(100):  # the replaced one's kept connection is closed once it is swapped out
        if before.directory._closed:
            break
        await asyncio.sleep(0.05)
    assert before.directory._closed and before.directory._searcher is None

    # The stored bind password is never sent to a new URL nor as a new bind DN: it must be given again.
    for flag, value in (("--ldap-url", world.default_dir.url), ("--ldap-bind-dn", f"cn=other,{SUFFIX}")):
        refused = await world.cli_refused("orgs", "set-directory", "acme", flag, value)
        assert "secret_required" in refused or "--ldap-bind-password-stdin" in refused, refused
    assert json.loads(await world.cli("orgs", "show", "acme"))["ldap"]["url"] == world.acme_dir.url
    await asyncio.to_thread(convene, world.data, "orgs", "set-directory", "acme", "--ldap-url",
                            world.default_dir.url, "--ldap-ca-file", str(world.default_dir.ca_file),
                            "--ldap-bind-password-stdin", stdin=SERVICE_PW + "\n", database_url=world.database_url)
    moved = json.loads(await world.cli("orgs", "show", "acme"))["ldap"]
    assert (moved["url"], moved["bind_dn"], moved["group_map"]) == (world.default_dir.url, SERVICE_DN,
                                                                    "(2 group rule(s))")
    # Likewise the client secret and a new issuer; another scope keeps the client and its secret.
    refused = await world.cli_refused("orgs", "set-sso", "acme", "--oidc-issuer", "https://idp.other.example")
    assert "--oidc-client-secret-stdin" in refused, refused
    await world.cli("orgs", "set-sso", "acme", "--oidc-scopes", "openid,profile")
    sso = json.loads(await world.cli("orgs", "show", "acme"))["oidc"]
    assert (sso["issuer"], sso["client_id"], sso["scopes"], sso["client_secret"]) == (
        world.provider.issuer, OTHER_CLIENT_ID, ["openid", "profile"], "(set, sealed)")


async def test_a_made_up_port_builds_no_client_and_never_reaches_the_redirect(world: World) -> None:
    clients = world.server.app[ORG_OIDC_CLIENTS]
    for port in range(1, 21):
        assert (await world.call("GET", "/v1/auth/methods", f"{ACME}:{port}", expect=200))["oidc"] is True
    assert clients.builds == 1  # one client for acme, however many ports were named
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(world.server.url + "/v1/auth/oidc/start", headers={"Host": f"{ACME}:4444"},
                            allow_redirects=False) as resp:
            assert resp.status == 302
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(resp.headers["Location"]).query))
    assert query["redirect_uri"] == f"http://{ACME}{CALLBACK}"
    assert clients.builds == 1
    # The settings changed: many first requests at once all answer, and the client is rebuilt once.
    await world.cli("orgs", "set-sso", "acme", "--oidc-scopes", "openid,profile,email")
    answers = await asyncio.gather(*(world.call("GET", "/v1/auth/methods", ACME, expect=200) for _ in range(12)))
    assert all(a["oidc"] for a in answers) and clients.builds == 2
    # A provider's login in the server's bots' name space (cmd_…) makes no person.
    answer, body = await _sso(world, ACME, "sub-cmd-0008")
    assert answer.status == 401 and body["error"]["code"] == "oidc_claim_invalid", body
    assert await _user(world, "cmd_deploy") is None
