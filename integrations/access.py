"""Who may make, list and delete hooks: holders of the `manage_integrations` permission in the organisation's
permission table (owners and admins by default; an admin API key acts as an admin user)."""

from __future__ import annotations

from chat.model import User
from chat.service import ChatService
from identity.permissions import Permission, require


async def require_manage(chat: ChatService, user: User) -> None:
    """403 not_permitted unless the user's role holds manage_integrations."""
    require(user, Permission.MANAGE_INTEGRATIONS, await chat.table())
