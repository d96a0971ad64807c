"""Who is calling the chat API: an API key (a named bot/member/admin), a chat user token, or a meeting token.

A meeting token is scoped to its meeting: its caller (the participant's identity; a first-time identity becomes
a `guest` user) joins that meeting's channel and reaches nothing else: not the user's other channels, direct
messages, sync, search or tasks, even when the identity names a real user. A token of an ended meeting, or of
someone a moderator removed, reaches nothing at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from audit import note_caller
from chat.model import User
from chat.service import ChatService
from common.errors import CsrfRequired, OutOfScope, TokenRevoked, Unauthorized
from identity.apikeys import PREFIX, ApiKey, ApiKeyStore
from identity.auth import bearer
from identity.bots import BotRegistry
from identity.meetings import MeetingLedger
from identity.orgs import DEFAULT_ORG, request_org, require_org
from identity.passwords import AccountStore
from identity.signin import CSRF_HEADER, SESSION_COOKIE, csrf_ok
from identity.tokens import USER_SCOPE, AccessToken, TokenIssuer

# Kept for callers that mint user tokens by this name.
CHAT_ROOM = USER_SCOPE
# Half a second: a key revoked or deactivated anywhere stops here within a second of it, request time included.
KEY_CACHE_SECONDS = 0.5


@dataclass(frozen=True)
class Principal:
    user: User
    rate_key: str
    room: str | None = None
    meeting: str | None = None
    channel_id: str | None = None  # a meeting token's one channel; None: not scoped to a meeting
    session: str | None = None  # the session cookie's token, when that is what authenticated the caller

    @property
    def org(self) -> str:
        """The caller's organisation (its credential's, which `from_credential` checked is its user's)."""
        return self.user.org

    @property
    def scoped(self) -> bool:
        return self.channel_id is not None

    @property
    def credential_kind(self) -> str:
        """What authenticated it, as the audit log says: `key:<key id>`, session, meeting_token or user_token."""
        if self.rate_key.startswith("key:"):
            return self.rate_key
        return "session" if self.session is not None else "meeting_token" if self.scoped else "user_token"

    @property
    def via(self) -> str:
        """How a post of this caller came (usage analytics): api for an API key, else web (the browser's
        session, user and meeting tokens)."""
        return "api" if self.rate_key.startswith("key:") else "web"

    def unscoped(self) -> "Principal":
        """This principal, for an endpoint a meeting token does not reach (`OutOfScope` if it is one)."""
        if self.scoped:
            raise OutOfScope("a meeting token reaches only its meeting's channel")
        return self


