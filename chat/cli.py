"""`convene users …`: the operator's commands for chat users (registered by signaling.cli)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from audit import Recorder
from chat.config import ChatConfig
from chat.model import ROLES
from chat.service import ChatService
from chat.sql_store import SqlChatStore
from chat.web import build_bus, build_store
from common.config import config_from_env
from common.errors import ConveneError
from identity.passwords import AccountStore, check_password_text
from identity.secrets_store import server_secret
from identity.tokens import TokenIssuer


async def _with_service(args: argparse.Namespace, job: Callable[[ChatService, ChatConfig], Any]) -> Any:
    config = ChatConfig.from_config(config_from_env(data_dir=args.data_dir, redis_url=args.redis,
                                                        database_url=args.database_url))
    store = build_store(config)
    bus = build_bus(config)
    await store.open()
    await bus.start()
    service = ChatService(store, bus)
    if isinstance(store, SqlChatStore):
        service.audit = Recorder.on(store.db)  # users added or changed here are in the audit log (the operator's)
    try:
        return await job(service, config)
    finally:
        await bus.stop()
        await store.close()


def _run(args: argparse.Namespace, job: Callable[[ChatService, ChatConfig], Any]) -> int:
    try:
        asyncio.run(_with_service(args, job))
    except ConveneError as err:
        print(f"convene: {err.code}: {err.message}", file=sys.stderr)
        return 2
    return 0


def _accounts(service: ChatService) -> AccountStore:
    # The accounts live in the same durable store as the chat users.
    assert isinstance(service.store, SqlChatStore)
    return AccountStore(service.store.db)


def _read_password() -> str | None:
    """One line from stdin (never argv: argv shows in `ps` and shell history), or None after printing why."""
    text = sys.stdin.readline().rstrip("\r\n")
    try:
        return check_password_text(text)
    except ConveneError as err:
        print(f"convene: {err.code}: {err.message}", file=sys.stderr)
        return None


def _cmd_add(args: argparse.Namespace) -> int:
    password = _read_password() if args.password_stdin else None
    if args.password_stdin and password is None:
        return 2

    async def job(service: ChatService, config: ChatConfig) -> None:
        from chat.errors import UserNotFound
        from identity.orgs import OrgDirectory

        existing = await service.store.get_user(args.login)
        org = args.org or (existing.org if existing else "default")
        if not await OrgDirectory(service.store.db).exists(org):  # type: ignore[attr-defined]
            raise UserNotFound(f"no organisation {org!r} (add it with `convene orgs add`)")
        role = args.role or (existing.role if existing else "member")
        user, created = await service.add_user(None, args.login, role, args.department or "", args.name or "",
                                               org=org)
        if password is not None:
            await _accounts(service).set_password(user.login, password)
        print(f"{'added' if created else 'updated'} {user.login} ({user.role}"
              f"{', organisation ' + user.org if user.org != 'default' else ''}"
              f"{', ' + user.department if user.department else ''})"
              f"{' with a password' if password is not None else ''}")
    return _run(args, job)


def _cmd_set_password(args: argparse.Namespace) -> int:
    password = _read_password()
    if password is None:
        return 2

    async def job(service: ChatService, config: ChatConfig) -> None:
        from chat.errors import UserNotFound

        if await service.store.get_user(args.login) is None:
            raise UserNotFound(f"no user {args.login!r} (add it with `convene users add`)")
        await _accounts(service).set_password(args.login, password)
        print(f"password set for {args.login}")
    return _run(args, job)


def _cmd_list(args: argparse.Namespace) -> int:
    async def job(service: ChatService, config: ChatConfig) -> None:
        for user in await service.store.list_users():
            print(f"{user.login}\t{user.role}\t{user.department}")
    return _run(args, job)


def _cmd_token(args: argparse.Namespace) -> int:
    async def job(service: ChatService, config: ChatConfig) -> None:
        from chat.auth import CHAT_ROOM
        from chat.errors import UserNotFound

        user = await service.store.get_user(args.login)
        if user is None:
            raise UserNotFound(f"no user {args.login!r} (add it with `convene users add`)")
        account = await _accounts(service).get(args.login)
        token = TokenIssuer(server_secret(config.data_dir, config_from_env().token_secret_file)).mint(
            CHAT_ROOM, args.login, name=args.login, ttl_seconds=args.ttl,
            epoch=0 if account is None else account.token_epoch, org=user.org)
        base = (args.url or config_from_env().url).rstrip("/")
        # In the fragment: browsers never send it to the server, so it stays out of access logs.
        print(f"{base}/chat#token={token}")
    return _run(args, job)


def _cmd_disable(args: argparse.Namespace) -> int:
    async def job(service: ChatService, config: ChatConfig) -> None:
        from chat.errors import UserNotFound

        if await service.store.get_user(args.login) is None:
            raise UserNotFound(f"no user {args.login!r}")
        account = await _accounts(service).disable(args.login)
        # Running servers see the change on their next request and close the user's chat sockets within a second.
        print(f"disabled {args.login} (token epoch {account.token_epoch})")
    return _run(args, job)


def add_users_parser(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    users = sub.add_parser("users", help="manage chat users (people, roles, departments)")
    users_sub = users.add_subparsers(dest="users_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        add_common(p)
        p.add_argument("--redis", default=None, help="redis://… when the server runs with Redis")
        p.add_argument("--database-url", default=None, help="postgresql://… when the server runs with PostgreSQL")

    add = users_sub.add_parser("add", help="add a user, or change an existing one's role/department")
    add.add_argument("login")
    add.add_argument("--role", default=None, choices=list(ROLES),
                     help="role (default: the user's current role; member for a new user)")
    add.add_argument("--password-stdin", action="store_true",
                     help="also set a sign-in password, read as one line from stdin")
    add.add_argument("--department", default=None, help="a path in the department tree, e.g. engineering/media")
    add.add_argument("--name", default=None, help="display name")
    add.add_argument("--org", default=None, help="a new user's organisation (convene orgs add; default: default); "
                                                 "logins are unique across organisations")
    common(add)
    add.set_defaults(func=_cmd_add)

    setpw = users_sub.add_parser("set-password", help="set a user's sign-in password (one line read from stdin)")
    setpw.add_argument("login")
    common(setpw)
    setpw.set_defaults(func=_cmd_set_password)

    disable = users_sub.add_parser("disable", help="deactivate a user: sign-in refused, sessions and tokens end")
    disable.add_argument("login")
    common(disable)
    disable.set_defaults(func=_cmd_disable)

    lst = users_sub.add_parser("list", help="list users")
    common(lst)
    lst.set_defaults(func=_cmd_list)

    tok = users_sub.add_parser("token", help="print a /chat link with a token for a user")
    tok.add_argument("login")
    tok.add_argument("--ttl", type=int, default=30 * 86400, help="seconds the token is valid (default 30 days)")
    tok.add_argument("--url", default=None, help="server URL for the printed link")
    common(tok)
    tok.set_defaults(func=_cmd_token)
