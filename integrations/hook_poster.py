"""How a hook speaks in chat: as its own bot user (role bot, named after the hook), a member of its channel.

Posts go through ChatService.post like anyone's (the role table, membership, the content limit, the bus), so a
hook's bot removed from its channel stops posting there (not_a_member) until someone adds it back.
"""

from __future__ import annotations

import logging
import time

from chat.model import Channel, Message, User
from chat.service import ChatService, PostRequest
from identity.passwords import AccountStore
from integrations.hook_store import Hook

log = logging.getLogger(__name__)

BOT_PREFIX = "hook-"
OWNER_CACHE_SECONDS = 1.0
OWNER_NOTICE_SECONDS = 600.0  # at most one failure notice per hook this often: a dead receiver is not a DM flood


def bot_login(hook_id: str) -> str:
    return f"{BOT_PREFIX}{hook_id}"


def is_hook_bot(login: str) -> bool:
    return login.startswith(BOT_PREFIX)


def fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class HookPoster:
    def __init__(self, chat: ChatService, max_chars: int = 20_000, accounts: AccountStore | None = None) -> None:
        self.chat = chat
        self.max_chars = max_chars
        self.accounts = accounts
        self._noticed: dict[str, float] = {}
        self._owners: dict[str, tuple[float, bool]] = {}  # owner -> (until, active)

    async def owner_active(self, hook: Hook, cached: bool = False) -> bool:
        """False once the hook's owner is deactivated (an API key's user, which has no account, stays active).
        `cached`: read at most once a second per owner (outgoing hooks of a busy channel, per message)."""
        hit = self._owners.get(hook.owner)
        if cached and hit is not None and hit[0] > time.monotonic():
            return hit[1]
        account = None if self.accounts is None else await self.accounts.get(hook.owner)
        active = account is None or account.active
        if len(self._owners) > 10_000:
            self._owners.clear()
        self._owners[hook.owner] = (time.monotonic() + OWNER_CACHE_SECONDS, active)
        return active

    async def bot_for(self, hook_id: str, name: str, org: str) -> User:
        """The hook's bot user, of the hook's organisation, made on first use (a name change of the hook later
        renames it)."""
        user, _ = await self.chat.add_user(None, bot_login(hook_id), "bot", name=name, org=org)
        return user

    async def bot(self, hook: Hook) -> User:
        return await self.chat.store.get_user(hook.bot_login) or await self.bot_for(hook.id, hook.name, hook.org_id)

    async def join(self, bot: User, channel: Channel) -> None:
        if not await self.chat.store.is_member(channel.id, bot.login):
            await self.chat.store.add_members(channel.id, [bot.login])
            await self.chat.bus.publish({"type": "members", "channel": channel.id, "added": [bot.login],
                                         "removed": []})

    async def post(self, hook: Hook, channel_id: str, text: str, username: str | None = None) -> Message:
        bot = await self.bot(hook)
        if username:
            # Who the sender says it is, shown above the text (the author stays the hook's bot: no impersonation).
            text = f"**{username}** · _via {hook.name}_\n{text}"
        message, _ = await self.chat.post(bot, PostRequest(to=channel_id, content=fit(text, self.max_chars)))
        return message

    async def notify_owner(self, hook: Hook, text: str) -> bool:
        """A direct message from the hook's bot to its owner (failures of an outgoing hook), rate-limited."""
        now = time.monotonic()
        if now - self._noticed.get(hook.id, -OWNER_NOTICE_SECONDS) < OWNER_NOTICE_SECONDS:
            return False
        self._noticed[hook.id] = now
        bot = await self.bot(hook)
        channel, _ = await self.chat.direct_channel(bot.login, hook.owner)
        await self.chat.post(bot, PostRequest(to=channel.id, content=fit(text, self.max_chars)))
        return True
