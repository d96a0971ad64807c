"""Who may make, list and delete hooks: holders of the `manage_integrations` permission.

Until the organisation's permission table can be read here, the permission's default row is applied: owners and
admins (an admin API key acts as an admin user). Switch `may_manage` to the table when it is wired.
"""

from __future__ import annotations

from chat.model import User
from common.errors import NotPermitted

PERMISSION = "manage_integrations"
DEFAULT_ROLES = frozenset({"owner", "admin"})


def may_manage(user: User) -> bool:
    return user.role in DEFAULT_ROLES


def require_manage(user: User) -> None:
    if not may_manage(user):
        raise NotPermitted(f"role {user.role!r} does not hold {PERMISSION}", permission=PERMISSION,
                           action=PERMISSION, role=user.role)
