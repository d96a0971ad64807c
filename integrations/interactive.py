"""Interactive messages: a bot posts a message with buttons; a click is sent, signed, to the bot's integration URL,
whose answer may replace the message (for everyone) or answer the clicker alone.

What clients see of a button is its action_id, text and style (chat.model.Button). Its value, the integration URL
and the poster's context stay in table `message_actions` and reach only the integration, in the click's POST
(JSON, signed with the bot's signing secret):

    {"type": "action", "user": {"id", "name"}, "channel": {"id", "name"}, "message_id", "action_id", "value",
     "context"}

The answer (within 3 s): empty (nothing changes); `{"replace_original": true, "text", "actions"?}` (the message's
text and buttons are replaced; without `actions` the buttons go); `{"text"}` (shown to the clicker alone).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chat.auth import Principal
from chat.errors import MessageRecalled, NotPermitted
from chat.model import Button, Message
from chat.service import ChatService, PostRequest
from common.errors import ConveneError, Forbidden, InvalidField, NotFound, OutOfScope
from identity.bots import BotRegistry
from integrations.outbound import IntegrationFailed, Outbound
from store.database import Database
from store.schema import message_actions

log = logging.getLogger(__name__)

MAX_BUTTONS = 10
MAX_CONTEXT_BYTES = 8192
MAX_VALUE = 2000
ACTION_ID = re.compile(r"^[\w.\-]{1,64}$")
STYLES = ("primary", "danger")


class ActionNotFound(NotFound):
    code = "action_not_found"


class BotUnavailable(Forbidden):
    """A click on a message of a bot whose owner was deactivated: nothing is sent."""

    code = "bot_disabled"


@dataclass(frozen=True)
class ActionSpec:
    action_id: str
    text: str
    value: str
    style: str | None = None

    @property
    def button(self) -> Button:
        return Button(action_id=self.action_id, text=self.text, style=self.style)

    def to_store(self) -> dict[str, Any]:
        return {"action_id": self.action_id, "text": self.text, "value": self.value, "style": self.style}


@dataclass(frozen=True)
class Stored:
    message_id: str
    bot: str
    url: str
    context: Any
    actions: tuple[ActionSpec, ...]


def parse_actions(raw: object, field: str = "actions") -> tuple[ActionSpec, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_BUTTONS:
        raise InvalidField(f"{field} is a list of at most {MAX_BUTTONS} buttons", field=field)
    out: list[ActionSpec] = []
    for item in raw:
        if not isinstance(item, dict) or not set(item) <= {"action_id", "text", "value", "style"}:
            raise InvalidField(f"a button is {{\"action_id\", \"text\", \"value\"?, \"style\"?}}", field=field)
        action_id, text, value, style = item.get("action_id"), item.get("text"), item.get("value", ""), item.get("style")
        if not isinstance(action_id, str) or not ACTION_ID.match(action_id):
            raise InvalidField("action_id is 1-64 letters, digits, '.', '-' or '_'", field=f"{field}.action_id")
        if not isinstance(text, str) or not 1 <= len(text.strip()) <= 75:
            raise InvalidField("a button's text is 1-75 characters", field=f"{field}.text")
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            raise InvalidField(f"a button's value is a string of at most {MAX_VALUE} characters",
                               field=f"{field}.value")
        if style is not None and style not in STYLES:
            raise InvalidField("style is primary or danger", field=f"{field}.style")
        if any(a.action_id == action_id for a in out):
            raise InvalidField(f"action_id {action_id!r} is used twice", field=f"{field}.action_id")
        out.append(ActionSpec(action_id=action_id, text=text.strip(), value=value, style=style))
    return tuple(out)


def _context_text(context: object) -> str:
    text = json.dumps(context, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) > MAX_CONTEXT_BYTES:
        raise InvalidField(f"context is at most {MAX_CONTEXT_BYTES} bytes of JSON", field="context")
    return text


def _actions_text(actions: tuple[ActionSpec, ...]) -> str:
    return json.dumps([a.to_store() for a in actions], ensure_ascii=False)


class InteractiveStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, message_id: str, bot: str, url: str, context_text: str,
                  actions: tuple[ActionSpec, ...]) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(message_actions.insert().values(
                message_id=message_id, bot=bot, url=url, context=context_text, actions=_actions_text(actions),
                created_at=time.time()))
        await self.db.write(op)

    async def get(self, message_id: str) -> Stored | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(message_actions)
                                      .where(message_actions.c.message_id == message_id))).first()
        if row is None:
            return None
        specs = tuple(ActionSpec(action_id=a["action_id"], text=a["text"], value=a["value"], style=a.get("style"))
                      for a in json.loads(row.actions))
        return Stored(message_id=row.message_id, bot=row.bot, url=row.url, context=json.loads(row.context),
                      actions=specs)

    async def set_actions(self, message_id: str, actions: tuple[ActionSpec, ...]) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(update(message_actions).where(message_actions.c.message_id == message_id)
                               .values(actions=_actions_text(actions)))
        await self.db.write(op)


class Interactive:
    def __init__(self, store: InteractiveStore, service: ChatService, outbound: Outbound,
                 bots: BotRegistry) -> None:
        self.store = store
        self.service = service
        self.outbound = outbound
        self.bots = bots

    async def post(self, p: Principal, body: dict[str, Any]) -> Message:
        """`{"to", "content", "actions", "url", "context"?, "thread"?}` from a bot made with POST /v1/bots."""
        if await self.bots.get(p.user.login) is None:
            raise NotPermitted("only bots made with POST /v1/bots post messages with buttons")
        to, content, thread = body.get("to"), body.get("content", ""), body.get("thread")
        if not isinstance(to, str) or not to:
            raise InvalidField("to must name a channel (its id or name)", field="to")
        if not isinstance(content, str) or (thread is not None and not isinstance(thread, str)):
            raise InvalidField("content and thread are strings", field="content")
        actions = parse_actions(body.get("actions"))
        if not actions:
            raise InvalidField("a message with buttons needs at least one", field="actions")
        url = self.outbound.check_url(body.get("url"))
        context_text = _context_text(body.get("context"))
        message, _ = await self.service.post(p.user, PostRequest(
            to=to, content=content, thread=thread, actions=tuple(a.button for a in actions)))
        await self.store.put(message.id, p.user.login, url, context_text, actions)
        return message

    async def click(self, login: str, scope: str | None, message_id: str, action_id: str) -> dict[str, Any]:
        """A click by `login` (a meeting token's socket: `scope` is its one channel). The outcome: "updated" (with
        the message), "ephemeral", "none" or "error" (the integration failed; the clicker was told)."""
        user = await self.service.store.get_user(login)
        if user is None:
            raise NotPermitted("unknown user")
        message = await self.service.get_message(user, message_id)  # message_not_found unless a member
        if scope is not None and message.channel_id != scope:
            raise OutOfScope("a meeting token reaches only its meeting's channel")
        if message.deleted:
            raise MessageRecalled("this message was recalled")
        stored = await self.store.get(message_id)
        spec = next((a for a in stored.actions if a.action_id == action_id), None) if stored else None
        if stored is None or spec is None or all(b.action_id != action_id for b in message.actions):
            raise ActionNotFound(f"no button {action_id!r} on this message")
        secret = await self.bots.signing_secret(stored.bot)
        if secret is None or await self.bots.disabled(stored.bot):
            raise BotUnavailable("the bot that posted this message is disabled")
        channel = await self.service.resolve(message.channel_id)
        payload = {"type": "action", "user": {"id": user.login, "name": user.name or user.login},
                   "channel": {"id": channel.id, "name": channel.name}, "message_id": message.id,
                   "action_id": spec.action_id, "value": spec.value, "context": stored.context}
        try:
            answer = await self.outbound.post(stored.url, secret, json.dumps(payload).encode(), "application/json")
            return await self._apply(user.login, message, answer.body)
        except ConveneError as err:
            if isinstance(err, (InvalidField, MessageRecalled)) or err.code in ("integration_timeout",
                                                                                "integration_failed"):
                log.info("click on %s failed: %s", message.id, err.code)
                ephemeral = await self.service.send_ephemeral(login, message.channel_id, {
                    "text": f"The button did not work: {err.message}", "error": err.to_wire(),
                    "message_id": message.id})
                return {"outcome": "error", "error": err.to_wire(), "ephemeral": ephemeral}
            raise

    async def _apply(self, login: str, message: Message, raw: bytes) -> dict[str, Any]:
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return {"outcome": "none"}
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IntegrationFailed("the integration's answer is not JSON") from exc
        if not isinstance(body, dict):
            raise IntegrationFailed("the integration's answer is not a JSON object")
        reply = body.get("text")
        if body.get("replace_original") is True:
            actions = parse_actions(body.get("actions", []))
            if not isinstance(reply, str):
                raise IntegrationFailed("replace_original needs text")
            updated = await self.service.replace_by_integration(message.id, reply, tuple(a.button for a in actions))
            await self.store.set_actions(message.id, actions)
            return {"outcome": "updated", "message": updated.to_wire()}
        if isinstance(reply, str) and reply.strip():
            ephemeral = await self.service.send_ephemeral(login, message.channel_id, {
                "text": reply[:20_000], "message_id": message.id})
            return {"outcome": "ephemeral", "ephemeral": ephemeral}
        raise IntegrationFailed("the integration's answer has no text")
