"""What each role may do: one table of permissions, with the roles that hold each, editable per organisation.

Signaling, chat, transcribe and integrations all ask it, so it lives in identity (it was chat/policy.py).

Two kinds of rows share the table:
- the organisation's own (EDITABLE): their names are the wire's and stay stable (create_group, upload_files, …).
  An organisation overrides a row with the list of roles that hold it (PUT /v1/admin/permissions); a row it did
  not override holds the documented default (docs/permissions.md).
- fixed rows (post, read_directory, recall_any, change_roles, edit_org, …): the same for every organisation.

One default depends on an organisation setting: members create team channels only while
`members_create_channels` is on (PATCH /v1/org). An override of `create_team_channel` replaces that default,
and the setting as read is then "do members hold it".

`require(holder, permission, table)` raises `403 not_permitted` naming the permission; `holder` is a role name
or anything with a `role` (chat's User, an ApiKey) or with a `user` that has one (chat's Principal).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from common.errors import InvalidField, NotPermitted

ROLES = ("owner", "admin", "member", "bot", "guest")
# Who stands above whom: nobody acts on (mints a token for, changes the role or permissions of) someone ranked
# higher.
RANK = {"guest": 0, "bot": 1, "member": 1, "admin": 2, "owner": 3}


class Permission(str, Enum):
    # The organisation's rows (editable; names used on the wire and by other parts).
    CREATE_GROUP = "create_group"
    CREATE_TEAM_CHANNEL = "create_team_channel"
    START_MEETING = "start_meeting"
    INVITE_GUESTS = "invite_guests"
    UPLOAD_FILES = "upload_files"
    MANAGE_INTEGRATIONS = "manage_integrations"  # webhooks and bots
    READ_AUDIT = "read_audit"
    READ_STATS = "read_stats"  # usage analytics (GET /v1/admin/stats, /admin/stats)
    MANAGE_USERS = "manage_users"  # add users, change departments, issue user tokens, deactivate
    # Fixed rows.
    READ_DIRECTORY = "read_directory"  # list users and departments
    CREATE_DIRECT = "create_direct"
    JOIN_TEAM_CHANNEL = "join_team_channel"  # add oneself to a team channel
    MANAGE_ANY_CHANNEL = "manage_any_channel"  # members, topic, retention of channels one did not create
    POST = "post"
    RECALL_ANY = "recall_any"  # recall anyone's message at any time
    CHANGE_ROLES = "change_roles"
    EDIT_ORG = "edit_org"  # organisation settings and this table


# Kept for the call sites that name the finer actions this way.
Action = Permission

EDITABLE = (Permission.CREATE_GROUP, Permission.CREATE_TEAM_CHANNEL, Permission.START_MEETING,
            Permission.INVITE_GUESTS, Permission.UPLOAD_FILES, Permission.MANAGE_INTEGRATIONS,
            Permission.READ_AUDIT, Permission.MANAGE_USERS, Permission.READ_STATS)

_STAFF = frozenset({"owner", "admin"})
_PEOPLE = _STAFF | {"member"}
_ACCOUNTS = _PEOPLE | {"bot"}
_EVERYONE = frozenset(ROLES)

DEFAULTS: dict[Permission, frozenset[str]] = {
    Permission.CREATE_GROUP: _ACCOUNTS,
    Permission.CREATE_TEAM_CHANNEL: _PEOPLE,  # members: while members_create_channels is on
    Permission.START_MEETING: _PEOPLE,
    Permission.INVITE_GUESTS: _PEOPLE,
    Permission.UPLOAD_FILES: _EVERYONE,  # guests: in their meeting's channel only (their token reaches no other)
    Permission.MANAGE_INTEGRATIONS: _STAFF,
    Permission.READ_AUDIT: _STAFF,
    Permission.READ_STATS: _STAFF,
    Permission.MANAGE_USERS: _STAFF,
    Permission.READ_DIRECTORY: _ACCOUNTS,
    Permission.CREATE_DIRECT: _ACCOUNTS,
    Permission.JOIN_TEAM_CHANNEL: _PEOPLE,
    Permission.MANAGE_ANY_CHANNEL: _STAFF,
    Permission.POST: _EVERYONE,  # guests: in their meeting's channel only
    Permission.RECALL_ANY: _STAFF,
    Permission.CHANGE_ROLES: _STAFF,
    Permission.EDIT_ORG: _STAFF,
}
# (permission, role) -> the organisation setting that must be on for the role to hold it by default.
CONDITIONS: dict[tuple[Permission, str], str] = {
    (Permission.CREATE_TEAM_CHANNEL, "member"): "members_create_channels",
}
# Rows in which these roles always stay: nobody locks the organisation out of managing its people.
PINNED: dict[Permission, frozenset[str]] = {Permission.MANAGE_USERS: _STAFF}
# Rows that make their holder staff: never for a guest (a meeting visitor) or a bot (a program's key).
STAFF_GRADE = frozenset({Permission.MANAGE_USERS, Permission.READ_AUDIT, Permission.READ_STATS,
                         Permission.MANAGE_INTEGRATIONS, Permission.EDIT_ORG})
NEVER_STAFF = frozenset({"guest", "bot"})


class HasRole(Protocol):
    @property
    def role(self) -> str: ...


class HasUser(Protocol):
    @property
    def user(self) -> HasRole: ...


RoleHolder = str | HasRole | HasUser


def role_of(holder: RoleHolder) -> str:
    if isinstance(holder, str):
        return holder
    user = getattr(holder, "user", None)
    return str(user.role if user is not None else getattr(holder, "role", ""))


def permission_named(name: str | Permission) -> Permission:
    try:
        return Permission(name)
    except ValueError as exc:
        raise InvalidField(f"no permission {name!r}", field=str(name)) from exc


@dataclass(frozen=True)
class PermissionTable:
    """One organisation's table: its overrides, over the defaults, under its settings flags."""

    org_id: str = "default"
    overrides: Mapping[Permission, frozenset[str]] = field(default_factory=dict)
    flags: Mapping[str, bool] = field(default_factory=dict)

    def default_roles(self, permission: Permission) -> frozenset[str]:
        return frozenset(role for role in DEFAULTS[permission]
                         if self.flags.get(CONDITIONS.get((permission, role), ""), True))

    def roles(self, permission: Permission) -> frozenset[str]:
        override = self.overrides.get(permission)
        roles = override if override is not None else self.default_roles(permission)
        return roles | PINNED.get(permission, frozenset())  # even a damaged stored row locks nobody out

    def holds(self, holder: RoleHolder, permission: str | Permission) -> bool:
        return role_of(holder) in self.roles(permission_named(permission))

    def held_by(self, holder: RoleHolder) -> list[str]:
        role = role_of(holder)
        return sorted(p.value for p in Permission if role in self.roles(p))

    def to_wire(self) -> dict[str, Any]:
        rows = [{"name": p.value, "roles": _ranked(self.roles(p)), "default": _ranked(self.default_roles(p)),
                 "overridden": p in self.overrides, "editable": p in EDITABLE} for p in Permission]
        return {"org": self.org_id, "roles": list(ROLES), "permissions": rows}


