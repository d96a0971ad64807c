"""Running slash commands: a chat post `/name args` becomes a signed POST to the command's URL, never a message.

The POST is Slack's form (application/x-www-form-urlencoded): command, text, user_id, user_name, channel_id,
channel_name, response_url, trigger_id. The answer, within 3 s, may be empty (acknowledged: nothing shown), plain
text (shown to the user alone) or JSON `{"response_type": "ephemeral"|"in_channel", "text"}` (ephemeral is the
default, as in Slack). `in_channel` is posted in the channel by the command's bot user (`cmd_<trigger>`);
`ephemeral` reaches the user's own sockets only (ChatService.send_ephemeral). No answer in time, or an error, and
the user sees an ephemeral error. Later answers go to the response_url (5 times within 30 minutes).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import urllib.parse
from dataclasses import dataclass
from typing import Any

from chat.auth import Principal
from chat.service import ChatService
from common.errors import ConveneError, InvalidField
from integrations.commands import Command, CommandStore, ResponseUrlNotFound
from integrations.outbound import Answer, IntegrationFailed, Outbound

log = logging.getLogger(__name__)

COMMAND_LINE = re.compile(r"^/([a-z0-9][a-z0-9_\-]{0,31})(?:\s+(.*))?$", re.DOTALL)
RESPONSE_TYPES = ("ephemeral", "in_channel")
MAX_TEXT = 20_000


@dataclass(frozen=True)
class Reply:
    response_type: str
    text: str


def reply_from_json(body: object) -> Reply:
    """`{"text", "response_type"?}` -> Reply (InvalidField for anything else)."""
    if not isinstance(body, dict):
        raise InvalidField("the answer must be a JSON object {\"text\", \"response_type\"?}", field="body")
    text, kind = body.get("text"), body.get("response_type", "ephemeral")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise InvalidField(f"text must be 1-{MAX_TEXT} characters", field="text")
    if kind not in RESPONSE_TYPES:
        raise InvalidField("response_type is ephemeral or in_channel", field="response_type")
    return Reply(response_type=str(kind), text=text)


def reply_from_answer(answer: Answer) -> Reply | None:
    """The command's immediate answer: None when empty (acknowledged); plain text is an ephemeral reply."""
    raw = answer.body.decode("utf-8", errors="replace").strip()
    if not raw:
        return None
    if "json" not in answer.content_type and not raw.startswith("{"):
        return Reply("ephemeral", raw[:MAX_TEXT])
    try:
        return reply_from_json(json.loads(raw))
    except (json.JSONDecodeError, InvalidField) as exc:
        raise IntegrationFailed(f"the command's answer is not {{\"text\", \"response_type\"}}: {exc}") from exc


class SlashCommands:
    def __init__(self, store: CommandStore, service: ChatService, outbound: Outbound, base_url: str) -> None:
        self.store = store
        self.service = service
        self.outbound = outbound
        self.base_url = base_url.rstrip("/")

    async def run(self, p: Principal, channel_ref: str, content: str) -> dict[str, Any] | None:
        """The hook chat calls for a post starting with "/": None when no command has that trigger (the text is
        posted as it is), else what happened (the REST answer, 202)."""
        match = COMMAND_LINE.match(content.strip())
        if match is None:
            return None
        command = await self.store.by_trigger(match.group(1), p.org)
        if command is None:
            return None
        channel = await self.service.readable(p.user, channel_ref)
        inv_id, secret = await self.store.invoke(command, p.user.login, channel.id)
        form = {"command": f"/{command.trigger}", "text": (match.group(2) or "").strip(),
                "user_id": p.user.login, "user_name": p.user.name or p.user.login, "channel_id": channel.id,
                "channel_name": channel.name, "command_id": command.id, "trigger_id": secrets.token_hex(12),
                "response_url": f"{self.base_url}/v1/commands/responses/{inv_id}/{secret}"}
        out: dict[str, Any] = {"command": f"/{command.trigger}", "invocation": inv_id, "response_type": None}
        try:
            answer = await self.outbound.post(command.url, command.secret, urllib.parse.urlencode(form).encode(),
                                              "application/x-www-form-urlencoded")
            reply = reply_from_answer(answer)
        except ConveneError as err:
            log.info("/%s failed for %s: %s", command.trigger, p.user.login, err.code)
            text = f"/{command.trigger} failed: {err.message}"
            ephemeral = await self.service.send_ephemeral(p.user.login, channel.id, {
                "text": text, "command": f"/{command.trigger}", "error": err.to_wire()})
            return {**out, "error": err.to_wire(), "ephemeral": ephemeral}
        if reply is not None:
            out.update(await self.deliver(command, p.user.login, channel.id, reply))
        return out

    async def deliver(self, command: Command, login: str, channel_id: str, reply: Reply) -> dict[str, Any]:
        if reply.response_type == "in_channel":
            message = await self.service.post_as_bot(command.bot_login, f"/{command.trigger}", channel_id, reply.text,
                                                     org=command.org_id)
            return {"response_type": "in_channel", "message": message.to_wire()}
        ephemeral = await self.service.send_ephemeral(login, channel_id, {"text": reply.text,
                                                                         "command": f"/{command.trigger}"})
        return {"response_type": "ephemeral", "ephemeral": ephemeral}

    async def respond(self, inv_id: str, secret: str, body: object) -> dict[str, Any]:
        """A POST to a response_url: a body that is not a reply is refused before it uses one of the five."""
        reply = reply_from_json(body)
        invocation = await self.store.use_response_url(inv_id, secret)
        command = await self.store.get(invocation.command_id)
        if command is None:
            raise ResponseUrlNotFound("this command was deleted")
        return {**await self.deliver(command, invocation.user_login, invocation.channel_id, reply),
                "uses": invocation.uses}
