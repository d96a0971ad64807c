"""Single sign-on against a real OpenID Connect provider (panva's oidc-provider on Node, started on loopback).

The whole authorization code flow runs as a browser would: our /start, the provider's login and consent pages,
our callback, then the session at /v1/me. The provider is real and unmodified; what a hostile or mistaken party
could send (a tampered state, an ID token for another client or from another issuer, a reused user name) is
made from its real answers.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from yarl import URL

from chat.web import CHAT_API
from common.errors import OidcFailed
from identity.appkeys import DATABASE
from identity.oidc import OidcClient, OidcSettings
from identity.oidc_flow import FLOW_COOKIE, PendingFlow
from identity.signin import SESSION_COOKIE
from store.schema import chat_users, oidc_identities
from tests.conftest import RunningServer, free_port, running_server, server_config
from tests.identity.oidc_idp import (CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, Provider,
                                     oidc_provider, sign_in_at_provider, signing_key)
from tests.postgres import PostgresServer
from tests.signaling.test_no_secrets import access_log  # noqa: F401 (the fixture: every access log line)

pytestmark = pytest.mark.slow
CALLBACK = "/v1/auth/oidc/callback"
SCOPES = ("openid", "profile", "email", "org")


@dataclass
class Sso:
    server: RunningServer
    provider: Provider

    def browser(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies on 127.0.0.1

    async def to_callback(self, http: aiohttp.ClientSession, subject: str) -> str:
        """/start, then the provider's pages as `subject`: the callback address the provider sends back."""
        async with http.get(self.server.url + "/v1/auth/oidc/start", allow_redirects=False) as resp:
            assert resp.status == 302, await resp.text()
            location = resp.headers["Location"]
        return await sign_in_at_provider(http, location, subject, self.server.url + CALLBACK)

    async def sign_in(self, http: aiohttp.ClientSession, subject: str, **headers: str) -> aiohttp.ClientResponse:
        callback = await self.to_callback(http, subject)
        async with http.get(callback, allow_redirects=False, headers=headers) as resp:
            await resp.read()
            return resp


@asynccontextmanager
async def sso_server(tmp_path: Path, **overrides: Any) -> AsyncIterator[Sso]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with oidc_provider(tmp_path, [url + CALLBACK]) as provider:
        config = server_config(tmp_path / "data", port=port, oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID,
                               oidc_client_secret=CLIENT_SECRET, oidc_scopes=SCOPES, **overrides)
        async with running_server(config) as server:
            yield Sso(server, provider)


def _cookie(http: aiohttp.ClientSession, name: str) -> str | None:
    for cookie in http.cookie_jar:
        if cookie.key == name:
            return cookie.value
    return None


async def _user_row(sso: Sso, login: str) -> Any:
    async with sso.server.app[DATABASE].read() as conn:
        return (await conn.execute(select(chat_users).where(chat_users.c.login == login))).first()


