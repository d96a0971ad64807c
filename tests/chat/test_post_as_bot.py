"""A slash command's in-channel answer (ChatService.post_as_bot) on a real server's store: it posts as the
command's bot of the command's organisation, made on first use, and never as a person or another organisation's
user who holds that login (a directory or provider once named someone `cmd_…`): refused, nothing posted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chat.model import Channel, User, new_id
from chat.web import CHAT_API
from common.errors import Conflict
from tests.conftest import running_server, server_config


async def test_post_as_bot_posts_only_as_a_bot_of_the_same_organisation(tmp_path: Path) -> None:
    async with running_server(server_config(tmp_path)) as server:
        service = server.app[CHAT_API].service
        channel = Channel(id=new_id("c_"), name="general-bots", kind="team", created_by="convene",
                          created_at=time.time(), topic="")
        await service.store.create_channel(channel, [])
        now = time.time()
        await service.store.put_user(User(login="cmd_deploy", role="member", name="A person", created_at=now))
        await service.store.put_user(User(login="cmd_build@acme", role="bot", name="acme's", created_at=now,
                                          org="acme"))
        for login in ("cmd_deploy", "cmd_build@acme"):
            with pytest.raises(Conflict, match="not this organisation's bot"):
                await service.post_as_bot(login, "/x", channel.id, "hello")
        assert await service.store.is_member(channel.id, "cmd_deploy") is False
        message = await service.post_as_bot("cmd_ship", "/ship", channel.id, "shipped")
        bot = await service.store.get_user("cmd_ship")
        assert message.author == "cmd_ship" and bot is not None and (bot.role, bot.org) == ("bot", "default")
        again = await service.post_as_bot("cmd_ship", "/ship", channel.id, "again")  # the bot it made, reused
        assert again.author == "cmd_ship"
