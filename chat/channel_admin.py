"""Channel rename and archive (#11): who may is the channel's creator or a holder of manage_any_channel.

An archived channel is read-only: posting to it fails with `409 channel_archived` (ChatService.post), it stays
listed (its `archived` is true) and readable by its members, and unarchiving opens it again. Direct and meeting
channels keep their names (the name is their key: `dm:a:b`, the meeting's id); only team and group channels are
renamed or archived. Each change is an audit event: `channel.rename`, `channel.archive`, `channel.unarchive`.
"""

from __future__ import annotations

import time
from dataclasses import replace

from sqlalchemy.exc import IntegrityError

from audit import AuditEvent
from chat.errors import ChannelExists, NotPermitted
from chat.model import Channel, User
from chat.service import CHANNEL_NAME, ChatService
from common.errors import InvalidField, InvalidState
from identity.permissions import Action, allowed


class ChannelAdmin:
    def __init__(self, service: ChatService) -> None:
        self.service = service

    async def _managed(self, actor: User, ref: str) -> Channel:
        channel = await self.service.resolve(ref, actor.org)
        if not (channel.created_by == actor.login
                or allowed(actor, Action.MANAGE_ANY_CHANNEL, await self.service.table(actor.org))):
            raise NotPermitted("only the channel's creator or a holder of manage_any_channel changes it")
        if channel.kind not in ("team", "group"):
            raise InvalidState(f"a {channel.kind} channel keeps its name and stays open", kind=channel.kind)
        return channel

    async def rename(self, actor: User, ref: str, name: object) -> Channel:
        if not isinstance(name, str) or not CHANNEL_NAME.match(name) or name.startswith("dm:"):
            raise InvalidField("name must be 1-64 letters, digits, '.', '-' or '_'", field="name")
        channel = await self._managed(actor, ref)
        if name == channel.name:
            return channel
        if await self.service.store.find_channel(name, actor.org) is not None:
            raise ChannelExists(f"a channel named {name!r} exists", name=name)
        renamed = replace(channel, name=name)
        try:
            await self.service.store.update_channel(renamed)
        except IntegrityError:  # taken between the check and the write
            raise ChannelExists(f"a channel named {name!r} exists", name=name) from None
        await self.service.audit.record(AuditEvent("channel.rename", "channel", channel.id, actor=actor.login,
                                                   before={"name": channel.name}, after={"name": name}))
        await self._announce(renamed)
        return renamed

    async def archive(self, actor: User, ref: str, archived: bool) -> Channel:
        channel = await self._managed(actor, ref)
        if (channel.archived_at is not None) == archived:
            return channel  # already so: nothing to record
        changed = replace(channel, archived_at=time.time() if archived else None)
        await self.service.store.update_channel(changed)
        await self.service.audit.record(AuditEvent(
            "channel.archive" if archived else "channel.unarchive", "channel", channel.id, actor=actor.login,
            before={"archived": not archived}, after={"archived": archived}))
        await self._announce(changed)
        return changed

    async def _announce(self, channel: Channel) -> None:
        await self.service.bus.publish({"type": "channel", "channel": channel.id, "data": channel.to_wire()})
