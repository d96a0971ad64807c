"""The chat sidecar's HTTP surface: REST under /v1, the live socket /v1/chat/ws, the /chat page.

`setup_chat(app, config)` mounts it on the server's app; `app[CHAT]` is the ChatService, which other
parts of the server use (`await app[CHAT].ensure_meeting_channel(room)`, `await app[CHAT].post_task(...)`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import replace
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, WSMsgType, web
from aiohttp.http_exceptions import HttpProcessingError

from audit import AuditEvent, Recorder
from audit.appkeys import AUDIT
from chat.auth import Authenticator, Principal
from common.errors import OutOfScope
from identity.appkeys import API_KEYS, DATABASE, MEETINGS, TOKENS
from identity.deactivation_watch import deactivation_watch
from identity.auth import credential_of
from identity.meetings import MeetingLedger
from identity.orgs import DEFAULT_ORG, plain, request_org
from chat.bus import Bus, LocalBus, RedisBus
from chat.config import ChatConfig
from chat.errors import BadMultipart, FileNotFound, NotPermitted, UserNotFound
from chat.files import FileVault, Staged
from chat.hub import Hub, Session
from chat.channel_admin import ChannelAdmin
from chat.governance_web import GovernanceApi
from chat.jobs import file_sweep_loop, reminder_loop, retention_loop
from chat.legal_hold import HoldStore
from chat.retention import Retention
from chat.links import FileLinks
from chat.model import FileMeta, Message, SearchQuery, User
from chat.openapi import openapi_document
from chat.permissions_web import attach_permissions
from identity.permissions import Action, outranked_by, outranks, require
from common.ratelimit import RateLimiter
from chat.service import ChatService, PostRequest, TaskPatch, valid_login
from chat.watermark import WatermarkApi, channel_watermark, important_flag
from chat.sql_store import SqlChatStore
from chat.store import ChatStore
from identity.apikeys import ApiKeyStore
from identity.bots import BotRegistry
from common.config import Config
from common.names import department_parts
from common.times import parse_time
from common.errors import BadRequest, ConveneError, InvalidField, MalformedJson, RateLimited, Unauthorized
from common.origins import check_origin, refuse_token_in_url
from identity.secrets_store import server_secret
from store.database import Database
from identity.tokens import TokenIssuer
from identity.passwords import Account, AccountStore
from identity.attempts import SignInAttempts
from identity.signin import SESSION_COOKIE, SESSION_SECONDS, csrf_token, set_session_cookie
from identity.sealed import SecretSealer
from common.errors import InvalidCredentials
from common.wire import read_json_object

CHAT = web.AppKey("chat", ChatService)
# The chat socket's close code when it did not authenticate (as the signaling socket's).
CLOSE_UNAUTHORIZED = 4401
log = logging.getLogger(__name__)
CLOSE_DEACTIVATED = 4410  # the account was deactivated: do not reconnect with the same credential
AUTH_FIELDS = {"type", "token", "session", "last_seq", "cookie"}
WEB_CHAT_DIR = Path(__file__).resolve().parent.parent / "web" / "chat"
# Set by integrations/ (which chat does not import). A post whose content starts with "/": the hook's answer
# (202) when it names a slash command, None to post it as text. A button click from the socket: (login, the
# socket's meeting scope, message id, action id) -> the click's outcome.
CommandHook = Callable[[Principal, str, str], Awaitable[dict[str, Any] | None]]
ActionHook = Callable[[str, str | None, str, str], Awaitable[dict[str, Any]]]


def _int(request: web.Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidField(f"{name} must be an integer", field=name) from exc
    if not lo <= value <= hi:
        raise InvalidField(f"{name} must be {lo}-{hi}", field=name)
    return value


def _messages(msgs: list[Message]) -> list[dict[str, Any]]:
    return [m.to_wire() for m in msgs]


def _str_field(body: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = body.get(name, default)
    if value is not None and not isinstance(value, str):
        raise InvalidField(f"{name} must be a string", field=name)
    return value


def _list_field(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 1000:
        raise InvalidField(f"{name} must be a list of logins", field=name)
    return value


def _auth_frame(data: str, cookie: str | None = None) -> tuple[str, str | None, int | None]:
    """The socket's first frame `{"type": "auth", "token", "session"?, "last_seq"?}` -> its fields. A page signed
    in by cookie sends `"cookie": true` instead of a token: the upgrade request's session cookie is used (its
    Origin was checked, so another site's page cannot open a socket with it)."""
    try:
        frame = json.loads(data)
    except json.JSONDecodeError as exc:
        raise MalformedJson("frames are JSON objects") from exc
    if not isinstance(frame, dict) or frame.get("type") != "auth":
        raise Unauthorized('the first frame must be {"type": "auth", "token": "<token or API key>"}')
    unknown = sorted(set(frame) - AUTH_FIELDS)
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(unknown)}", fields=unknown)
    token, session, last_seq = frame.get("token"), frame.get("session"), frame.get("last_seq")
    if token is None and frame.get("cookie") is True:
        token = cookie
        if not token:
            raise Unauthorized("no session cookie: sign in first")
    if not isinstance(token, str) or not token:
        raise Unauthorized("token must be the API key or token, as a string")
    if session is not None and not isinstance(session, str):
        raise InvalidField("session must be a string", field="session")
    if last_seq is not None and (not isinstance(last_seq, int) or isinstance(last_seq, bool) or last_seq < 0):
        raise InvalidField("last_seq must be a non-negative integer", field="last_seq")
    return token, session, last_seq


