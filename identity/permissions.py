"""What each role may do: one table. Every endpoint asks `require(user, action, org)`.

It lives in identity because signaling, chat and transcribe all ask it (it was chat/policy.py). `user` is
anything with a `role`; `org` anything with the organisation's settings flags as attributes.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Protocol

from common.errors import NotPermitted


class User(Protocol):
    @property
    def role(self) -> str: ...


OrgSettings = Any


class Action(str, Enum):
    READ_DIRECTORY = "read_directory"  # list users and departments
    CREATE_TEAM_CHANNEL = "create_team_channel"
    CREATE_GROUP = "create_group"
    CREATE_DIRECT = "create_direct"
    JOIN_TEAM_CHANNEL = "join_team_channel"  # add oneself to a team channel
    MANAGE_ANY_CHANNEL = "manage_any_channel"  # members, topic, retention of channels one did not create
    POST = "post"
    UPLOAD = "upload"
    RECALL_ANY = "recall_any"  # recall anyone's message at any time
    MANAGE_USERS = "manage_users"  # add users, change departments, issue user tokens
    CHANGE_ROLES = "change_roles"
    EDIT_ORG = "edit_org"


# True: always; False: never; a string: only when that OrgSettings flag is true.
Rule = bool | str

_ALL = {a: True for a in Action}

TABLE: dict[str, dict[Action, Rule]] = {
    "owner": dict(_ALL),
    "admin": dict(_ALL),
    "member": {
        Action.READ_DIRECTORY: True,
        Action.CREATE_TEAM_CHANNEL: "members_create_channels",
        Action.CREATE_GROUP: True,
        Action.CREATE_DIRECT: True,
        Action.JOIN_TEAM_CHANNEL: True,
        Action.POST: True,
        Action.UPLOAD: True,
    },
    "bot": {
        Action.READ_DIRECTORY: True,
        Action.CREATE_GROUP: True,
        Action.CREATE_DIRECT: True,
        Action.POST: True,
        Action.UPLOAD: True,
    },
    "guest": {
        Action.POST: True,
        Action.UPLOAD: True,
    },
}


def allowed(user: User, action: Action, org: OrgSettings) -> bool:
    rule = TABLE.get(user.role, {}).get(action, False)
    if isinstance(rule, str):
        return bool(getattr(org, rule))
    return rule


def require(user: User, action: Action, org: OrgSettings) -> None:
    if not allowed(user, action, org):
        raise NotPermitted(f"role {user.role!r} may not {action.value.replace('_', ' ')}",
                           action=action.value, role=user.role)


# Who stands above whom: nobody acts on (mints a token for, changes the role of) someone ranked higher.
RANK = {"guest": 0, "bot": 1, "member": 1, "admin": 2, "owner": 3}


def outranked_by(actor: User, role: str) -> bool:
    """True when `role` stands above the actor's own."""
    return RANK.get(role, 0) > RANK.get(actor.role, 0)


def may_grant(actor: User, new_role: str) -> bool:
    """Only admins change roles; only an owner makes owners."""
    if actor.role == "owner":
        return True
    return actor.role == "admin" and new_role != "owner"
