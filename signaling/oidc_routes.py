"""Single sign-on through the organisation's OpenID Connect provider, and what the sign-in page offers.

- `GET /v1/auth/methods` (public): `{"password": true, "oidc": bool}`, so /signin shows "Sign in with SSO"
  only where it works.
- `GET /v1/auth/oidc/start`: 302 to the provider with state, nonce and an S256 PKCE challenge; the three
  secrets travel in a sealed, short-lived HttpOnly cookie (identity/oidc_flow.py).
- `GET /v1/auth/oidc/callback?code&state`: checks the state against the cookie, redeems the code, verifies the
  ID token (identity/oidc.py), binds the provider's subject to the login (identity/oidc_links.py), creates the
  user as a member on first sign-in or refreshes their profile (identity/oidc_users.py; never their role), refuses
  a first sign-in whose login is an account SSO did not make (`oidc_account_exists`; --oidc-link-existing links
  those without a password or the owner/admin role), a deactivated account or a bot's login, and starts
  the same session as a password
  sign-in (cookie + CSRF), then 302 to the home page /.

Each organisation has its own provider: the default organisation's is the server's --oidc-* flags, another's
the one stored with `convene orgs set-sso` (identity/org_directories.py), whose redirect URI is at the
organisation's own Host (`{scheme}://{host}/v1/auth/oidc/callback`). The user lands in the organisation whose
Host the sign-in came to, and the subject is bound per (organisation, issuer, subject); a login another
organisation holds is refused (`oidc_account_exists`). A browser that fails lands on `/signin?error=<code>`;
  a client that does not ask for HTML gets the typed JSON error. The access log never writes this route's query.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from dataclasses import dataclass

from aiohttp import web

from chat.web import CHAT_API, ChatApi
from common.config import Config
from common.names import server_reserved
from common.errors import (AccountDisabled, ConveneError, InvalidConfig, InvalidField, NotReady, OidcAccountExists,
                           OidcClaimInvalid, OidcDenied, OidcNotConfigured, OidcStateMismatch, OidcUnavailable)
from common.ratelimit import RateLimiter
from chat.service import valid_login
from identity.appkeys import DATABASE
from identity.oidc import CALLBACK_PATH, OidcClient, OidcIdentity, OidcSettings
from identity.oidc_flow import FLOW_COOKIE, FLOW_PATH, FLOW_SECONDS, FlowSealer, PendingFlow
from identity.oidc_links import OidcLinks
from identity.oidc_users import SOURCE, OidcUsers
from identity.org_directories import OIDC, OrgConnections, oidc_settings
from identity.orgs import DEFAULT_ORG, host_name, request_org
from identity.sealed import SecretSealer
from identity.passwords import Account
from chat.model import User
from identity.secrets_store import server_secret
from identity.signin import set_session_cookie
from signaling.appkeys import CONFIG

log = logging.getLogger("convene.signaling.oidc")

START_PATH = "/v1/auth/oidc/start"
AFTER_SIGN_IN = "/"  # the home page (meetings, channels, tasks), where a password sign-in goes too
# Each start and callback may cost a request to the provider. Per client address, which an office behind one NAT
# shares: a morning's sign-ins pass (60 at once, then 5 a second), a loop hammering the provider does not.
STARTS_PER_SECOND, STARTS_BURST = 5.0, 60


RETIRE_AFTER_SECONDS = 60.0  # a replaced client is closed this long after: longer than any call it has under way


@dataclass
class _OrgClients:
    version: float
    link_existing: bool
    by_origin: dict[str, OidcClient]  # one per redirect origin: a stored host with the public scheme and port


class OrgOidcClients:
    """Each non-default organisation's OidcClients, made from its stored provider and kept while the stored row's
    `updated_at` stays the same (their discovery documents and keys stay cached). There is one per redirect origin,
    and an origin is only ever built from one of the organisation's stored hosts and the server's own scheme and
    port (`redirect_origin`), so a client cannot make us build more than a few.

    Rebuilding is serialised per organisation, and a replaced client is swapped out first and closed only
    RETIRE_AFTER_SECONDS later, so sign-ins already talking to the provider through it finish."""

    def __init__(self, connections: OrgConnections, retire_after: float = RETIRE_AFTER_SECONDS) -> None:
        self.connections = connections
        self.retire_after = retire_after
        self.builds = 0  # clients made (a figure for tests and logs: discovery is fetched once per client)
        self._orgs: dict[str, _OrgClients] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._retiring: set[asyncio.Task[None]] = set()

    async def for_org(self, org: str, origin: str) -> tuple[OidcClient, bool] | None:
        """The client and its link_existing setting; None when the organisation has no provider."""
        version = await self.connections.version(org, OIDC)
        found = self._current(org, version, origin)
        if found is not None or version is None:
            if version is None:
                self._retire_org(org)
            return found
        async with self._locks.setdefault(org, asyncio.Lock()):
            version = await self.connections.version(org, OIDC)  # another sign-in may have rebuilt meanwhile
            found = self._current(org, version, origin)
            if found is not None:
                return found
            stored = None if version is None else await self.connections.get(org, OIDC)
            if stored is None:
                self._retire_org(org)
                return None
            held = self._orgs.get(org)
            if held is None or held.version != stored.updated_at:
                self._retire_org(org)
                held = _OrgClients(stored.updated_at, bool(stored.settings.get("link_existing")), {})
                self._orgs[org] = held
            try:
                client = OidcClient(oidc_settings(stored, origin))
            except InvalidConfig as exc:
                log.error("organisation %s: its single sign-on cannot be used: %s", org, exc.message)
                raise OidcUnavailable("this organisation's single sign-on cannot be used") from None
            self.builds += 1
            held.by_origin[origin] = client
            return client, held.link_existing

    def _current(self, org: str, version: float | None, origin: str) -> tuple[OidcClient, bool] | None:
        held = self._orgs.get(org)
        if held is None or held.version != version or origin not in held.by_origin:
            return None
        return held.by_origin[origin], held.link_existing

    def _retire_org(self, org: str) -> None:
        """Swaps the organisation's clients out at once and closes them later (not under a running callback)."""
        held = self._orgs.pop(org, None)
        if held is None:
            return
        for client in held.by_origin.values():
            task = asyncio.get_running_loop().create_task(self._close_later(client))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _close_later(self, client: OidcClient) -> None:
        try:
            await asyncio.sleep(self.retire_after)
        finally:
            await client.close()

    async def close(self) -> None:
        for task in list(self._retiring):
            task.cancel()  # each closes its client as it ends
        await asyncio.gather(*self._retiring, return_exceptions=True)
        for held in self._orgs.values():
            for client in held.by_origin.values():
                await client.close()
        self._orgs.clear()


