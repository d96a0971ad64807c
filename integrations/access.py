"""Who may make, list and delete hooks, bots' commands and the like: holders of the `manage_integrations`
permission in the organisation's permission table (owners and admins by default; an admin API key acts as an
admin user). Owners and admins see every integration; anyone else who was granted the permission sees and removes
only their own. Removing someone else's takes a role ranked above the maker's (identity/permissions.py RANK).
Every organisation has its own integrations: another organisation's answer 404, as if they did not exist."""

from __future__ import annotations

from aiohttp import web

from chat.auth import Principal
from chat.model import User
from chat.service import ChatService
from chat.web import ChatApi
from identity.permissions import Permission, outranked_by, require

SEE_ALL_ROLES = frozenset({"owner", "admin"})


async def require_manage(chat: ChatService, user: User) -> None:
    """403 not_permitted unless the user's role holds manage_integrations."""
    require(user, Permission.MANAGE_INTEGRATIONS, await chat.table(user.org))


def sees(user: User, maker: str, org: str) -> bool:
    """Whether `user` may see (list, read) an integration `maker` made in organisation `org`: its URL may carry
    a token, and another organisation's is not there at all."""
    return org == user.org and (maker == user.login or user.role in SEE_ALL_ROLES)


async def may_remove(chat: ChatService, user: User, maker: str) -> bool:
    """The maker, or someone ranked above the maker's role. A maker with no user row (an API key's login)
    counts as an admin: only an owner removes what such a key made."""
    if maker == user.login:
        return True
    made_by = await chat.store.get_user(maker)
    return outranked_by(made_by.role if made_by is not None else "admin", user.role)


async def manager(api: ChatApi, request: web.Request, write: bool = False) -> Principal:
    """The caller (never a meeting token; a write is rate-limited as chat's are), who must hold
    manage_integrations: what every integrations endpoint that makes, lists or removes starts with."""
    caller = await api.who(request, write=write)
    await require_manage(api.service, caller.user)
    return caller