async def test_sso_signs_in_a_new_member_with_a_working_session(tmp_path: Path, access_log: list[str]) -> None:
    async with sso_server(tmp_path) as sso, sso.browser() as http:
        async with http.get(sso.server.url + "/v1/auth/methods") as resp:
            assert await resp.json() == {"password": True, "oidc": True}
        async with http.get(sso.server.url + "/v1/auth/oidc/start", allow_redirects=False) as resp:
            start = urllib.parse.urlsplit(resp.headers["Location"])
            query = dict(urllib.parse.parse_qsl(start.query))
            flow_cookie = resp.cookies[FLOW_COOKIE]
        assert f"{start.scheme}://{start.netloc}" == sso.provider.issuer
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
        assert query["client_id"] == CLIENT_ID and query["redirect_uri"] == sso.server.url + CALLBACK
        assert query["state"] and query["nonce"] and "openid" in query["scope"].split()
        assert flow_cookie["httponly"] and flow_cookie["samesite"] == "Lax"
        assert query["state"] not in flow_cookie.value and query["nonce"] not in flow_cookie.value  # sealed

        callback = await sign_in_at_provider(http, start.geturl(), "sub-alice-0001", sso.server.url + CALLBACK)
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["code"]
        async with http.get(callback, allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/"
            session = resp.cookies[SESSION_COOKIE]
            assert session["httponly"] and session["samesite"] == "Lax"
            assert resp.cookies[FLOW_COOKIE].value == ""  # the flow cookie is spent

        async with http.get(sso.server.url + "/v1/me") as resp:
            me = await resp.json()
            assert resp.status == 200, me
        assert me["login"] == "alice" and me["role"] == "member" and me["name"] == "Alice Wong"
        assert me["department"] == ["研发部", "前端组"] and me["csrf"]
        assert (me["user"]["email"], me["user"]["title"], me["user"]["source"]) == (
            "alice@example.com", "Engineer", "oidc")
        # A write with the cookie needs the CSRF token, as after a password sign-in.
        async with http.post(sso.server.url + "/v1/auth/logout", headers={"X-CSRF-Token": me["csrf"]}) as resp:
            assert resp.status == 200

        async with sso.server.app[DATABASE].read() as conn:
            link = (await conn.execute(select(oidc_identities))).one()
        assert (link.issuer, link.subject, link.login) == (sso.provider.issuer, "sub-alice-0001", "alice")
        await asyncio.sleep(0.1)
        text = "\n".join(access_log)
        assert f"{CALLBACK}?[redacted]" in text and code not in text and query["state"] not in text


async def test_second_sign_in_keeps_the_role_and_refreshes_the_profile(tmp_path: Path) -> None:
    async with sso_server(tmp_path) as sso:
        async with sso.browser() as http:
            assert (await sso.sign_in(http, "sub-alice-0001")).status == 302
        headers = {"Authorization": f"Bearer {sso.server.api_key}"}
        async with aiohttp.ClientSession() as admin:
            async with admin.patch(sso.server.url + "/v1/users/alice", json={"role": "admin", "name": "Old"},
                                   headers=headers) as resp:
                assert resp.status == 200, await resp.text()
        async with sso.browser() as http:
            assert (await sso.sign_in(http, "sub-alice-0001")).status == 302
        row = await _user_row(sso, "alice")
        assert row.role == "admin" and row.name == "Alice Wong"  # role kept, name from the provider

        # A user the directory keeps stays as it says.
        await sso.server.app[DATABASE].write(lambda conn: conn.execute(update(chat_users).where(
            chat_users.c.login == "alice").values(source="ldap", name="Alice (directory)")))
        async with sso.browser() as http:
            assert (await sso.sign_in(http, "sub-alice-0001")).status == 302
        alice = await _user_row(sso, "alice")
        assert (alice.role, alice.name, alice.source) == ("admin", "Alice (directory)", "ldap")
        # Who was made and changed by signing in is in the audit log, the person as the actor.
        async with aiohttp.ClientSession() as admin, admin.get(
                sso.server.url + "/v1/audit", headers={"Authorization": f"Bearer {sso.server.api_key}"}) as resp:
            events = [json.loads(line)["event"] for line in (await resp.text()).splitlines()]
        made = [e for e in events if e["event"] == "user.create" and e["object"]["id"] == "alice"]
        assert len(made) == 1 and made[0]["actor"]["login"] == "alice" and made[0]["after"]["source"] == "oidc"


async def _local_owner(sso: Sso, login: str) -> None:
    """An owner with a local password, as `convene users add --role owner` makes."""
    api = sso.server.app[CHAT_API]
    await api.service.add_user(None, login, "owner", "", "")
    assert api.accounts is not None
    await api.accounts.set_password(login, "owner-password-123456")


async def _existing_rows(conn: AsyncConnection) -> None:
    """bob: a guest row SSO did not make; carol: a directory person."""
    await conn.execute(chat_users.insert().values(login="bob", role="guest", name="Bobby", created_at=1.0))
    await conn.execute(chat_users.insert().values(login="carol", role="member", name="Carol", source="ldap",
                                                  created_at=1.0))


async def test_first_sign_in_never_takes_over_an_existing_account(tmp_path: Path) -> None:
    """The provider's `preferred_username` "admin" must not become the local owner admin, nor "bob" a guest row
    someone squatted, nor "carol" the directory's person: oidc_account_exists, nothing bound, no session."""
    async with sso_server(tmp_path) as sso:
        # The owner `admin` with a local password (as `convene users add` makes).
        await _local_owner(sso, "admin")
        await sso.server.app[DATABASE].write(_existing_rows)
        for subject in ("sub-admin-0006", "sub-bob-0002", "sub-carol-0007"):
            async with sso.browser() as http:
                resp = await sso.sign_in(http, subject, Accept="text/html")
                assert resp.headers["Location"] == "/signin?error=oidc_account_exists", subject
                assert _cookie(http, SESSION_COOKIE) is None
            async with sso.browser() as http:  # the JSON client gets the typed error
                resp = await sso.sign_in(http, subject)
                assert resp.status == 403
        async with sso.server.app[DATABASE].read() as conn:
            assert (await conn.execute(select(oidc_identities))).first() is None
        assert (await _user_row(sso, "bob")).role == "guest"
        assert (await _user_row(sso, "admin")).role == "owner"


async def test_link_existing_opt_in_links_plain_accounts_but_never_privileged_ones(tmp_path: Path) -> None:
    async with sso_server(tmp_path, oidc_link_existing=True) as sso:
        await _local_owner(sso, "admin")
        await sso.server.app[DATABASE].write(_existing_rows)
        async with sso.browser() as http:
            resp = await sso.sign_in(http, "sub-admin-0006", Accept="text/html")
            assert resp.headers["Location"] == "/signin?error=oidc_account_exists"
        for subject, login in (("sub-bob-0002", "bob"), ("sub-carol-0007", "carol")):
            async with sso.browser() as http:
                assert (await sso.sign_in(http, subject)).status == 302
                async with http.get(sso.server.url + "/v1/me") as me:
                    assert (await me.json())["login"] == login
        bob, carol = await _user_row(sso, "bob"), await _user_row(sso, "carol")
        assert (bob.role, bob.name, bob.title) == ("member", "Bob Li", "Account manager")  # the guest promoted
        assert (carol.source, carol.name) == ("ldap", "Carol")  # the directory stays the authority


async def test_sso_on_postgresql_binds_and_signs_in_once_per_subject(tmp_path: Path, postgres: PostgresServer) -> None:
    async with sso_server(tmp_path, database_url=postgres.create_database()) as sso:
        for _ in range(2):
            async with sso.browser() as http:
                assert (await sso.sign_in(http, "sub-bob-0002")).status == 302
                async with http.get(sso.server.url + "/v1/me") as resp:
                    assert (await resp.json())["login"] == "bob"
        async with sso.browser() as http:
            resp = await sso.sign_in(http, "sub-alice-0001")
            assert resp.status == 302
        async with sso.server.app[DATABASE].read() as conn:
            links = (await conn.execute(select(oidc_identities.c.subject, oidc_identities.c.login)
                                        .order_by(oidc_identities.c.login))).all()
        assert [tuple(r) for r in links] == [("sub-alice-0001", "alice"), ("sub-bob-0002", "bob")]


async def test_tampered_or_missing_state_is_refused(tmp_path: Path) -> None:
    async with sso_server(tmp_path) as sso, sso.browser() as http:
        callback = await sso.to_callback(http, "sub-alice-0001")
        parts = urllib.parse.urlsplit(callback)
        query = dict(urllib.parse.parse_qsl(parts.query))
        tampered = parts._replace(query=urllib.parse.urlencode({**query, "state": query["state"][:-2] + "xx"}))
        async with http.get(tampered.geturl(), allow_redirects=False) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "oidc_state_mismatch"
        assert _cookie(http, SESSION_COOKIE) is None
        # The right state, but in another browser (no flow cookie): a login CSRF attempt.
        async with sso.browser() as other, other.get(callback, allow_redirects=False,
                                                     headers={"Accept": "text/html"}) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/signin?error=oidc_state_mismatch"
            assert SESSION_COOKIE not in resp.cookies
        # A forged flow cookie is refused as well.
        async with sso.browser() as forger:
            forger.cookie_jar.update_cookies({FLOW_COOKIE: "A" * 80}, response_url=URL(sso.server.url))
            async with forger.get(callback, allow_redirects=False) as resp:
                assert (await resp.json())["error"]["code"] == "oidc_state_mismatch"
        # The refusals did not spend this browser's sign-in: its own callback still signs in, once.
        async with http.get(callback, allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/"
        async with http.get(callback, allow_redirects=False) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "oidc_state_mismatch"


async def test_deactivated_user_cannot_sign_in(tmp_path: Path) -> None:
    async with sso_server(tmp_path) as sso:
        async with sso.browser() as http:
            assert (await sso.sign_in(http, "sub-alice-0001")).status == 302
            async with aiohttp.ClientSession() as admin, admin.post(
                    sso.server.url + "/v1/users/alice/deactivate",
                    headers={"Authorization": f"Bearer {sso.server.api_key}"}) as resp:
                assert resp.status == 200, await resp.text()
            async with http.get(sso.server.url + "/v1/me") as resp:
                assert resp.status == 401  # the session from before ends too
        async with sso.browser() as http:
            resp = await sso.sign_in(http, "sub-alice-0001")
            assert resp.status == 403 and _cookie(http, SESSION_COOKIE) is None


async def test_reused_user_name_and_bad_login_claims_are_refused(tmp_path: Path) -> None:
    async with sso_server(tmp_path) as sso:
        async with sso.browser() as http:
            assert (await sso.sign_in(http, "sub-alice-0001")).status == 302
        async with sso.browser() as http:  # another subject the provider now calls "alice"
            resp = await sso.sign_in(http, "sub-newalice-0003", Accept="text/html")
            assert resp.headers["Location"] == "/signin?error=oidc_subject_mismatch"
            assert _cookie(http, SESSION_COOKIE) is None
        async with sso.browser() as http:
            resp = await sso.sign_in(http, "sub-badname-0004", Accept="text/html")
            assert resp.headers["Location"] == "/signin?error=oidc_claim_invalid"
        assert await _user_row(sso, "no spaces allowed") is None
        await sso.server.app[DATABASE].write(lambda conn: conn.execute(chat_users.insert().values(
            login="robot", role="bot", name="Robot", created_at=1.0)))
        async with sso.browser() as http:  # a bot's login is not a person's
            resp = await sso.sign_in(http, "sub-robot-0005", Accept="text/html")
            assert resp.headers["Location"] == "/signin?error=oidc_claim_invalid"
        assert (await _user_row(sso, "robot")).name == "Robot"


async def test_a_sign_in_cancelled_at_the_provider_is_refused(tmp_path: Path) -> None:
    async with sso_server(tmp_path) as sso, sso.browser() as http:
        async with http.get(sso.server.url + "/v1/auth/oidc/start", allow_redirects=False) as resp:
            location = resp.headers["Location"]
        callback = await sign_in_at_provider(http, location, "sub-alice-0001", sso.server.url + CALLBACK,
                                             cancel=True)
        assert "error=access_denied" in callback
        async with http.get(callback, allow_redirects=False, headers={"Accept": "text/html"}) as resp:
            assert resp.headers["Location"] == "/signin?error=oidc_denied"
        assert _cookie(http, SESSION_COOKIE) is None and await _user_row(sso, "alice") is None


async def test_without_oidc_configured_the_routes_say_so(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/v1/auth/methods") as resp:
            assert await resp.json() == {"password": True, "oidc": False}
        async with http.get(server.url + "/v1/auth/oidc/start", allow_redirects=False) as resp:
            assert resp.status == 404 and (await resp.json())["error"]["code"] == "oidc_not_configured"


# ID-token verification, with real tokens of the provider --------------------------------------------------

def _client(issuer: str, client_id: str, secret: str, redirect_uri: str) -> OidcClient:
    return OidcClient(OidcSettings(issuer=issuer, client_id=client_id, client_secret=secret,
                                   redirect_uri=redirect_uri, scopes=SCOPES))


async def _id_token(client: OidcClient, subject: str) -> tuple[str, PendingFlow]:
    """A real ID token the provider issues to `client` (the flow driven as a browser, the code redeemed)."""
    flow = PendingFlow.start()
    return (await client.redeem(await _code(client, flow, subject), flow))["id_token"], flow


async def test_id_token_for_another_client_or_issuer_or_nonce_is_refused(tmp_path: Path) -> None:
    redirect = f"http://127.0.0.1:{free_port()}{CALLBACK}"  # never requested: the code is read from the address
    key = signing_key()  # both providers sign with it, so only the issuer tells their tokens apart
    async with oidc_provider(tmp_path, [redirect], key) as first, oidc_provider(tmp_path, [redirect], key) as second:
        ours = _client(first.issuer, CLIENT_ID, CLIENT_SECRET, redirect)
        other_app = _client(first.issuer, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, redirect)
        other_issuer = _client(second.issuer, CLIENT_ID, CLIENT_SECRET, redirect)
        try:
            token, flow = await _id_token(ours, "sub-bob-0002")
            assert (await ours.verify_id_token(token, flow.nonce))["sub"] == "sub-bob-0002"
            with pytest.raises(OidcFailed, match="nonce"):
                await ours.verify_id_token(token, PendingFlow.start().nonce)

            token, flow = await _id_token(other_app, "sub-bob-0002")
            assert (await other_app.verify_id_token(token, flow.nonce))["aud"] == OTHER_CLIENT_ID
            with pytest.raises(OidcFailed, match="(?i)audience"):
                await ours.verify_id_token(token, flow.nonce)

            token, flow = await _id_token(other_issuer, "sub-bob-0002")
            assert (await other_issuer.verify_id_token(token, flow.nonce))["iss"] == second.issuer
            with pytest.raises(OidcFailed, match="(?i)issuer"):
                await ours.verify_id_token(token, flow.nonce)

            with pytest.raises(OidcFailed):  # a token whose signature no longer matches its claims
                head, payload, signature = token.split(".")
                await ours.verify_id_token(f"{head}.{payload}.{signature[:-4]}AAAA", flow.nonce)
        finally:
            for client in (ours, other_app, other_issuer):
                await client.close()


async def _code(client: OidcClient, flow: PendingFlow, subject: str) -> str:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        callback = await sign_in_at_provider(http, await client.authorization_url(flow), subject,
                                             client.settings.redirect_uri)
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["code"]


async def test_a_code_needs_its_own_client_and_pkce_verifier(tmp_path: Path) -> None:
    redirect = f"http://127.0.0.1:{free_port()}{CALLBACK}"
    async with oidc_provider(tmp_path, [redirect]) as provider:
        ours = _client(provider.issuer, CLIENT_ID, CLIENT_SECRET, redirect)
        other_app = _client(provider.issuer, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, redirect)
        try:
            flow = PendingFlow.start()
            with pytest.raises(OidcFailed):  # issued to other-app, redeemed by us
                await ours.identity(await _code(other_app, flow, "sub-bob-0002"), flow)
            flow = PendingFlow.start()
            code = await _code(ours, flow, "sub-bob-0002")
            wrong_verifier = PendingFlow(flow.state, flow.nonce, PendingFlow.start().verifier, flow.expires_at)
            with pytest.raises(OidcFailed):  # PKCE: only who started the sign-in can redeem its code
                await ours.identity(code, wrong_verifier)
            flow = PendingFlow.start()
            identity = await ours.identity(await _code(ours, flow, "sub-bob-0002"), flow)
            assert (identity.login, identity.email, identity.title) == ("bob", "bob@example.com", "Account manager")
        finally:
            await ours.close()
            await other_app.close()