class ChatApi:
    def __init__(self, config: ChatConfig, store: ChatStore, bus: Bus, tokens: TokenIssuer, keys: ApiKeyStore,
                 *, server: Config, links: FileLinks, meetings: MeetingLedger) -> None:
        self.config = config
        self.server = server  # the server's own Config: WebSocket origins and the auth frame's deadline
        self.links = links
        self.store = store
        self.bus = bus
        self.service = ChatService(store, bus, config.max_content_chars)
        self.auth = Authenticator(self.service, tokens, keys, meetings)
        self.hub = Hub(config.replay_events, config.resume_seconds)
        self.vault = FileVault(config.files_dir)
        self.limiter = RateLimiter(config.rate_per_second, config.rate_burst)
        self.accounts: AccountStore | None = None  # set by setup_chat (sign-in needs the SQL store)
        self.lockout: SignInAttempts | None = None  # set by setup_chat: failed sign-ins, shared by every process
        self.retention: Retention | None = None  # set by setup_chat (the SQL store): the daily job's runner
        # Called with the login on every deactivation here, beside closing the chat sockets: the front door
        # closes the person's meeting sockets (which chat does not know); each returns how many it closed.
        self.deactivation_listeners: list[Callable[[str], int]] = []
        # Set by chat/directory_web.py: (org, login, password) -> the user and their token epoch, by a bind as the
        # user in that organisation's directory (LDAP / AD), None when it has none; logins with a local password
        # never reach it.
        self.directory_login: Callable[[str, str, str], Awaitable[tuple[User, int] | None]] | None = None
        self.command_hook: CommandHook | None = None
        self.action_hook: ActionHook | None = None
        self._clicks: set[asyncio.Task[None]] = set()  # button clicks from sockets, running
        self.watermark = WatermarkApi(self)
        bus.subscribe(self.hub.dispatch)

    async def who(self, request: web.Request, write: bool = False, meeting: bool = False) -> Principal:
        """The caller, for every REST part that authenticates as chat does (integrations, audit, statistics, rooms
        for signed-in people). Endpoints a meeting token may use say `meeting=True` and then keep it to its channel;
        a write is rate-limited."""
        principal = await self.auth.principal(request)
        if not meeting:
            principal.unscoped()
        if write:
            self.limiter.take(principal.rate_key)
        return principal

    async def _channel_for(self, p: Principal, ref: str) -> str:
        """The channel `ref` names; for a meeting token only its own, which the room's name also names."""
        if not p.scoped or ref == p.channel_id:
            return ref
        if ref == plain(p.room or "") or (await self.service.resolve(ref, p.org)).id == p.channel_id:
            return p.channel_id or ref
        raise OutOfScope("a meeting token reaches only its meeting's channel")

    async def _message_for(self, p: Principal, message_id: str) -> str:
        if p.scoped:
            message = await self.store.get_message(message_id)
            if message is None or message.channel_id != p.channel_id:
                raise OutOfScope("a meeting token reaches only its meeting's channel")
        return message_id

    async def _file_for(self, p: Principal, file_id: str) -> FileMeta:
        meta = await self.service.file_for_download(p.user, file_id)
        # A meeting token reads the files of its meeting, and what it uploaded and has not posted yet.
        if p.scoped and p.channel_id not in meta.channels and not (
                meta.uploader == p.user.login and meta.attached_at is None):
            raise OutOfScope("a meeting token reaches only its meeting's files")
        return meta

    # Directory --------------------------------------------------------------------------------

    async def me(self, request: web.Request) -> web.Response:
        p = await self.who(request, meeting=True)
        out: dict[str, Any] = {"user": p.user.to_wire(), "room": p.room and plain(p.room), "meeting": p.meeting,
                               "channel": p.channel_id}
        if not p.scoped:  # a meeting token's answer stays as it was: it holds none of the chat role's powers
            table = await self.service.table(p.org)
            out.update(org=p.org, login=p.user.login, name=p.user.name, role=p.user.role,
                       department=department_parts(p.user.department),
                       email=p.user.email, title=p.user.title,
                       permissions=table.held_by(p.user))
        out.update(await self.watermark.for_viewer(p))  # watermark (the setting here) and watermark_text
        if p.session is not None:  # the page signed in by cookie reads its CSRF token here after a reload
            out["csrf"] = csrf_token(self.auth.csrf_secret, p.session)
        return web.json_response(out)

    # Sign-in ----------------------------------------------------------------------------------

    async def login(self, request: web.Request) -> web.Response:
        body = await read_json_object(request, allowed={"login", "password"})
        login, password = body.get("login"), body.get("password")
        if not isinstance(login, str) or not 1 <= len(login) <= 128:
            raise InvalidField("login must be a string of 1-128 characters", field="login")
        if not isinstance(password, str) or not password:
            raise InvalidField("password must be a non-empty string", field="password")
        org = request_org(request)
        assert self.lockout is not None
        # Counted before the password is checked (429 past the limit): parallel guesses cannot all pass a check.
        attempt = await self.lockout.begin(org, login, request.remote or "-")
        user = await self.service.user_in(org, login)  # another organisation's login signs in only at its Host
        try:
            if self.accounts is None:
                raise InvalidCredentials("wrong login or password")
            # The organisation's own directory (LDAP/AD), if it has one; else, or for a local password, ours.
            admitted = None
            if self.directory_login is not None and not await self._has_local_password(login):
                admitted = await self.directory_login(org, login, password)  # may be 503 directory_unavailable
            if admitted is not None:
                user, epoch = admitted
            else:
                account = await self.accounts.verify(login, password)  # one argon2 check, also for unknown logins
                if user is None:
                    raise InvalidCredentials("wrong login or password")
                epoch = account.token_epoch
        except InvalidCredentials:
            raise  # the attempt stays counted
        except ConveneError:
            await self.lockout.cancelled(attempt)  # a directory that did not answer judged no password
            raise
        await self.lockout.succeeded(attempt)
        token = self.open_session(user.login, epoch, user.org)
        response = web.json_response({"token": token, "user": user.to_wire(),
                                      "csrf": csrf_token(self.auth.csrf_secret, token)})
        set_session_cookie(response, token, secure=request.secure)
        return response

    def open_session(self, login: str, token_epoch: int, org: str = DEFAULT_ORG) -> str:
        """A new sign-in session for `login` (password or single sign-on): a session token with its own id,
        which sign-out ends. The caller puts it in the cookie (identity.signin.set_session_cookie)."""
        return self.auth.mint_user_token(login, SESSION_SECONDS, token_epoch, session=secrets.token_urlsafe(16),
                                         org=org)

    async def _has_local_password(self, login: str) -> bool:
        account = None if self.accounts is None else await self.accounts.get(login)
        return account is not None and account.has_password

    async def logout(self, request: web.Request) -> web.Response:
        """Ends the session (the cookie's, or a session token sent as bearer) in every process, and drops the
        cookie. Without a session it only drops the cookie: signing out twice is not an error."""
        presented = credential_of(request) or request.cookies.get(SESSION_COOKIE)
        with contextlib.suppress(ConveneError):
            token = self.auth.verify(presented or "")
            if token.session is not None and self.accounts is not None:
                await self.accounts.end_session(token.session, token.expires_at)
        response = web.json_response({"ok": True})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def get_org(self, request: web.Request) -> web.Response:
        p = await self.who(request)
        return web.json_response((await self.service.org(p.org)).to_wire())

    async def patch_org(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True)
        body = await read_json_object(request, allowed=set((await self.service.org(p.org)).to_wire()))
        return web.json_response((await self.service.patch_org(p.user, body)).to_wire())

    async def list_users(self, request: web.Request) -> web.Response:
        p = await self.who(request)
        require(p.user, Action.READ_DIRECTORY, await self.service.table(p.org))
        return web.json_response({"users": [u.to_wire() for u in await self.store.list_users(p.org)]})

    async def add_user(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True)
        body = await read_json_object(request, allowed={"login", "role", "department", "name"})
        user, created = await self.service.add_user(
            p.user, valid_login(body.get("login")), _str_field(body, "role", "member") or "member",
            _str_field(body, "department", "") or "", _str_field(body, "name", "") or "")
        return web.json_response(user.to_wire(), status=201 if created else 200)

    async def patch_user(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True)
        body = await read_json_object(request, allowed={"role", "department", "name"})
        user = await self.service.patch_user(p.user, request.match_info["login"], _str_field(body, "role"),
                                             _str_field(body, "department"), _str_field(body, "name"))
        return web.json_response(user.to_wire())

    async def user_token(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True)
        require(p.user, Action.MANAGE_USERS, await self.service.table(p.org))
        body = await read_json_object(request, allowed={"ttl"})
        ttl = body.get("ttl", 30 * 86400)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 60 <= ttl <= 365 * 86400:
            raise InvalidField("ttl must be 60 s to 365 days", field="ttl")
        login = request.match_info["login"]
        target = await self.service.user_in(p.org, login)
        if target is None:
            raise UserNotFound(f"no user {login!r}")
        # A user token acts as its user: a person mints one only for someone ranked strictly below them (a member
        # with manage_users may not become a peer), or for themselves. The operator's admin API key keeps minting
        # up to admins.
        lower = outranks(p.user, target.role) or login == p.user.login or p.credential_kind.startswith("key:")
        if outranked_by(p.user, target.role) or not lower:
            raise NotPermitted(f"a {p.user.role} may not mint a token for a {target.role}")
        token = self.auth.mint_user_token(login, ttl, await self.auth.current_epoch(login), org=target.org)
        await self.service.audit.record(AuditEvent("user_token.create", "user", login, after={"ttl": ttl}))
        # In the fragment: browsers never send it, so it stays out of access logs and proxies.
        return web.json_response({"token": token, "url": f"/chat#token={token}"}, status=201)

    async def deactivate_user(self, request: web.Request) -> web.Response:
        """Ends a person's access: sign-in refused, every session and user token fails on its next request, and
        their live chat sockets close (4410) here at once and in other processes within a poll."""
        p = await self.who(request, write=True)
        require(p.user, Action.MANAGE_USERS, await self.service.table(p.org))
        login = request.match_info["login"]
        target = await self.service.user_in(p.org, login)
        if target is None:
            raise UserNotFound(f"no user {login!r}")
        if outranked_by(p.user, target.role) or login == p.user.login:
            raise NotPermitted(f"a {p.user.role} may not deactivate this {target.role}")
        account, closed = await self.end_access(login)
        return web.json_response({"login": login, "active": account.active, "sockets_closed": closed})

    async def end_access(self, login: str) -> tuple[Account, int]:
        """Deactivation, the one path for the admin's POST and the directory sync: sign-in refused, the token
        epoch bumped (every session and user token fails), and the live sockets here closed with 4410 (chat's,
        the meeting sockets through the listeners); other processes close theirs within a poll."""
        assert self.accounts is not None
        # Counted before: while the account is being disabled, this process's deactivation poll may see it and
        # close the sockets first; they are closed either way.
        open_before = self.hub.sessions_of(login)
        account = await self.accounts.disable(login)
        closed = max(open_before, self.hub.end_login(login, CLOSE_DEACTIVATED, b"deactivated"))
        closed += await self._end_bots_of(login)
        for listener in self.deactivation_listeners:
            closed += listener(login)
        return account, closed

    async def departments(self, request: web.Request) -> web.Response:
        p = await self.who(request)
        return web.json_response(await self.service.departments(p.user))

    # Channels ---------------------------------------------------------------------------------

    async def create_channel(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True)
        body = await read_json_object(request, allowed={"name", "kind", "members", "topic"})
        kind = _str_field(body, "kind", "team") or "team"
        topic = _str_field(body, "topic", "") or ""
        if len(topic) > 500:
            raise InvalidField("topic may be at most 500 characters", field="topic")
        channel, created = await self.service.create_channel(p.user, _str_field(body, "name"), kind,
                                                             _list_field(body, "members"), topic)
        members = await self.store.members(channel.id)
        return web.json_response({**channel.to_wire(), "members": members}, status=201 if created else 200)

    async def list_channels(self, request: web.Request) -> web.Response:
        p = await self.who(request, meeting=True)
        rows = [m for m in await self.service.channels(p.user) if not p.scoped or m.channel.id == p.channel_id]
        return web.json_response({"channels": [{**m.channel.to_wire(), "last_read": m.last_read,
                                                "unread": m.unread} for m in rows]})

    async def browse_channels(self, request: web.Request) -> web.Response:
        p = await self.who(request)
        require(p.user, Action.JOIN_TEAM_CHANNEL, await self.service.table(p.org))
        return web.json_response({"channels": [c.to_wire() for c in await self.store.list_channels("team", p.org)]})

    async def get_channel(self, request: web.Request) -> web.Response:
        p = await self.who(request, meeting=True)
        channel = await self.service.readable(p.user, await self._channel_for(p, request.match_info["id"]))
        return web.json_response({**channel.to_wire(), "members": await self.store.members(channel.id)})

    async def patch_channel(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True)
        body = await read_json_object(request, allowed={"topic", "retention_days", "watermark", "name"})
        if "name" in body:  # a rename (channel.rename in the audit log): then the other fields, if any
            await ChannelAdmin(self.service).rename(p.user, request.match_info["id"], body["name"])
        retention = body.get("retention_days")
        if retention is not None and (not isinstance(retention, int) or isinstance(retention, bool) or retention < 0):
            raise InvalidField("retention_days must be a non-negative integer or null", field="retention_days")
        topic = _str_field(body, "topic")
        channel = await self.service.update_channel(p.user, request.match_info["id"], topic, retention,
                                                    "retention_days" in body and retention is None,
                                                    channel_watermark(body))
        return web.json_response(channel.to_wire())

    async def change_members(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True)
        body = await read_json_object(request, allowed={"add", "remove"})
        members = await self.service.change_members(p.user, request.match_info["id"], _list_field(body, "add"),
                                                    _list_field(body, "remove"))
        return web.json_response({"members": members})

    async def list_members(self, request: web.Request) -> web.Response:
        p = await self.who(request, meeting=True)
        channel = await self.service.readable(p.user, await self._channel_for(p, request.match_info["id"]))
        return web.json_response({"members": await self.store.members(channel.id)})

    async def mark_read(self, request: web.Request) -> web.Response:
        p = await self.who(request, meeting=True)
        ref = await self._channel_for(p, request.match_info["id"])
        body = await read_json_object(request, allowed={"ord"})
        ord_ = body.get("ord")
        if not isinstance(ord_, int) or isinstance(ord_, bool) or ord_ < 0:
            raise InvalidField("ord must be a message's ord", field="ord")
        await self.service.mark_read(p.user, ref, ord_)
        return web.json_response({"ok": True})

    async def history(self, request: web.Request) -> web.Response:
        p = await self.who(request, meeting=True)
        ref = await self._channel_for(p, request.match_info["id"])
        after = _int(request, "after", None, 0, 2 ** 62)
        before = _int(request, "before", None, 0, 2 ** 62)
        limit = _int(request, "limit", 50, 1, 500) or 50
        channel, msgs = await self.service.history(p.user, ref, after, before, limit,
                                                   request.query.get("thread") or None)
        full = len(msgs) >= limit
        return web.json_response({
            "channel": channel.to_wire(), "messages": _messages(msgs),
            "next": str(msgs[-1].ord) if msgs and (after is None or full) else (str(after) if after else None),
            "prev": str(msgs[0].ord) if msgs else None,
            "has_more": full,
        })

    # Messages ---------------------------------------------------------------------------------

    async def post_message(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True, meeting=True)
        body = await read_json_object(request, allowed={"to", "content", "type", "attachments", "thread",
                                                        "client_id", "task", "important"})
        to = body.get("to")
        if not isinstance(to, str) or not to:
            raise InvalidField("to must name a channel (its id or name)", field="to")
        to = await self._channel_for(p, to)
        content = body.get("content")
        # Slash commands are for chat users: a meeting token's caller or a guest posts `/…` as plain text (no
        # integration is called on their behalf), and a command is a post, so it needs the posting permission.
        if (self.command_hook is not None and not p.scoped and p.user.role != "guest" and isinstance(content, str)
                and content.startswith("/") and body.get("type", "text") == "text"):
            require(p.user, Action.POST, await self.service.table(p.org))
            outcome = await self.command_hook(p, to, content)  # `/name args`: never posted as text
            if outcome is not None:
                return web.json_response(outcome, status=202)
        attachments = body.get("attachments", [])
        if not isinstance(attachments, list):
            raise InvalidField("attachments must be a list", field="attachments")
        task = body.get("task")
        if task is not None and not isinstance(task, dict):
            raise InvalidField("task must be an object", field="task")
        req = PostRequest(to=to, type=_str_field(body, "type", "text") or "text",
                          content=_str_field(body, "content", "") or "", attachments=tuple(attachments),
                          thread=_str_field(body, "thread"), client_id=_str_field(body, "client_id"), task=task, via=p.via,
                          important=important_flag(body, default=False) is True)
        message, created = await self.service.post(p.user, req)
        return web.json_response(message.to_wire(), status=201 if created else 200)

    async def get_message(self, request: web.Request) -> web.Response:
        p = await self.who(request, meeting=True)
        message_id = await self._message_for(p, request.match_info["id"])
        return web.json_response((await self.service.get_message(p.user, message_id)).to_wire())

    async def edit_message(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True, meeting=True)
        await self._message_for(p, request.match_info["id"])
        body = await read_json_object(request, allowed={"content", "important"})
        content = _str_field(body, "content")
        important = important_flag(body, default=None)
        if content is None and important is None:
            raise InvalidField("content (or important) is required", field="content")
        message = None
        if content is not None:
            message = await self.service.edit(p.user, request.match_info["id"], content)
        if important is not None:
            message = await self.service.set_important(p.user, request.match_info["id"], important)
        assert message is not None
        return web.json_response(message.to_wire())

    async def recall_message(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True, meeting=True)
        await self._message_for(p, request.match_info["id"])
        return web.json_response((await self.service.recall(p.user, request.match_info["id"])).to_wire())

    async def add_reaction(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True, meeting=True)
        await self._message_for(p, request.match_info["id"])
        body = await read_json_object(request, allowed={"emoji"})
        emoji = _str_field(body, "emoji") or ""
        return web.json_response((await self.service.react(p.user, request.match_info["id"], emoji, True)).to_wire())

    async def remove_reaction(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True, meeting=True)
        await self._message_for(p, request.match_info["id"])
        emoji = request.match_info["emoji"]
        return web.json_response((await self.service.react(p.user, request.match_info["id"], emoji, False)).to_wire())

    # Tasks, search, sync ----------------------------------------------------------------------

    async def patch_task(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True, meeting=True)
        await self._message_for(p, request.match_info["id"])
        body = await read_json_object(request, allowed={"status", "title", "assignee", "due", "note"})
        patch = TaskPatch(status=_str_field(body, "status"), title=_str_field(body, "title"),
                          assignee=_str_field(body, "assignee"), due=parse_time(body.get("due"), "due"),
                          clear_due="due" in body and body["due"] is None, note=_str_field(body, "note"))
        return web.json_response((await self.service.update_task(p.user, request.match_info["id"], patch)).to_wire())

    async def list_tasks(self, request: web.Request) -> web.Response:
        p = await self.who(request)
        status = request.query.get("status", "open")
        if status not in ("open", "all"):
            raise InvalidField("status is open or all", field="status")
        tasks = await self.service.tasks(p.user, request.query.get("assignee", "me"), status == "open")
        return web.json_response({"tasks": _messages(tasks)})

    async def search(self, request: web.Request) -> web.Response:
        p = await self.who(request)
        q = request.query.get("q", "")
        if len(q) > 200:
            raise InvalidField("q may be at most 200 characters", field="q")
        query = SearchQuery(text=q, author=request.query.get("from") or None,
                            before=parse_time(request.query.get("before"), "before"),
                            after=parse_time(request.query.get("after"), "after"),
                            limit=_int(request, "limit", 50, 1, 200) or 50)
        started = time.perf_counter()
        hits = await self.service.search(p.user, query, request.query.get("channel") or None)
        return web.json_response({"messages": _messages(hits),
                                  "took_ms": round((time.perf_counter() - started) * 1000, 2)})

    async def sync(self, request: web.Request) -> web.Response:
        p = await self.who(request)
        since = _int(request, "since", 0, 0, 2 ** 62) or 0
        limit = _int(request, "limit", 500, 1, 2000) or 500
        result = await self.service.sync(p.user, since, limit)
        channels = await self.service.channels(p.user)
        return web.json_response({
            "updated": _messages(result.updated),
            "deleted": [{"id": m.id, "channel": m.channel_id, "seq": m.seq} for m in result.deleted],
            "next": str(result.next), "has_more": result.has_more,
            "channels": [{**m.channel.to_wire(), "unread": m.unread} for m in channels],
        })

    # Files ------------------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        p = await self.who(request, write=True, meeting=True)
        org = await self.service.org(p.org)
        require(p.user, Action.UPLOAD_FILES, await self.service.table(p.org))
        if not request.content_type.startswith("multipart/"):
            raise BadMultipart("upload files as multipart/form-data in a part named 'file'")
        try:
            reader = await request.multipart()
        except (ValueError, AssertionError) as exc:
            raise BadMultipart(f"unreadable multipart body: {exc}") from exc
        allowance = await self.service.upload_allowance(p.user, self.config.guest_upload_bytes_per_day, time.time())
        staged: list[Staged] = []
        try:  # every part is checked before any is filed: one refused part stores nothing
            while True:
                try:
                    part = await reader.next()
                except (HttpProcessingError, ValueError) as exc:  # a part's headers that do not parse
                    raise BadMultipart(f"unreadable multipart body: {exc.__class__.__name__}") from exc
                if part is None:
                    break
                if not isinstance(part, BodyPartReader) or part.name != "file":
                    raise BadMultipart("only parts named 'file' are accepted")
                if len(staged) >= 10:
                    raise BadMultipart("at most 10 files per upload")
                left = None if allowance is None else allowance - sum(s.meta.size for s in staged)
                one = await self.vault.receive(part, p.user.login, org, left)
                staged.append(replace(one, meta=replace(one.meta, org=p.org)))  # the uploader's organisation
            if not staged:
                raise BadMultipart("no part named 'file'")
            for s in staged:
                await self.vault.commit(s)
                await self.store.put_file(s.meta)
        finally:
            for s in staged:
                await self.vault.discard(s)  # a no-op for the ones filed
        wire = [s.meta.to_wire() for s in staged]
        return web.json_response({"file": wire[0], "files": wire}, status=201)

    async def file_link(self, request: web.Request) -> web.Response:
        """A link that downloads this file for a few minutes without a credential (for `<a>` and new tabs)."""
        p = await self.who(request, write=True, meeting=True)
        meta = await self._file_for(p, request.match_info["id"])
        url, expires = self.links.url(meta.id)
        return web.json_response({"url": url, "expires": expires})

    async def download(self, request: web.Request) -> web.StreamResponse:
        refuse_token_in_url(request, "send 'Authorization: Bearer …' or ask POST /v1/files/{id}/link for a link")
        file_id = request.match_info["id"]
        if "sig" in request.query or "expires" in request.query:
            # Reading was checked when the link was made; the signature binds it to this file.
            self.links.verify(file_id, request.query.get("expires", ""), request.query.get("sig", ""))
            found = await self.store.get_file(file_id)
            # Recalled since the link was made, or another organisation's file (the link works at its Host only).
            if found is None or found.withdrawn or found.org != request_org(request):
                raise FileNotFound(f"no file {file_id!r}")
            meta = found
        else:
            p = await self.who(request, meeting=True)
            meta = await self._file_for(p, file_id)
        path = self.vault.path_of(meta.sha256)
        quoted = urllib.parse.quote(meta.name, safe="")
        return web.FileResponse(path, headers={
            "Content-Type": meta.mime,
            "Content-Disposition": f"attachment; filename*=UTF-8''{quoted}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=3600",
            "Content-Security-Policy": "sandbox",
        })

    # Live -------------------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        refuse_token_in_url(request, 'send {"type": "auth", "token": …} as the first frame')
        check_origin(request, self.server)
        # No per-message deflate: chat frames are small and compressing each one per socket costs fan-out CPU.
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=self.config.max_ws_message_bytes, compress=False)
        await ws.prepare(request)
        authenticated = await self._socket_auth(ws, request_org(request), request.cookies.get(SESSION_COOKIE))
        if authenticated is None:
            return ws
        p, sid, last = authenticated
        cursor = await self.store.current_seq()
        resumed = None
        if sid is not None and last is not None:
            resumed = self.hub.resume(sid, p.user.login, last, scope=p.channel_id)
        if resumed is not None:
            session, missed = resumed
        else:
            channels = [p.channel_id] if p.channel_id else await self.store.channel_ids_of(p.user.login)
            session, missed = self.hub.open(p.user.login, channels, scope=p.channel_id), []
        self.hub.attach(session, ws)
        session.outbox.extend(missed)
        hello = {"type": "hello", "session": session.id, "resumed": resumed is not None,
                 "last_seq": session.seq - len(missed), "cursor": str(cursor), "user": p.user.to_wire()}
        await ws.send_str(json.dumps(hello))
        session.wake.set()
        pump = asyncio.create_task(self.hub.pump(session, ws))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_ws_text(session, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            if session.ws is ws:
                self.hub.detach(session)
        return ws

    async def _socket_auth(self, ws: web.WebSocketResponse, org: str,
                           cookie: str | None = None) -> tuple[Principal, str | None, int | None] | None:
        """Reads the `auth` frame, which must come first and in time; on failure says why and closes 4401."""
        try:
            msg = await ws.receive(timeout=self.server.ws_auth_timeout_seconds)
        except asyncio.TimeoutError:
            await self._refuse_socket(ws, Unauthorized("no auth frame in time"))
            return None
        if msg.type != WSMsgType.TEXT:
            if not ws.closed:
                await self._refuse_socket(ws, Unauthorized("the first frame must be a text auth frame"))
            return None
        try:
            token, sid, last = _auth_frame(msg.data, cookie)
            if token == cookie and not self.auth.verify(token).is_user_token:
                raise Unauthorized("the session cookie holds no session")
            principal = await self.auth.from_credential(token, org)
            self.auth.note_active(principal)
        except ConveneError as err:
            await self._refuse_socket(ws, err)
            return None
        return principal, sid, last

    @staticmethod
    async def _refuse_socket(ws: web.WebSocketResponse, err: ConveneError) -> None:
        with contextlib.suppress(ConnectionError):
            await ws.send_str(json.dumps({"type": "error", "error": err.to_wire()}))
        await ws.close(code=CLOSE_UNAUTHORIZED, message=err.code.encode())

    async def _on_ws_text(self, session: Session, data: str) -> None:
        def reply(obj: dict[str, Any]) -> None:
            session.outbox.append(json.dumps(obj))
            session.wake.set()

        try:
            frame = json.loads(data)
        except json.JSONDecodeError:
            reply({"type": "error", "error": {"code": "malformed_json", "message": "frames are JSON objects"}})
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "ping":
            reply({"type": "pong", "id": frame.get("id")})
        elif kind == "typing":
            channel = frame.get("channel")
            if isinstance(channel, str) and channel in session.channels:
                try:
                    self.limiter.take(f"typing:{session.login}")
                except RateLimited:
                    return  # typing notices are best effort: a flood is dropped, not echoed
                await self.bus.publish({"type": "typing", "channel": channel, "user": session.login})
            else:
                reply({"type": "error", "error": {"code": "not_a_member", "message": "not in that channel"}})
        elif kind == "action":
            self._click(session, frame, reply)
        else:
            reply({"type": "error", "error": {"code": "unknown_message_type", "message": f"unknown type {kind!r}"}})

    def _click(self, session: Session, frame: dict[str, Any], reply: Callable[[dict[str, Any]], None]) -> None:
        """`{"type": "action", "message_id", "action_id"}`: a button click. It runs beside the socket's reading
        (the integration has up to 3 s to answer); its outcome comes back as `action_result` or `error`."""
        message_id, action_id = frame.get("message_id"), frame.get("action_id")
        if not isinstance(message_id, str) or not message_id or not isinstance(action_id, str) or not action_id:
            reply({"type": "error", "error": {"code": "invalid_field",
                                              "message": "an action frame needs message_id and action_id"}})
            return
        hook = self.action_hook
        if hook is None:
            reply({"type": "error", "error": {"code": "not_found", "message": "this server has no integrations"}})
            return
        try:
            self.limiter.take(f"user:{session.login}")
        except RateLimited as err:
            reply({"type": "error", "error": err.to_wire()})
            return

        async def run() -> None:
            try:
                outcome = await hook(session.login, session.scope, message_id, action_id)
            except ConveneError as err:
                reply({"type": "error", "error": err.to_wire(), "message_id": message_id})
                return
            reply({"type": "action_result", "message_id": message_id, "action_id": action_id, **outcome})

        task = asyncio.create_task(run())
        self._clicks.add(task)
        task.add_done_callback(self._clicks.discard)

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    async def signin_page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_CHAT_DIR.parent / "signin.html", headers={"Cache-Control": "no-store"})

    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_CHAT_DIR / "chat.html", headers={"Cache-Control": "no-store"})

    # Lifecycle --------------------------------------------------------------------------------

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        await self.store.open()
        await self.bus.start()
        jobs = [asyncio.create_task(reminder_loop(self.service, self.config.reminder_interval_seconds)),
                *([asyncio.create_task(retention_loop(self.retention, self.config.retention_interval_seconds))]
                  if self.retention is not None else []),
                asyncio.create_task(file_sweep_loop(self.store, self.vault, self.config.unattached_file_seconds,
                                                    self.config.file_sweep_interval_seconds)),
                asyncio.create_task(self._expire_sessions())]
        yield
        for job in jobs:
            job.cancel()
        await asyncio.wait(jobs, timeout=5)  # bounded: shutdown never hangs on a job
        await self.cancel_clicks()
        await self.close_sockets(app)
        await self.bus.stop()
        await self.store.close()

    async def cancel_clicks(self) -> None:
        """Stops the button clicks still running (their integrations' answers would reach closed sockets)."""
        clicks = list(self._clicks)
        for click in clicks:
            click.cancel()
        await asyncio.gather(*clicks, return_exceptions=True)

    async def close_deactivated(self, login: str) -> None:
        """Another process deactivated `login` (told by the process's deactivation watch): its sockets here close,
        and its bots' (their keys fail anyway)."""
        self.hub.end_login(login, CLOSE_DEACTIVATED, b"deactivated")
        await self._end_bots_of(login)

    async def _end_bots_of(self, owner: str) -> int:
        """Closes the live sockets of the bots `owner` made (their keys already fail: bot_disabled)."""
        if self.auth.bots is None:
            return 0
        return sum(self.hub.end_login(bot, CLOSE_DEACTIVATED, b"owner deactivated")
                   for bot in await self.auth.bots.owned_by(owner))

    async def _expire_sessions(self) -> None:
        while True:
            await asyncio.sleep(10)
            self.hub.expire()

    async def close_sockets(self, app: web.Application) -> None:
        for ws in self.hub.sockets():
            await ws.close(code=1001, message=b"server shutting down")

    def routes(self, app: web.Application) -> None:
        r = app.router
        if not any(res.canonical == "/v1/openapi.json" for res in r.resources()):  # the front door's covers chat too
            r.add_get("/v1/openapi.json", self.openapi)
        r.add_get("/chat", self.page)
        r.add_get("/signin", self.signin_page)
        r.add_get("/v1/me", self.me)
        r.add_post("/v1/auth/login", self.login)
        r.add_post("/v1/auth/logout", self.logout)
        r.add_get("/v1/org", self.get_org)
        r.add_patch("/v1/org", self.patch_org)
        r.add_get("/v1/users", self.list_users)
        r.add_post("/v1/users", self.add_user)
        r.add_patch("/v1/users/{login}", self.patch_user)
        r.add_post("/v1/users/{login}/tokens", self.user_token)
        r.add_post("/v1/users/{login}/deactivate", self.deactivate_user)
        r.add_get("/v1/departments", self.departments)
        r.add_post("/v1/channels", self.create_channel)
        r.add_get("/v1/channels", self.list_channels)
        r.add_get("/v1/channels/browse", self.browse_channels)
        r.add_get("/v1/channels/{id}", self.get_channel)
        r.add_patch("/v1/channels/{id}", self.patch_channel)
        r.add_get("/v1/channels/{id}/members", self.list_members)
        r.add_post("/v1/channels/{id}/members", self.change_members)
        r.add_post("/v1/channels/{id}/read", self.mark_read)
        r.add_get("/v1/channels/{id}/messages", self.history)
        r.add_post("/v1/messages", self.post_message)
        r.add_get("/v1/messages/{id}", self.get_message)
        r.add_patch("/v1/messages/{id}", self.edit_message)
        r.add_delete("/v1/messages/{id}", self.recall_message)
        r.add_post("/v1/messages/{id}/reactions", self.add_reaction)
        r.add_delete("/v1/messages/{id}/reactions/{emoji}", self.remove_reaction)
        r.add_post("/v1/watermark/tamper", self.watermark.tamper)
        r.add_patch("/v1/tasks/{id}", self.patch_task)
        r.add_get("/v1/tasks", self.list_tasks)
        r.add_get("/v1/search", self.search)
        r.add_get("/v1/sync", self.sync)
        r.add_post("/v1/files", self.upload)
        r.add_get("/v1/files/{id}", self.download)
        r.add_post("/v1/files/{id}/link", self.file_link)
        r.add_get("/v1/chat/ws", self.websocket)


