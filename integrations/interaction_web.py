"""REST for bots, slash commands and interactive messages (issue #11), mounted next to chat's.

    POST   /v1/bots                                 make a bot owned by the caller: its API key and signing secret
    GET    /v1/bots                                 the bots and their owners
    POST   /v1/commands                             register a slash command: its id and signing secret
    GET    /v1/commands                             the commands (never their secrets)
    DELETE /v1/commands/{id}
    POST   /v1/commands/responses/{id}/{secret}     a command's response_url (a capability: no other credential)
    POST   /v1/interactive/messages                 a bot posts a message with buttons
    POST   /v1/messages/{id}/actions/{action_id}    a click (the chat socket's `action` frame does the same)

Managing bots and commands takes the manage_integrations permission. Chat calls back into this package through
two hooks it exposes (ChatApi.command_hook, ChatApi.action_hook): chat does not import integrations.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import AsyncIterator

from aiohttp import web

from audit import AuditEvent, Recorder
from audit.appkeys import AUDIT
from chat.auth import Principal
from chat.service import SYSTEM_LOGIN, valid_login
from chat.web import CHAT_API, ChatApi
from common.config import Config
from common.errors import Conflict, InvalidField, NotPermitted
from common.names import RESERVED_LOGIN_PREFIXES
from common.wire import read_json_object
from identity.appkeys import API_KEYS, DATABASE
from identity.bots import BotRegistry
from identity.sealed import SecretSealer
from identity.secrets_store import server_secret
from integrations.access import manager, may_remove, sees
from integrations.commands import CommandNotFound, CommandStore, valid_trigger
from integrations.interactive import Interactive, InteractiveStore
from integrations.outbound import Outbound
from integrations.slash import SlashCommands

log = logging.getLogger(__name__)

RESPONSE_PATH = "/v1/commands/responses/{id}/{secret}"

class LoginTaken(Conflict):
    """A bot is made under a new login only: an existing user's (a person, another bot, the system's) is refused,
    so a key for it cannot be minted this way."""

    code = "login_taken"


class LoginReserved(LoginTaken):
    code = "login_reserved"


def check_bot_login(login: str) -> None:
    lowered = login.lower()  # "Convene" or "HOOK-…" would pass for the server's own in a channel
    # The system user and the server's bots' name space (common/names.py): nobody makes a bot under them.
    if lowered == SYSTEM_LOGIN or lowered.startswith(RESERVED_LOGIN_PREFIXES):
        raise LoginReserved(f"{login!r} is reserved for the server's own users", login=login)


class InteractionApi:
    def __init__(self, chat: ChatApi, config: Config, outbound: Outbound, bots: BotRegistry,
                 commands: CommandStore, interactive: Interactive, audit: Recorder) -> None:
        self.chat = chat
        self.audit = audit
        self.config = config
        self.outbound = outbound
        self.bots = bots
        self.commands = commands
        self.slash = SlashCommands(commands, chat.service, outbound, config.url)
        self.interactive = interactive

    async def _manager(self, request: web.Request, write: bool = False) -> Principal:
        return await manager(self.chat, request, write=write)

    # Bots -------------------------------------------------------------------------------------

    async def create_bot(self, request: web.Request) -> web.Response:
        p = await self._manager(request, write=True)
        body = await read_json_object(request, allowed={"login", "name"})
        login = valid_login(body.get("login"))
        name = body.get("name", login)
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 128:
            raise InvalidField("name is 1-128 characters", field="name")
        check_bot_login(login)
        if await self.chat.store.get_user(login) is not None:
            raise LoginTaken(f"{login!r} is already a user", login=login)
        bot, signing_secret = await self.bots.create(login, p.user.login, p.org)
        await self.chat.service.add_user(None, login, "bot", name=name.strip(), org=p.org)
        key, secret = await request.app[API_KEYS].create(login, "bot", org=p.org)
        await self.audit.record(AuditEvent("bot.create", "bot", login, after={"owner": p.user.login,
                                                                             "key_id": key.key_id}))
        return web.json_response({**bot.to_wire(), "name": name.strip(), "key_id": key.key_id, "key": secret,
                                  "signing_secret": signing_secret}, status=201)

    async def list_bots(self, request: web.Request) -> web.Response:
        p = await self._manager(request)
        return web.json_response({"bots": [b.to_wire() for b in await self.bots.all(p.org)]})

    # Slash commands ---------------------------------------------------------------------------

    async def create_command(self, request: web.Request) -> web.Response:
        p = await self._manager(request, write=True)
        body = await read_json_object(request, allowed={"trigger", "url", "description"})
        trigger = valid_trigger(body.get("trigger"))
        url = self.outbound.check_url(body.get("url"))
        description = body.get("description", "")
        if not isinstance(description, str) or len(description) > 500:
            raise InvalidField("description is at most 500 characters", field="description")
        command = await self.commands.create(trigger, url, description, p.user.login, p.org)
        await self.audit.record(AuditEvent("command.create", "command", command.id,
                                           after={"trigger": trigger, "url_host": _host(url)}))
        return web.json_response({**command.to_wire(), "secret": command.secret}, status=201)

    async def list_commands(self, request: web.Request) -> web.Response:
        p = await self._manager(request)
        listed = [c for c in await self.commands.list(p.org) if sees(p.user, c.created_by, c.org_id)]
        return web.json_response({"commands": [c.to_wire() for c in listed]})

    async def delete_command(self, request: web.Request) -> web.Response:
        p = await self._manager(request, write=True)
        command = await self.commands.get(request.match_info["id"])
        if command is None or not sees(p.user, command.created_by, command.org_id):  # as if it did not exist
            raise CommandNotFound(f"no command {request.match_info['id']!r}")
        if not await may_remove(self.chat.service, p.user, command.created_by):
            raise NotPermitted(f"only {command.created_by} or someone ranked above them deletes this command")
        await self.commands.delete(command.id)
        await self.audit.record(AuditEvent("command.delete", "command", command.id,
                                           before={"trigger": command.trigger}))
        return web.json_response({"ok": True})

    async def respond(self, request: web.Request) -> web.Response:
        """The response_url: the path's secret is the credential (the access log redacts it)."""
        self.chat.limiter.take(f"response_url:{request.match_info['id']}")
        # Slack's flags are accepted and ignored: an answer here never replaces or deletes the command's post.
        body = await read_json_object(request, allowed={"text", "response_type", "replace_original",
                                                        "delete_original", "mrkdwn"})
        # An unexpected error is logged by the error middleware with the secret segment redacted (common/redact.py).
        outcome = await self.slash.respond(request.match_info["id"], request.match_info["secret"], body)
        return web.json_response(outcome)

    # Interactive messages ---------------------------------------------------------------------

    async def post_interactive(self, request: web.Request) -> web.Response:
        p = await self.chat.who(request, write=True)
        body = await read_json_object(request, allowed={"to", "content", "actions", "url", "context", "thread"})
        message = await self.interactive.post(p, body)
        return web.json_response(message.to_wire(), status=201)

    async def click(self, request: web.Request) -> web.Response:
        p = await self.chat.who(request, write=True, meeting=True)
        outcome = await self.interactive.click(p.user.login, p.channel_id, request.match_info["id"],
                                               request.match_info["action_id"])
        return web.json_response(outcome)

    # Wiring -----------------------------------------------------------------------------------

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        await self.outbound.start()
        # Signing secrets stored in plaintext by a version before they were sealed: sealed now, once.
        sealed = await self.bots.seal_stored() + await self.commands.seal_stored()
        if sealed:
            log.info("sealed %d signing secrets stored in plaintext", sealed)
        yield
        await self.outbound.close()

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/v1/bots", self.create_bot)
        r.add_get("/v1/bots", self.list_bots)
        r.add_post("/v1/commands", self.create_command)
        r.add_get("/v1/commands", self.list_commands)
        r.add_delete("/v1/commands/{id}", self.delete_command)
        r.add_post(RESPONSE_PATH, self.respond)
        r.add_post("/v1/interactive/messages", self.post_interactive)
        r.add_post("/v1/messages/{id}/actions/{action_id}", self.click)


def _host(url: str) -> str:
    """What the audit log keeps of an integration URL: its host (a path or query may carry a token)."""
    return urllib.parse.urlsplit(url).hostname or ""


INTERACTIONS = web.AppKey("interactions", InteractionApi)


def setup_interactions(app: web.Application, config: Config) -> InteractionApi:
    """Mounts bots, slash commands and interactive messages; call after setup_chat."""
    chat = app[CHAT_API]
    db = app[DATABASE]
    outbound = Outbound(allow_private=config.hooks_allow_private)
    # Chat's bot registry holds the process's sealer (the token secret read once): commands seal with it too.
    bots = chat.auth.bots or BotRegistry(db, SecretSealer(server_secret(config.data_dir, config.token_secret_file)))
    interactive = Interactive(InteractiveStore(db), chat.service, outbound, bots)
    audit = app[AUDIT] if AUDIT in app else Recorder.on(db)
    api = InteractionApi(chat, config, outbound, bots, CommandStore(db, bots.sealer), interactive, audit)
    chat.command_hook = api.slash.run
    chat.action_hook = interactive.click
    app[INTERACTIONS] = api
    api.routes(app)
    app.cleanup_ctx.append(api.lifecycle)
    return api