def _ranked(roles: Iterable[str]) -> list[str]:
    return [r for r in ROLES if r in set(roles)]


def allowed(user: RoleHolder, action: Permission, table: PermissionTable) -> bool:
    return table.holds(user, action)


def require(user: RoleHolder, action: str | Permission, table: PermissionTable) -> None:
    """Raises `403 not_permitted` (details: the permission and the role) unless the role holds it."""
    permission = permission_named(action)
    role = role_of(user)
    if not table.holds(role, permission):
        raise NotPermitted(f"role {role!r} does not hold {permission.value}", permission=permission.value,
                           action=permission.value, role=role)


def parse_changes(body: Mapping[str, Any]) -> dict[Permission, frozenset[str] | None]:
    """`{"create_group": ["admin", "owner"], "upload_files": null}` -> the rows to set (None: back to default)."""
    changes: dict[Permission, frozenset[str] | None] = {}
    for name, roles in body.items():
        permission = permission_named(name)
        if permission not in EDITABLE:
            raise InvalidField(f"{name} is not one an organisation edits", field=name)
        if roles is None:
            changes[permission] = None
            continue
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidField(f"{name} must be a list of roles or null", field=name)
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            raise InvalidField(f"unknown roles {unknown} (roles: {', '.join(ROLES)})", field=name)
        changes[permission] = frozenset(roles)
    if not changes:
        raise InvalidField("name at least one permission", field="permissions")
    return changes


def check_changes(actor: RoleHolder, table: PermissionTable,
                  changes: Mapping[Permission, frozenset[str] | None]) -> None:
    """Nobody grants (or takes away) a permission for a role ranked above their own; pinned roles stay; staff-grade
    rows (STAFF_GRADE) are never given to a guest or a bot."""
    rank = RANK.get(role_of(actor), 0)
    for permission, new in changes.items():
        after = table.default_roles(permission) if new is None else new
        touched = after ^ table.roles(permission)
        above = sorted(r for r in touched if RANK.get(r, 0) > rank)
        if above:
            raise NotPermitted(f"a {role_of(actor)} may not change {permission.value} for {', '.join(above)}",
                               permission=permission.value, role=role_of(actor))
        barred = sorted(after & NEVER_STAFF) if permission in STAFF_GRADE else []
        if barred:
            raise InvalidField(f"{permission.value} is never given to {', '.join(barred)}", field=permission.value)
        lost = sorted(PINNED.get(permission, frozenset()) - after)
        if lost:
            raise InvalidField(f"{permission.value} always stays with {', '.join(lost)} (no lock-out)",
                               field=permission.value)


def encode_roles(roles: frozenset[str]) -> str:
    return json.dumps(_ranked(roles))


def decode_roles(raw: str) -> frozenset[str]:
    try:
        value = json.loads(raw)
    except ValueError:
        return frozenset()
    return frozenset(r for r in value if r in ROLES) if isinstance(value, list) else frozenset()


def outranked_by(actor: RoleHolder, role: str) -> bool:
    """True when `role` stands above the actor's own."""
    return RANK.get(role, 0) > RANK.get(role_of(actor), 0)


def outranks(actor: RoleHolder, role: str) -> bool:
    """True when the actor's role stands strictly above `role` (acting as someone needs this, not equal rank)."""
    return RANK.get(role_of(actor), 0) > RANK.get(role, 0)


def may_grant(actor: RoleHolder, new_role: str) -> bool:
    """Only admins change roles; only an owner makes owners."""
    if role_of(actor) == "owner":
        return True
    return role_of(actor) == "admin" and new_role != "owner"
