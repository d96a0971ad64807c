"""Who may make, list and delete hooks, bots' commands and the like: holders of the `manage_integrations`
permission in the organisation's permission table (owners and admins by default; an admin API key acts as an
admin user). Owners and admins see every integration; anyone else who was granted the permission sees and removes
only their own. Removing someone else's takes a role ranked above the maker's (identity/permissions.py RANK)."""

from __future__ import annotations

from chat.model import User
from chat.service import ChatService
from common.errors import Forbidden
from identity.orgs import DEFAULT_ORG
from identity.permissions import Permission, outranked_by, require

SEE_ALL_ROLES = frozenset({"owner", "admin"})


async def require_manage(chat: ChatService, user: User) -> None:
    """403 not_permitted unless the user's role holds manage_integrations."""
    require(user, Permission.MANAGE_INTEGRATIONS, await chat.table(user.org))
    default_org_only(user)


def default_org_only(user: User) -> None:
    """Hooks, bots and commands are not yet kept apart per organisation: only the default one manages them."""
    if user.org != DEFAULT_ORG:
        raise Forbidden("integrations are the default organisation's for now")


def sees(user: User, maker: str) -> bool:
    """Whether `user` may see (list, read) an integration `maker` made: its URL may carry a token."""
    return maker == user.login or user.role in SEE_ALL_ROLES


async def may_remove(chat: ChatService, user: User, maker: str) -> bool:
    """The maker, or someone ranked above the maker's role. A maker with no user row (an API key's login)
    counts as an admin: only an owner removes what such a key made."""
    if maker == user.login:
        return True
    made_by = await chat.store.get_user(maker)
    return outranked_by(made_by.role if made_by is not None else "admin", user.role)