CHAT_API = web.AppKey("chat_api", ChatApi)


def build_store(config: ChatConfig) -> ChatStore:
    # One durable store (SQLite in the data dir, or PostgreSQL); --redis only shares the event bus.
    return SqlChatStore(Database.for_config(config.database_url, config.data_dir))


def build_bus(config: ChatConfig) -> Bus:
    if config.redis_url:
        return RedisBus(config.redis_url, config.redis_prefix + "events")
    return LocalBus()


def setup_chat(app: web.Application, config: Config, chat_config: ChatConfig | None = None) -> ChatApi:
    cfg = chat_config or ChatConfig.from_config(config)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    secret = server_secret(cfg.data_dir, config.token_secret_file)
    # The front door's identity state when it has set it up (one ledger, one key store), else our own.
    tokens = app[TOKENS] if TOKENS in app else TokenIssuer(secret)
    db = app[DATABASE] if DATABASE in app else Database.for_config(cfg.database_url, cfg.data_dir)
    keys = app[API_KEYS] if API_KEYS in app else ApiKeyStore(db)
    meetings = app[MEETINGS] if MEETINGS in app else MeetingLedger(db)
    api = ChatApi(cfg, SqlChatStore(db), build_bus(cfg), tokens, keys, server=config, links=FileLinks(secret),
                  meetings=meetings)
    api.accounts = AccountStore(db)
    api.lockout = SignInAttempts(db)
    api.service.audit = app[AUDIT] if AUDIT in app else Recorder.on(db)
    api.auth.csrf_secret = secret
    api.auth.accounts = api.accounts
    api.auth.bots = BotRegistry(db, SecretSealer(secret))
    attach_permissions(app, api, db)
    api.service.legal_holds = HoldStore(db)
    api.retention = Retention(api.service, db, api.vault)
    GovernanceApi(api, api.service.legal_holds, api.retention).routes(app)
    app[CHAT] = api.service
    app[CHAT_API] = api
    api.routes(app)
    app.cleanup_ctx.append(api.lifecycle)
    # Deactivations made by other processes: the process's one watch reads them while this has sessions.
    accounts = api.accounts
    deactivation_watch(app, lambda: accounts).listen(lambda: api.hub.session_count() > 0, api.close_deactivated)
    app.on_shutdown.append(api.close_sockets)
    return api
