"""Outgoing webhooks: messages in a hook's channel (or starting with one of its trigger words) are POSTed, signed,
to the owner's URL, and a JSON answer `{"text"}` is posted back to the channel by the hook's bot.

The payload is Mattermost's outgoing-webhook payload (without its token: the request is signed instead, see
integrations/signing.py):

    {"org", "team_id", "channel_id", "channel_name", "timestamp" (ms), "user_id", "user_name", "post_id", "text",
     "trigger_word", "file_ids"}

Sending never holds up the post: the bus listener only starts a task. With several server processes on one Redis
bus every process sees the message: the one that first records the (hook, post) delivery in the store sends it.
A single process claims nothing (no other sees its messages). Outcomes are written in batches (every half second,
and before GET /v1/hooks/{id} reads them), not one write per delivery: deliveries share the store's writer with
the posts. Each try
waits `timeout` seconds at most; a network error, a timeout, a 5xx, 408 or 429 is tried again, up to `attempts`
tries with backoff (1 s, 2 s, …); another 4xx is final. The outcome (ok / failed, tries, the last error) is kept
in hook_deliveries and shown by GET /v1/hooks/{id}; a failure is also told to the owner by a direct message from
the hook's bot (at most one per hook per 10 minutes). Messages by any hook's bot never trigger a hook (no loops).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import aiohttp

from chat.model import Channel
from chat.service import ChatService
from common.http_body import BodyTooLarge, read_capped
from integrations.address_guard import AddressRefused
from integrations.hook_poster import HookPoster, is_hook_bot
from integrations.hook_secrets import shared_secret
from integrations.hook_store import Delivery, Hook, HookStore
from integrations.outbound import Outbound

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
CACHE_SECONDS = 2.0  # a hook made or deleted in any process is seen within this long
MAX_REPLY_BYTES = 64 * 1024
RETRYABLE = {408, 429}


def trigger_of(hook: Hook, text: str) -> str | None:
    """The trigger word the message starts with ("" for a hook without trigger words), or None: not for this hook."""
    if not hook.trigger_words:
        return ""
    words = text.split(maxsplit=1)
    first = words[0] if words else ""
    return first if first in hook.trigger_words else None


class OutgoingHooks:
    def __init__(self, hooks: HookStore, chat: ChatService, poster: HookPoster, server_secret: bytes,
                 allow_private: bool, shared: bool = False) -> None:
        self.hooks = hooks
        self.chat = chat
        self.poster = poster
        self._secret = server_secret
        self.shared = shared  # other processes see the same messages (a Redis bus): claim each delivery first
        self._outcomes: dict[tuple[str, str], Delivery] = {}
        self._flushing: asyncio.Task[None] | None = None
        self.timeout = 5.0
        self.attempts = 3
        self.backoff = 1.0
        self._cache: tuple[float, list[Hook]] = (0.0, [])
        self._tasks: set[asyncio.Task[None]] = set()
        self.http = Outbound(allow_private, user_agent="Convene-Webhook/1", connections=50)

    async def start(self) -> None:
        await self.http.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._flushing is not None:
            self._flushing.cancel()
        await self.flush()
        await self.http.close()

    def on_event(self, event: dict[str, Any], _text: str) -> None:
        """The bus listener: a new message starts a task; nothing here waits."""
        message = event.get("message")
        if event.get("type") != "message" or not isinstance(message, dict) or not self.http.running:
            return
        if message.get("deleted") or message.get("type") != "text" or is_hook_bot(str(message.get("author", ""))):
            return
        self._spawn(self._consider(message))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Waits until every send started so far has finished and its outcome is stored (tests, shutdown)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))
        await self.flush()

    def _note(self, hook: Hook, delivery: str, status: str, attempts: int, error: str) -> None:
        now = time.time()
        earlier = self._outcomes.get((hook.id, delivery))
        self._outcomes[(hook.id, delivery)] = Delivery(hook.id, delivery, status, attempts, error,
                                                       earlier.created_at if earlier else now, now)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        """Stores the outcomes noted so far (one write)."""
        batch, self._outcomes = list(self._outcomes.values()), {}
        try:
            await self.hooks.save(batch)
        except Exception:  # noqa: BLE001 - the outcomes are lost, the sends are not: log and go on
            log.exception("storing %d outgoing webhook outcomes failed", len(batch))

    def forget(self) -> None:
        """A hook was made or deleted here: read them again on the next message."""
        self._cache = (0.0, [])

    async def _outgoing(self) -> list[Hook]:
        stamp, hooks = self._cache
        if time.monotonic() - stamp > CACHE_SECONDS:
            hooks = await self.hooks.list_hooks("outgoing")
            self._cache = (time.monotonic(), hooks)
        return hooks

    async def _consider(self, message: dict[str, Any]) -> None:
        try:
            hooks = await self._outgoing()
            channel: Channel | None = None
            for hook in hooks:
                if hook.channel_id not in (None, message.get("channel")):
                    continue
                trigger = trigger_of(hook, str(message.get("content", "")))
                if trigger is None:
                    continue
                channel = channel or await self.chat.store.get_channel(str(message.get("channel")))
                if channel is None or not await self._owner_reaches(hook, channel):
                    continue
                if not await self.poster.owner_active(hook, cached=True):
                    continue
                if not self.shared or await self.hooks.claim(hook.id, f"post:{message.get('id')}", "sending"):
                    await self._deliver(hook, channel, message, trigger)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a hook's trouble must never reach the poster; it is logged
            log.exception("outgoing webhook for message %s failed", message.get("id"))

    async def _owner_reaches(self, hook: Hook, channel: Channel) -> bool:
        """A hook sends only what its owner may read: its own channel's (as a member) or a team channel's, of its
        own organisation (another organisation's messages never reach it)."""
        if channel.org != hook.org_id:
            return False
        if hook.channel_id is None and channel.kind != "team":
            return False
        return channel.kind == "team" or await self.chat.store.is_member(channel.id, hook.owner)

    def payload(self, hook: Hook, channel: Channel, message: dict[str, Any], trigger: str) -> bytes:
        body = {"org": hook.org_id, "team_id": hook.org_id, "channel_id": channel.id, "channel_name": channel.name,
                "timestamp": int(float(message.get("created_at", time.time())) * 1000),
                "user_id": message.get("author"), "user_name": message.get("author"), "post_id": message.get("id"),
                "text": message.get("content", ""), "trigger_word": trigger,
                "file_ids": [a.get("file_id") for a in message.get("attachments", []) if a.get("file_id")]}
        return json.dumps(body, ensure_ascii=False).encode()

    async def _deliver(self, hook: Hook, channel: Channel, message: dict[str, Any], trigger: str) -> None:
        body = self.payload(hook, channel, message, trigger)
        delivery = f"post:{message.get('id')}"
        error = ""
        for attempt in range(1, self.attempts + 1):
            reply, error, retry = await self._try(hook, body)
            if not error:
                self._note(hook, delivery, "ok", attempt, "")
                if reply:
                    if hook.channel_id is None:  # a hook on trigger words answers in any team channel: it joins
                        await self.poster.join(await self.poster.bot(hook), channel)
                    await self.poster.post(hook, channel.id, reply)
                return
            self._note(hook, delivery, "sending", attempt, error)
            if not retry or attempt == self.attempts:
                break
            await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        self._note(hook, delivery, "failed", attempt, error)
        log.warning("outgoing webhook %s gave up on post %s after %d tries: %s", hook.id, message.get("id"),
                    attempt, error)
        with contextlib.suppress(Exception):  # the notice is best effort: the status endpoint has it anyway
            await self.poster.notify_owner(hook, f"Outgoing webhook **{hook.name}** could not deliver a message "
                                                 f"from #{channel.name} after {attempt} tries: {error}")

    async def _try(self, hook: Hook, body: bytes) -> tuple[str | None, str, bool]:
        """One POST: (the reply's text, "" or the error, whether another try may help)."""
        assert hook.url is not None and hook.salt is not None
        secret = shared_secret(self._secret, hook.id, hook.salt)
        try:
            async with self.http.posting(hook.url, secret, body, "application/json", self.timeout) as r:
                if not 200 <= r.status < 300:
                    return None, f"HTTP {r.status}", r.status >= 500 or r.status in RETRYABLE
                raw = await read_capped(r, MAX_REPLY_BYTES)
                return _reply_text(raw, r.content_type), "", False
        except BodyTooLarge:
            return None, f"the reply is over {MAX_REPLY_BYTES} bytes", False
        except asyncio.TimeoutError:
            return None, f"no answer within {self.timeout:g} s", True
        except AddressRefused as exc:
            return None, str(exc), False
        except (aiohttp.ClientError, OSError) as exc:
            cause = getattr(exc, "os_error", None)
            if isinstance(cause, AddressRefused):  # another try resolves the same
                return None, f"refused: {cause}", False
            return None, f"{exc.__class__.__name__}: {exc}", True
        except Exception as exc:  # noqa: BLE001 - e.g. the URL no longer passes the address rules
            return None, f"{exc.__class__.__name__}: {exc}", False


def _reply_text(raw: bytes, content_type: str) -> str | None:
    if content_type != "application/json" or not raw.strip():
        return None
    try:
        reply = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    text = reply.get("text") if isinstance(reply, dict) else None
    return text if isinstance(text, str) and text.strip() else None
