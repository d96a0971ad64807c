"""The webhooks' HTTP surface.

Managing (the `manage_integrations` permission; Authorization as for the rest of the API):
    POST   /v1/hooks/incoming  {"channel", "name"}                      -> 201 {id, url, …}  (the URL once)
    POST   /v1/hooks/github    {"channel", "name"}                      -> 201 {id, url, secret, …}  (once)
    POST   /v1/hooks/gitlab    {"channel", "name"}                      -> 201 {id, url, secret, …}  (once)
    POST   /v1/hooks/outgoing  {"name", "url", "channel"?, "trigger_words"?} -> 201 {id, secret, …}  (once)
    GET    /v1/hooks[?kind=]   -> {"hooks": […]};  GET /v1/hooks/{id} -> the hook and its recent deliveries
    DELETE /v1/hooks/{id}
Every organisation has its own hooks: each is made in its maker's organisation, posts only into that
organisation's channels, and its URL is the organisation's Host (another Host answers 404, as for a wrong id).
Receiving (no Authorization: the URL, the signature or the token is the credential):
    POST /v1/hooks/incoming/{id}/{secret}  a Slack message (JSON or form `payload=`)  -> 200 text/plain "ok"
    POST /v1/hooks/github/{id}             X-Hub-Signature-256, X-GitHub-Event, X-GitHub-Delivery
    POST /v1/hooks/gitlab/{id}             X-Gitlab-Token, X-Gitlab-Event, Idempotency-Key / X-Gitlab-Event-UUID
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from audit.appkeys import AUDIT
from audit.event import AuditEvent
from audit.recorder import Recorder
from chat.auth import Principal
from chat.service import ChatService
from chat.web import CHAT_API, ChatApi
from common.config import Config
from common.errors import InvalidField, NotPermitted
from common.names import display_name
from common.ratelimit import RateLimiter
from common.wire import read_json_object
from identity.appkeys import DATABASE
from identity.orgs import org_base_url, request_org
from identity.secrets_store import server_secret
from integrations.access import manager, may_remove, sees
from integrations.address_guard import check_url
from integrations.errors import HookDisabled, HookNotFound, HookOwnerLeft
from integrations.github import github_post
from integrations.gitlab import gitlab_post
from integrations.hook_poster import HookPoster, bot_login
from integrations.hook_secrets import (
    new_salt,
    new_url_secret,
    shared_secret,
    url_secret_hash,
    url_secret_matches,
)
from integrations.hook_store import Hook, HookStore
from integrations.outgoing import OutgoingHooks
from integrations.signing import verify_github, verify_token
from integrations.slack_message import parse_body, read_message

log = logging.getLogger(__name__)

HOOK_RATE_PER_SECOND = 1.0  # Slack's limit for incoming webhooks: about one message a second, short bursts allowed
HOOK_BURST = 20
MAX_TRIGGER_WORDS = 20
DELIVERY_DAYS = 7  # Git delivery ids and outgoing outcomes are kept this long
PRUNE_INTERVAL_SECONDS = 6 * 3600.0


def _name(body: dict[str, Any]) -> str:
    return display_name(body.get("name"), "name", max_len=64)  # one line: it names the hook's bot too


def _triggers(body: dict[str, Any]) -> tuple[str, ...]:
    words = body.get("trigger_words", [])
    if not isinstance(words, list) or len(words) > MAX_TRIGGER_WORDS or not all(
            isinstance(w, str) and 1 <= len(w) <= 64 and not any(c.isspace() for c in w) for w in words):
        raise InvalidField(f"trigger_words is a list of at most {MAX_TRIGGER_WORDS} words (no spaces)",
                           field="trigger_words")
    return tuple(dict.fromkeys(words))


def _delivery_keys(delivery_id: str | None) -> list[str]:
    return [f"git:{delivery_id[:100]}"] if delivery_id else []


class HooksApi:
    def __init__(self, chat_api: ChatApi, hooks: HookStore, secret_key: bytes, config: Config,
                 audit: Recorder | None) -> None:
        self.chat_api = chat_api
        self.chat: ChatService = chat_api.service
        self.hooks = hooks
        self._secret = secret_key  # the server secret: hooks' shared secrets are derived from it
        self.public_url = config.url
        self.audit = audit
        self.poster = HookPoster(self.chat, chat_api.config.max_content_chars, chat_api.accounts)
        self.outgoing = OutgoingHooks(hooks, self.chat, self.poster, secret_key, config.hooks_allow_private,
                                      shared=chat_api.config.redis_url is not None)
        self.limiter = RateLimiter(HOOK_RATE_PER_SECOND, HOOK_BURST)
        self.allow_private = config.hooks_allow_private

    async def _manager(self, request: web.Request) -> Principal:
        return await manager(self.chat_api, request, write=request.method != "GET")

    async def _received(self, request: web.Request, kind: str) -> Hook:
        """The hook a delivery names, of the organisation whose Host it came to (another's: 404 as unknown)."""
        hook = await self._hook(request.match_info["id"], kind)
        if hook.org_id != request_org(request):
            raise HookNotFound(f"no such {kind} webhook")
        return hook

    async def _hook(self, hook_id: str, kind: str | None = None) -> Hook:
        hook = await self.hooks.get(hook_id) if len(hook_id) <= 32 else None
        if hook is None or (kind is not None and hook.kind != kind):
            raise HookNotFound(f"no {kind or ''} hook {hook_id!r}".replace("  ", " "))
        return hook

    async def _managed(self, p: Principal, hook_id: str) -> Hook:
        """A hook the caller may see; others' answer 404, as if they did not exist (an outgoing URL may hold a
        token)."""
        hook = await self._hook(hook_id)
        if not sees(p.user, hook.owner, hook.org_id):
            raise HookNotFound(f"no hook {hook_id!r}")
        return hook

    async def _live(self, hook: Hook) -> Hook:
        """A receiver's hook, refused once its owner is deactivated or has left its channel (checked after the
        credential)."""
        if not await self.poster.owner_active(hook):
            raise HookDisabled("this hook's owner was deactivated")
        if hook.channel_id is not None and not await self.chat.store.is_member(hook.channel_id, hook.owner):
            raise HookOwnerLeft("this hook's owner is no longer a member of its channel")
        return hook

    async def _audit(self, event: str, hook: Hook, actor: str) -> None:
        if self.audit is not None:
            state = {k: v for k, v in hook.to_wire().items() if k != "created_at"}
            await self.audit.record(AuditEvent(event=event, object_type="hook", object_id=hook.id, actor=actor,
                                               before=state if event.endswith("delete") else None,
                                               after=None if event.endswith("delete") else state))

    # Managing ---------------------------------------------------------------------------------

    async def _make(self, p: Principal, kind: str, name: str, channel_ref: str | None, **extra: Any) -> Hook:
        channel_id = None
        if channel_ref is not None:
            channel = await self.chat.readable(p.user, channel_ref)  # the maker is in it (404 / not_a_member)
            channel_id = channel.id
        hook_id = secrets.token_hex(6)
        hook = Hook(id=hook_id, kind=kind, name=name, channel_id=channel_id, owner=p.user.login,
                    bot_login=bot_login(hook_id), created_at=time.time(), org_id=p.org, **extra)
        bot = await self.poster.bot_for(hook.id, name, p.org)
        if channel_ref is not None:
            await self.poster.join(bot, await self.chat.resolve(channel_ref, p.org))
        await self.hooks.insert(hook)
        self.outgoing.forget()
        await self._audit("hook.create", hook, p.user.login)
        return hook

    def _channel_field(self, body: dict[str, Any], required: bool = True) -> str | None:
        channel = body.get("channel")
        if channel is None and not required:
            return None
        if not isinstance(channel, str) or not channel:
            raise InvalidField("channel must name a channel (its id or name)", field="channel")
        return channel

    async def create_incoming(self, request: web.Request) -> web.Response:
        p = await self._manager(request)
        body = await read_json_object(request, allowed={"channel", "name"})
        secret = new_url_secret()
        hook = await self._make(p, "incoming", _name(body), self._channel_field(body),
                                secret_hash=url_secret_hash(secret))
        url = f"{org_base_url(request, self.public_url)}/v1/hooks/incoming/{hook.id}/{secret}"
        return web.json_response({**hook.to_wire(), "url": url}, status=201)

    async def _create_git(self, request: web.Request, kind: str) -> web.Response:
        p = await self._manager(request)
        body = await read_json_object(request, allowed={"channel", "name"})
        salt = new_salt()
        hook = await self._make(p, kind, _name(body), self._channel_field(body), salt=salt)
        return web.json_response({**hook.to_wire(), "url": f"{org_base_url(request, self.public_url)}/v1/hooks/{kind}/{hook.id}",
                                  "secret": shared_secret(self._secret, hook.id, salt)}, status=201)

    async def create_github(self, request: web.Request) -> web.Response:
        return await self._create_git(request, "github")

    async def create_gitlab(self, request: web.Request) -> web.Response:
        return await self._create_git(request, "gitlab")

    async def create_outgoing(self, request: web.Request) -> web.Response:
        p = await self._manager(request)
        body = await read_json_object(request, allowed={"channel", "name", "url", "trigger_words"})
        name, url = _name(body), check_url(body.get("url"), self.allow_private)
        channel, triggers = self._channel_field(body, required=False), _triggers(body)
        if channel is None and not triggers:
            raise InvalidField("an outgoing hook needs a channel, trigger words, or both", field="trigger_words")
        salt = new_salt()
        hook = await self._make(p, "outgoing", name, channel, salt=salt, url=url, trigger_words=triggers)
        return web.json_response({**hook.to_wire(), "secret": shared_secret(self._secret, hook.id, salt)},
                                 status=201)

    async def list_hooks(self, request: web.Request) -> web.Response:
        p = await self._manager(request)
        kind = request.query.get("kind") or None
        if kind is not None and kind not in ("incoming", "github", "gitlab", "outgoing"):
            raise InvalidField("kind is incoming, github, gitlab or outgoing", field="kind")
        listed = [h for h in await self.hooks.list_hooks(kind) if sees(p.user, h.owner, h.org_id)]
        return web.json_response({"hooks": [h.to_wire() for h in listed]})

    async def get_hook(self, request: web.Request) -> web.Response:
        p = await self._manager(request)
        hook = await self._managed(p, request.match_info["id"])
        await self.outgoing.flush()  # this process's latest outcomes first
        deliveries = [d.to_wire() for d in await self.hooks.recent(hook.id)]
        failed = [d for d in deliveries if d["status"] == "failed" or d["error"]]
        return web.json_response({**hook.to_wire(), "deliveries": deliveries,
                                  "last_error": failed[0] if failed else None})

    async def delete_hook(self, request: web.Request) -> web.Response:
        p = await self._manager(request)
        hook = await self._managed(p, request.match_info["id"])
        if not await may_remove(self.chat, p.user, hook.owner):
            raise NotPermitted(f"only {hook.owner} or someone ranked above them deletes this hook")
        await self.hooks.delete(hook.id)
        self.outgoing.forget()
        await self._audit("hook.delete", hook, p.user.login)
        return web.json_response({"id": hook.id, "deleted": True})

    # Receiving --------------------------------------------------------------------------------

    async def receive_incoming(self, request: web.Request) -> web.Response:
        hook = await self._received(request, "incoming")
        if not url_secret_matches(request.match_info["secret"], hook.secret_hash):
            raise HookNotFound("no such incoming webhook")  # as an unknown id: the URL is the credential
        await self._live(hook)
        self.limiter.take(f"hook:{hook.id}")
        body = await request.read()
        message = read_message(parse_body(body, request.content_type))
        assert hook.channel_id is not None
        await self.poster.post(hook, hook.channel_id, message.text, message.username)
        return web.Response(text="ok", content_type="text/plain")

    async def _git_delivery(self, request: web.Request, kind: str) -> tuple[Hook, bytes, dict[str, Any]]:
        hook = await self._received(request, kind)
        body = await request.read()
        assert hook.salt is not None
        secret = shared_secret(self._secret, hook.id, hook.salt)
        if kind == "github":
            verify_github(secret, body, request.headers.get("X-Hub-Signature-256"))
        else:
            verify_token(secret, request.headers.get("X-Gitlab-Token"))
        await self._live(hook)
        # Counted after the signature: a flood of forged deliveries does not use up the real sender's allowance.
        self.limiter.take(f"hook:{hook.id}")
        # GitHub's "application/x-www-form-urlencoded" setting sends the same JSON as the form field payload=.
        return hook, body, parse_body(body, request.content_type, allow_any=True)

    async def _post_once(self, hook: Hook, keys: list[str], text: str | None) -> web.Response:
        """Posts `text` unless a delivery with any of `keys` was posted already (each key is claimed)."""
        if text is None:
            return web.json_response({"ok": True, "posted": False})
        taken: list[str] = []
        for key in keys:
            if not await self.hooks.claim(hook.id, key, "received"):
                for mine in taken:  # nothing posted: leave no half claim behind
                    await self.hooks.release(hook.id, mine)
                return web.json_response({"ok": True, "posted": False, "duplicate": True})
            taken.append(key)
        assert hook.channel_id is not None
        try:
            await self.poster.post(hook, hook.channel_id, text)
        except Exception:
            for key in taken:  # not posted: a redelivery may try again
                await self.hooks.release(hook.id, key)
            raise
        return web.json_response({"ok": True, "posted": True})

    async def receive_github(self, request: web.Request) -> web.Response:
        hook, body, payload = await self._git_delivery(request, "github")
        event = request.headers.get("X-GitHub-Event", "")
        # X-GitHub-Delivery is not signed: a replayed body under a new id is caught by the body's own digest.
        keys = _delivery_keys(request.headers.get("X-GitHub-Delivery"))
        keys.append(f"body:{hashlib.sha256(body).hexdigest()}")
        return await self._post_once(hook, keys, github_post(event, payload))

    async def receive_gitlab(self, request: web.Request) -> web.Response:
        hook, _, payload = await self._git_delivery(request, "gitlab")
        event = request.headers.get("X-Gitlab-Event", "")
        delivery = request.headers.get("Idempotency-Key") or request.headers.get("X-Gitlab-Event-UUID")
        return await self._post_once(hook, _delivery_keys(delivery), gitlab_post(event, payload))

    # Lifecycle --------------------------------------------------------------------------------

    async def _prune_loop(self) -> None:
        while True:
            try:
                await self.hooks.prune(time.time() - DELIVERY_DAYS * 86400)
            except Exception:  # noqa: BLE001 - housekeeping: the next round tries again
                log.exception("pruning old hook deliveries failed")
            await asyncio.sleep(PRUNE_INTERVAL_SECONDS)

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        await self.outgoing.start()
        self.chat.bus.subscribe(self.outgoing.on_event)
        pruning = asyncio.create_task(self._prune_loop())
        yield
        pruning.cancel()
        await asyncio.gather(pruning, return_exceptions=True)
        await self.outgoing.stop()

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/v1/hooks/incoming", self.create_incoming)
        r.add_post("/v1/hooks/github", self.create_github)
        r.add_post("/v1/hooks/gitlab", self.create_gitlab)
        r.add_post("/v1/hooks/outgoing", self.create_outgoing)
        r.add_get("/v1/hooks", self.list_hooks)
        r.add_get("/v1/hooks/{id}", self.get_hook)
        r.add_delete("/v1/hooks/{id}", self.delete_hook)
        r.add_post("/v1/hooks/incoming/{id}/{secret}", self.receive_incoming)
        r.add_post("/v1/hooks/github/{id}", self.receive_github)
        r.add_post("/v1/hooks/gitlab/{id}", self.receive_gitlab)


HOOKS = web.AppKey("hooks", HooksApi)


def setup_hooks(app: web.Application, config: Config) -> HooksApi:
    """Mounts the webhooks on the server's app (after chat, whose service, credentials and store they use)."""
    secret = server_secret(config.data_dir, config.token_secret_file)
    api = HooksApi(app[CHAT_API], HookStore(app[DATABASE]), secret, config,
                          app[AUDIT] if AUDIT in app else None)
    app[HOOKS] = api
    api.routes(app)
    app.cleanup_ctx.append(api.lifecycle)
    return api
