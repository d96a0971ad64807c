"""`convene permissions list|set`: the operator's view and edit of the organisation's permission table.

The operator acts as an owner: the same rules as `PUT /v1/admin/permissions` hold (only the organisation's rows,
known roles, owners and admins keep manage_users). Running servers read the change within a second.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from chat.config import ChatConfig
from chat.service import org_flags
from chat.sql_store import SqlChatStore
from chat.web import build_store
from common.config import config_from_env
from common.errors import ConveneError
from identity.permission_store import PermissionStore
from identity.permissions import EDITABLE, ROLES, Permission, PermissionTable, parse_changes

OPERATOR = "owner"  # the rank the CLI acts with: whoever runs it holds the server's data directory


async def _with_table(args: argparse.Namespace, job: Callable[[PermissionStore], Awaitable[None]]) -> None:
    config = ChatConfig.from_config(config_from_env(data_dir=args.data_dir, database_url=args.database_url))
    store = build_store(config)
    assert isinstance(store, SqlChatStore)
    await store.open()
    try:
        permissions = PermissionStore(store.db)

        async def flags(org_id: str) -> dict[str, bool]:
            return org_flags(await store.get_org())

        permissions.flags = flags
        await job(permissions)
    finally:
        await store.close()


def _run(args: argparse.Namespace, job: Callable[[PermissionStore], Awaitable[None]]) -> int:
    try:
        asyncio.run(_with_table(args, job))
    except ConveneError as err:
        print(f"convene: {err.code}: {err.message}", file=sys.stderr)
        return 2
    return 0


def _print(table: PermissionTable) -> None:
    for permission in Permission:
        roles = ",".join(r for r in ROLES if r in table.roles(permission)) or "-"
        note = "overridden" if permission in table.overrides else "default"
        kind = "" if permission in EDITABLE else " (fixed)"
        print(f"{permission.value:22} {roles:32} {note}{kind}")


def _cmd_list(args: argparse.Namespace) -> int:
    async def job(permissions: PermissionStore) -> None:
        _print(await permissions.table())
    return _run(args, job)


def _cmd_set(args: argparse.Namespace) -> int:
    if args.default == bool(args.roles):
        print("convene: name the roles, or say --default (not both)", file=sys.stderr)
        return 2

    async def job(permissions: PermissionStore) -> None:
        changes = parse_changes({args.permission: None if args.default else list(args.roles)})
        _print(await permissions.change(OPERATOR, "operator", changes))
    return _run(args, job)


def add_permissions_parser(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    perms = sub.add_parser("permissions", help="the organisation's permission table (docs/permissions.md)")
    perms_sub = perms.add_subparsers(dest="permissions_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        add_common(p)
        p.add_argument("--database-url", default=None, help="postgresql://… when the server runs with PostgreSQL")

    lst = perms_sub.add_parser("list", help="every permission and the roles that hold it")
    common(lst)
    lst.set_defaults(func=_cmd_list)

    put = perms_sub.add_parser("set", help="set the roles that hold a permission, e.g. "
                                           "`convene permissions set create_group owner admin`")
    put.add_argument("permission", choices=[p.value for p in EDITABLE])
    put.add_argument("roles", nargs="*", metavar="ROLE",
                     help=f"roles that hold it: {', '.join(ROLES)}")
    put.add_argument("--default", action="store_true", help="back to the documented default")
    common(put)
    put.set_defaults(func=_cmd_set)
