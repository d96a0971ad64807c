"""Scheduled posts over REST: POST/GET /v1/scheduled_posts, GET/DELETE /v1/scheduled_posts/{id}, and the
scheduler task of this process (started and stopped with the app).

Who: chat users (API keys, user tokens, the sign-in session), never meeting tokens (out_of_scope). A post is
scheduled into a channel its author is a member of and may post in (checked now and again at send time). Each
user sees and cancels their own; admins (manage_any_channel) see and cancel everyone's, but the text of another's
post only when they are a member of its channel (else the post comes without `text`: a DM or private group's
words are not the admin's to read). Others' posts answer 404 scheduled_post_not_found, as if they did not exist.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiohttp import web

from chat.auth import Principal
from chat.web import CHAT_API, ChatApi
from common.errors import InvalidField, InvalidState
from common.wire import read_json_object
from identity.appkeys import DATABASE
from identity.permissions import Action, require
from integrations.recurrence import KINDS, local_midnight, parse
from integrations.schedule_errors import ScheduledPostNotFound, TooManyScheduled
from integrations.scheduled_store import SCHEDULED, ScheduledPost, ScheduledStore, new_post_id
from integrations.scheduler import POLL_SECONDS, ChatSender, Scheduler

log = logging.getLogger(__name__)

SCHEDULER = web.AppKey("scheduler", Scheduler)
MAX_WAITING_PER_USER = 100  # scheduled posts one user may have waiting at once
FIELDS = {"channel", "text", "at", "rrule", "cron", "timezone"}


def parse_at(value: object) -> float:
    """An ISO 8601 instant with its offset (`2026-12-01T18:00:00+08:00` or `…Z`); a bare local time is refused,
    since the server could only guess its zone."""
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidField("at must be an ISO 8601 time with an offset", field="at")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidField("at must be an ISO 8601 time with an offset", field="at") from exc
    if parsed.tzinfo is None:
        raise InvalidField("at needs an offset (Z or +08:00): a bare local time is ambiguous", field="at")
    return parsed.timestamp()


class ScheduledPostsApi:
    def __init__(self, chat: ChatApi, store: ScheduledStore, scheduler: Scheduler) -> None:
        self.chat = chat
        self.store = store
        self.scheduler = scheduler

    async def _is_admin(self, p: Principal) -> bool:
        return await self.chat.service.holds(p.user, Action.MANAGE_ANY_CHANNEL)

    async def _visible(self, p: Principal, post_id: str) -> ScheduledPost:
        post = await self.store.get(post_id)
        if post is None or post.org_id != p.org or (post.author != p.user.login and not await self._is_admin(p)):
            raise ScheduledPostNotFound(f"no scheduled post {post_id!r}")
        return post

    async def _shown(self, p: Principal, posts: list[ScheduledPost]) -> list[dict[str, Any]]:
        """The posts as the caller sees them: another's without `text` unless the caller is in its channel."""
        if all(post.author == p.user.login for post in posts):
            return [post.to_wire() for post in posts]
        mine = {m.channel.id for m in await self.chat.service.channels(p.user)}
        shown = []
        for post in posts:
            wire = post.to_wire()
            if post.author != p.user.login and post.channel_id not in mine:
                del wire["text"]
            shown.append(wire)
        return shown

    async def _new_post(self, p: Principal, body: dict[str, Any], now: float) -> ScheduledPost:
        text = body.get("text")
        limit = self.chat.config.max_content_chars
        if not isinstance(text, str) or not text.strip() or len(text) > limit:
            raise InvalidField(f"text must be a non-empty string of at most {limit} characters", field="text")
        channel = body.get("channel")
        if not isinstance(channel, str) or not channel:
            raise InvalidField("channel must be a channel id or name", field="channel")
        kinds = [k for k in KINDS if body.get(k) is not None]
        if len(kinds) > 1:
            raise InvalidField("give rrule or cron, not both", field="cron")
        at = None if body.get("at") is None else parse_at(body["at"])
        if not kinds:
            if at is None:
                raise InvalidField("at is required for a one-time post", field="at")
            if body.get("timezone") is not None:
                raise InvalidField("timezone is for recurring posts (rrule or cron)", field="timezone")
            if at <= now:
                raise InvalidField("at must be in the future", field="at")
            rule_kind = rule = zone = None
            start, next_run = at, at
        else:
            rule_kind, zone = kinds[0], body.get("timezone", "UTC")
            start = at if at is not None else local_midnight(now, zone if isinstance(zone, str) else "UTC")
            recurrence = parse(rule_kind, body[rule_kind], zone, start)
            rule = recurrence.rule
            first = await asyncio.to_thread(recurrence.next_after, max(now, start - 1e-6))  # CPU work
            if first is None:
                raise InvalidField(f"{rule_kind} has no occurrence after now", field=rule_kind)
            next_run = first
        require(p.user, Action.POST, await self.chat.service.table(p.org))
        target = await self.chat.service.readable(p.user, channel)  # a member now (and again when it is sent)
        return ScheduledPost(id=new_post_id(), author=p.user.login, channel_id=target.id, text=text,
                             rule_kind=rule_kind, rule=rule, timezone=zone if rule_kind else None, start=start,
                             status=SCHEDULED, next_run=next_run, created_at=now, org_id=p.org)

    async def create(self, request: web.Request) -> web.Response:
        p = await self.chat.who(request, write=True)
        body = await read_json_object(request, allowed=FIELDS)
        post = await self._new_post(p, body, time.time())
        if await self.store.count_active(p.user.login) >= MAX_WAITING_PER_USER:
            raise TooManyScheduled(f"at most {MAX_WAITING_PER_USER} scheduled posts may wait per user")
        await self.store.add(post)
        self.scheduler.wake()
        return web.json_response(post.to_wire(), status=201)

    async def list(self, request: web.Request) -> web.Response:
        p = await self.chat.who(request)
        author = None if await self._is_admin(p) else p.user.login
        posts = await self.store.listed(author, p.org)
        return web.json_response({"scheduled_posts": await self._shown(p, posts)})

    async def get(self, request: web.Request) -> web.Response:
        p = await self.chat.who(request)
        post = await self._visible(p, request.match_info["id"])
        runs = await self.store.runs(post.id)
        return web.json_response({**(await self._shown(p, [post]))[0], "history": [r.to_wire() for r in runs]})

    async def cancel(self, request: web.Request) -> web.Response:
        p = await self.chat.who(request, write=True)
        post = await self._visible(p, request.match_info["id"])
        if not await self.store.cancel(post.id):
            raise InvalidState(f"this scheduled post is {post.status}, not waiting")
        cancelled = await self.store.get(post.id)
        assert cancelled is not None
        return web.json_response((await self._shown(p, [cancelled]))[0])


def setup_scheduled_posts(app: web.Application, poll_seconds: float = POLL_SECONDS) -> None:
    """Mounts the routes and the scheduler task; call after setup_chat (it posts through chat)."""
    chat = app[CHAT_API]
    assert chat.accounts is not None
    store = ScheduledStore(app[DATABASE])
    scheduler = Scheduler(store, ChatSender(chat.service, chat.accounts), poll_seconds=poll_seconds)
    app[SCHEDULER] = scheduler
    api = ScheduledPostsApi(chat, store, scheduler)
    app.router.add_post("/v1/scheduled_posts", api.create)
    app.router.add_get("/v1/scheduled_posts", api.list)
    app.router.add_get("/v1/scheduled_posts/{id}", api.get)
    app.router.add_delete("/v1/scheduled_posts/{id}", api.cancel)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        # After chat's lifecycle in cleanup_ctx: its store is open before the first tick and closes after the last.
        task = asyncio.create_task(scheduler.run(), name="scheduled-posts")
        yield
        task.cancel()
        await asyncio.wait([task], timeout=5)

    app.cleanup_ctx.append(lifetime)