def redirect_origin(request: web.Request, config: Config) -> str:
    """Where an organisation's provider sends the browser back: the request's host name, which the organisation
    middleware has matched to one of the organisation's stored hosts (identity/orgs.py), with the scheme and port
    of --public-url, else the scheme this request came by (a trusted proxy's X-Forwarded-Proto included) and our
    own listening port only when the request named it. A port the client made up never gets in (nor into the
    client cache's key)."""
    host = host_name(request.host or "")
    if config.public_url:
        public = urllib.parse.urlsplit(config.public_url)
        port = f":{public.port}" if public.port else ""
        return f"{public.scheme}://{host}{port}"
    named = request.host.rsplit(":", 1)[1] if request.host and request.host.count(":") == 1 else ""
    port = f":{config.port}" if named == str(config.port) else ""
    return f"{request.scheme}://{host}{port}"


ORG_OIDC_CLIENTS = web.AppKey("org_oidc_clients", OrgOidcClients)


class OidcRoutes:
    def __init__(self, client: OidcClient | None, sealer: FlowSealer, links: OidcLinks, users: OidcUsers,
                 link_existing: bool = False, orgs: OrgOidcClients | None = None) -> None:
        self.client = client
        self.link_existing = link_existing
        self.sealer = sealer
        self.links = links
        self.users = users
        self.orgs = orgs
        self.limiter = RateLimiter(STARTS_PER_SECOND, STARTS_BURST)

    async def _client_for(self, request: web.Request) -> tuple[OidcClient, bool] | None:
        """The provider of the request's organisation and its link_existing setting (None: it has none)."""
        org = request_org(request)
        if org == DEFAULT_ORG:
            return None if self.client is None else (self.client, self.link_existing)
        if self.orgs is None:
            return None
        return await self.orgs.for_org(org, redirect_origin(request, request.app[CONFIG]))

    async def _client(self, request: web.Request) -> tuple[OidcClient, bool]:
        found = await self._client_for(request)
        if found is None:
            raise OidcNotConfigured("single sign-on is not configured for this organisation")
        return found

    async def methods(self, request: web.Request) -> web.Response:
        try:
            configured = await self._client_for(request) is not None
        except ConveneError:
            configured = False  # a stored provider that cannot be used: the page offers passwords only
        return web.json_response({"password": True, "oidc": configured})

    async def start(self, request: web.Request) -> web.Response:
        client, _ = await self._client(request)
        self.limiter.take(f"oidc:{request.remote or '-'}")
        flow = PendingFlow.start(org=request_org(request))
        location = await client.authorization_url(flow)
        response = _redirect(location)
        response.set_cookie(FLOW_COOKIE, self.sealer.seal(flow), max_age=FLOW_SECONDS, path=FLOW_PATH,
                            httponly=True, samesite="Lax", secure=request.secure)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def callback(self, request: web.Request) -> web.Response:
        try:
            response = await self._finish(request)
        except ConveneError as exc:
            if "text/html" not in request.headers.get("Accept", ""):
                raise
            log.info("single sign-on refused: %s", exc.code)
            response = _redirect("/signin?" + urllib.parse.urlencode({"error": exc.code}))
        response.del_cookie(FLOW_COOKIE, path=FLOW_PATH)  # one callback per start, success or not
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"  # the code is in this page's address
        return response

    async def _finish(self, request: web.Request) -> web.Response:
        client, link_existing = await self._client(request)
        org = request_org(request)
        self.limiter.take(f"oidc:{request.remote or '-'}")
        flow = self.sealer.open(request.cookies.get(FLOW_COOKIE))
        self.sealer.check_state(flow, request.query.get("state"))
        if flow.org != org:  # started at another organisation's address: its provider, not this one's
            raise OidcStateMismatch("the sign-in was started at another organisation's address: start again")
        if "error" in request.query:  # RFC 6749 §4.1.2.1: the provider ended it (refused consent, …)
            raise OidcDenied(f"the identity provider refused: {request.query['error'][:64]}")
        code = request.query.get("code")
        if not code or len(code) > 2048:
            raise OidcDenied("the identity provider's answer has no code")
        issuer = request.query.get("iss")  # RFC 9207: when sent, it must be the provider we asked
        if issuer is not None and issuer.rstrip("/") != client.settings.issuer:
            raise OidcDenied("the answer comes from another identity provider")
        identity = await client.identity(code, flow)
        api = _chat_api(request)
        login, epoch = await self._sign_in(api, identity, org, link_existing)
        token = api.open_session(login, epoch, org)
        response = _redirect(AFTER_SIGN_IN)
        set_session_cookie(response, token, secure=request.secure)
        log.info("single sign-on: %s signed in (organisation %s)", login, org)
        return response

    async def _sign_in(self, api: ChatApi, identity: OidcIdentity, org: str = DEFAULT_ORG,
                       link_existing: bool = False) -> tuple[str, int]:
        """The account the identity signs in as in `org` (created or refreshed) and its token epoch."""
        try:
            login = valid_login(identity.login)
        except InvalidField:
            raise OidcClaimInvalid("the identity provider's login is not 1-128 letters, digits, '.', '@', '-' "
                                   "or '_'") from None
        if server_reserved(login):
            raise OidcClaimInvalid("the identity provider's login is in the server's own bots' name space "
                                   "(cmd_, hook_, hook-)")
        if api.accounts is None:
            raise NotReady("signing in needs the account store")
        existing, user = await api.accounts.get(login), await api.store.get_user(login)
        # Checked before anything is bound or written.
        if existing is not None and not existing.active:
            raise AccountDisabled(f"the account {login!r} is deactivated")
        if user is not None and user.role == "bot":
            raise OidcClaimInvalid("the identity provider's login names a bot of this server")
        if user is not None and user.org != org:
            log.warning("single sign-on at organisation %s refused: %r is another organisation's login", org, login)
            raise OidcAccountExists(f"the account {login!r} already exists on this server; an administrator "
                                    "must link it")
        if (existing is not None or user is not None) and not await self.links.is_bound(
                identity.issuer, identity.subject, login, org):
            self._may_take_over(login, existing, user, link_existing)
        await self.links.bind(identity.issuer, identity.subject, login, org)
        account = existing or await api.accounts.ensure(login)
        await self.users.admit(login, identity, org)
        return login, account.token_epoch


    def _may_take_over(self, login: str, account: Account | None, user: User | None,
                       link_existing: bool = False) -> None:
        """A first sign-in whose login is already an account: refused unless SSO made it, since the provider's
        `preferred_username` would otherwise hand its user the local owner `admin`, a directory person or a
        guest's squatted name. --oidc-link-existing allows it, but never for a password or the owner/admin role."""
        privileged = (account is not None and account.has_password) or (
            user is not None and user.role in ("owner", "admin"))
        made_by_sso = user is not None and user.source == SOURCE
        if privileged or not (made_by_sso or link_existing):
            log.warning("single sign-on refused: %r is an existing account (source %s)", login,
                        user.source if user is not None else "account only")
            raise OidcAccountExists(f"the account {login!r} already exists on this server; an administrator "
                                    "must link it")


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def _chat_api(request: web.Request) -> ChatApi:
    if CHAT_API not in request.app:
        raise NotReady("signing in needs the chat part of the server, which this process does not run")
    return request.app[CHAT_API]


def _client_for(app: web.Application) -> OidcClient | None:
    settings = OidcSettings.from_config(app[CONFIG])
    if settings is None:
        return None
    client = OidcClient(settings)
    log.info("single sign-on through %s as client %s (redirect URI %s)", settings.issuer, settings.client_id,
             settings.redirect_uri)

    async def close(_: web.Application) -> None:
        await client.close()
    app.on_cleanup.append(close)
    return client


def setup(app: web.Application) -> None:
    config = app[CONFIG]
    client = _client_for(app)
    secret = server_secret(config.data_dir, config.token_secret_file)
    orgs = OrgOidcClients(OrgConnections(app[DATABASE], SecretSealer(secret)))

    async def close_org_clients(_: web.Application) -> None:
        await orgs.close()
    app.on_cleanup.append(close_org_clients)
    app[ORG_OIDC_CLIENTS] = orgs
    routes = OidcRoutes(client, FlowSealer(secret), OidcLinks(app[DATABASE]), OidcUsers(app[DATABASE]),
                        config.oidc_link_existing, orgs)
    app.router.add_get("/v1/auth/methods", routes.methods)
    app.router.add_get(START_PATH, routes.start)
    app.router.add_get(CALLBACK_PATH, routes.callback)