class Authenticator:
    def __init__(self, service: ChatService, tokens: TokenIssuer, keys: ApiKeyStore,
                 meetings: MeetingLedger) -> None:
        self._service = service
        self._tokens = tokens
        self.keys = keys
        self.meetings = meetings
        # Verified keys for at most KEY_CACHE_SECONDS: a burst of requests with one key reads the store once,
        # and a key revoked anywhere stops working here within that time.
        self._key_cache: dict[str, tuple[float, ApiKey]] = {}
        self._joined: dict[tuple[str, str], str] = {}  # (meeting, login) -> channel id
        self.accounts: AccountStore | None = None  # set by setup_chat: user tokens are checked against it
        self.csrf_secret: bytes = b""  # set by setup_chat (the server secret); empty: sessions refused
        self.bots: BotRegistry | None = None  # set by setup_chat: a bot's keys fail while its owner is inactive
        # Called with the login of each person (not a bot) a request or chat socket authenticates: usage
        # analytics' active users (stats/activity.py, a set lookup per call).
        self.on_active: Callable[[str, str], None] | None = None  # (login, organisation) of each person's request

    def mint_user_token(self, login: str, ttl_seconds: int, epoch: int = 0, session: str | None = None,
                        org: str = DEFAULT_ORG) -> str:
        """`epoch`: the account's current token epoch (0 for a login without an account row); `session`: the
        sign-in session's id, which sign-out ends; `org`: the user's organisation, at whose Hosts alone it works."""
        return self._tokens.mint(USER_SCOPE, login, name=login, ttl_seconds=ttl_seconds, epoch=epoch,
                                 session=session, org=org)

    def verify(self, token: str) -> AccessToken:
        return self._tokens.verify(token)

    async def current_epoch(self, login: str) -> int:
        account = None if self.accounts is None else await self.accounts.get(login)
        return 0 if account is None else account.token_epoch

    async def _check_not_revoked(self, token: AccessToken) -> None:
        """Read on every request (one primary-key read), so a deactivation in any process holds at once."""
        account = None if self.accounts is None else await self.accounts.get(token.identity)
        if account is not None and (not account.active or token.epoch != account.token_epoch):
            raise TokenRevoked("this account was deactivated; sign in again")
        if token.session is not None and self.accounts is not None and await self.accounts.session_ended(
                token.session):
            raise Unauthorized("this session was signed out")

    async def _api_key(self, presented: str) -> ApiKey:
        hit = self._key_cache.get(presented)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        key = await self.keys.verify(presented)
        if self.bots is not None:
            await self.bots.check(key.name)  # bot_disabled: its owner was deactivated
        if len(self._key_cache) > 10_000:
            self._key_cache.clear()
        self._key_cache[presented] = (time.monotonic() + KEY_CACHE_SECONDS, key)
        return key

    async def principal(self, request: web.Request) -> Principal:
        found = await self._principal(request)
        note_caller(found.user.login, found.credential_kind, found.user.org)  # the audit log's actor for this request
        self.note_active(found)
        return found

    def note_active(self, found: Principal) -> None:
        if self.on_active is not None and found.user.role != "bot":
            self.on_active(found.user.login, found.user.org)

    async def _principal(self, request: web.Request) -> Principal:
        if not request.headers.get("Authorization") and request.cookies.get(SESSION_COOKIE):
            return await self.from_session(request, request.cookies[SESSION_COOKIE])
        return await self.from_credential(bearer(request), request_org(request))

    async def from_session(self, request: web.Request, session: str) -> Principal:
        """The session cookie: a user token only (never a meeting token or key); writes also need its CSRF header,
        which another origin's page cannot read, so a cross-site form post is refused."""
        if not self.csrf_secret or not self._tokens.verify(session).is_user_token:
            raise Unauthorized("not a session")
        if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_ok(
                self.csrf_secret, session, request.headers.get(CSRF_HEADER)):
            raise CsrfRequired(f"a write with the session cookie needs the {CSRF_HEADER} header from sign-in")
        principal = await self.from_credential(session, request_org(request))
        return Principal(user=principal.user, rate_key=principal.rate_key, session=session)

    async def from_credential(self, value: str, org: str) -> Principal:
        """The caller a credential names, at a Host of organisation `org`: a credential of another organisation
        (or whose user belongs to another one) is `404 not_found`, as if nothing were there."""
        if value.startswith(PREFIX):
            key = await self._api_key(value)
            require_org(key.org, org, "user")
            user = await self._service.store.get_user(key.name)
            if user is None:  # a key's user is made once; its stored role is never rewritten from the key
                user, _ = await self._service.add_user(None, key.name, key.role, name=key.name, org=key.org)
            require_org(user.org, org, "user")
            return Principal(user=user, rate_key=f"key:{key.key_id}")
        token: AccessToken = self._tokens.verify(value)
        require_org(token.org, org, "user")
        if token.is_user_token:
            await self._check_not_revoked(token)
            user = await self._service.ensure_user(token.identity, role="guest", name=token.name, org=token.org)
            require_org(user.org, org, "user")
            return Principal(user=user, rate_key=f"user:{user.login}")
        meeting = await self.meetings.check(token)  # meeting_ended / removed
        user = await self._service.ensure_user(token.identity, role="guest", name=token.name, org=token.org)
        # Logins are unique across organisations: an invite naming another organisation's login reaches no
        # chat here (its membership would show that user this meeting's channel at their own Host).
        require_org(user.org, org, "user")
        channel_id = self._joined.get((meeting.meeting_id, user.login))
        if channel_id is None:
            channel = await self._service.join_meeting(meeting.meeting_id, meeting.room, user.login)
            if len(self._joined) > 100_000:
                self._joined.clear()
            channel_id = self._joined[(meeting.meeting_id, user.login)] = channel.id
        return Principal(user=user, rate_key=f"user:{user.login}", room=token.room, meeting=meeting.meeting_id,
                         channel_id=channel_id)
