"""`convene ldap sync [--org ORG]`, and the --ldap-* flags `convene serve` shares with it (registered by
signaling.cli). With --org, the organisation's own stored directory (`convene orgs set-directory`) is synced
into that organisation; without, the default organisation's, from the flags.

The CLI's sync deactivates through the accounts table (epoch bumped, account inactive), as `convene users
disable`: running servers close the person's chat and meeting sockets within their 0.5 s poll.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from audit import Recorder
from chat.bus import LocalBus
from chat.directory_sync import DirectorySync
from chat.service import ChatService
from chat.sql_store import SqlChatStore
from common.config import config_from_env
from common.errors import ConveneError
from identity.directory import Directory, DirectorySettings
from identity.group_map import GroupMap, load_group_map
from identity.org_directories import LDAP, OrgConnections, directory_settings
from identity.orgs import DEFAULT_ORG
from identity.passwords import AccountStore
from identity.sealed import SecretSealer
from identity.secrets_store import server_secret
from store.database import Database


def add_ldap_arguments(p: argparse.ArgumentParser) -> None:
    """The directory's flags; unset ones keep Config's defaults (or the CONVENE_LDAP_* environment)."""
    g = p.add_argument_group("directory (LDAP / Active Directory)")
    g.add_argument("--ldap-url", default=None, metavar="URL",
                   help="ldap://HOST[:PORT] (upgraded with StartTLS) or ldaps://HOST[:PORT] [CONVENE_LDAP_URL]")
    g.add_argument("--ldap-bind-dn", default=None, metavar="DN", help="the service account that searches")
    g.add_argument("--ldap-bind-password", default=None, metavar="PW",
                   help="its password; better in CONVENE_LDAP_BIND_PASSWORD (flags show in `ps`)")
    g.add_argument("--ldap-base-dn", default=None, metavar="DN", help="where people are searched")
    g.add_argument("--ldap-user-filter", default=None, metavar="FILTER",
                   help="who may sign in (default (objectClass=inetOrgPerson); AD: (objectClass=user))")
    g.add_argument("--ldap-ca-file", default=None, metavar="PEM", help="CA certificates for the directory's TLS")
    for name, default in (("login", "uid; sAMAccountName for AD"), ("name", "displayName,cn"), ("email", "mail"),
                          ("department", "departmentNumber,ou; a path like 研发部/前端组"), ("title", "title")):
        g.add_argument(f"--ldap-attr-{name}", default=None, metavar="ATTR[,ATTR]",
                       help=f"attribute of the {name} (default {default}); commas list fallbacks"
                            + ("; dn: the entry's ou= path" if name == "department" else ""))
    g.add_argument("--ldap-group-map", default=None, metavar="FILE",
                   help="TOML mapping directory groups to roles and channels")
    g.add_argument("--ldap-sync-interval", type=float, default=None, metavar="MINUTES",
                   help="minutes between syncs (default 60; 0: only on demand)")


def ldap_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given, as Config fields (None: not given)."""
    out: dict[str, Any] = {f"ldap_{k}": getattr(args, f"ldap_{k}") for k in (
        "url", "bind_dn", "bind_password", "base_dn", "user_filter", "ca_file", "group_map")}
    for name in ("login", "name", "email", "department", "title"):
        out[f"ldap_attr_{name}"] = getattr(args, f"ldap_attr_{name}")
    interval = args.ldap_sync_interval
    out["ldap_sync_interval_seconds"] = None if interval is None else interval * 60
    return out


async def _org_directory(db: Database, org: str, sealer: SecretSealer) -> tuple[DirectorySettings, GroupMap]:
    stored = await OrgConnections(db, sealer).get(org, LDAP)
    if stored is None:
        raise SystemExit(f"convene: organisation {org!r} has no directory (convene orgs set-directory {org} …)")
    return directory_settings(stored)


async def _sync(args: argparse.Namespace) -> dict[str, Any]:
    config = config_from_env(data_dir=args.data_dir, database_url=args.database_url,
                             token_secret_file=args.token_secret_file, **ldap_overrides(args))
    org = args.org or DEFAULT_ORG
    settings = DirectorySettings.from_config(config) if org == DEFAULT_ORG else None
    if settings is None and org == DEFAULT_ORG:
        raise SystemExit("convene: no directory: give --ldap-url (or CONVENE_LDAP_URL)")
    db = Database.for_config(config.database_url, config.data_dir)
    await db.open()
    try:
        if settings is None:
            sealer = SecretSealer(server_secret(config.data_dir, config.token_secret_file))
            settings, group_map = await _org_directory(db, org, sealer)
        else:
            group_map = load_group_map(config.ldap_group_map)
        accounts = AccountStore(db)
        service = ChatService(SqlChatStore(db), LocalBus())
        service.audit = Recorder.on(db)  # the run's directory.sync event, and deactivations, as the operator's
        sync = DirectorySync(Directory(settings), group_map, db, service, accounts, accounts.disable, org=org)
        report = await sync.run()
        return {**report.counts(), "errors": report.errors[:20], "seconds": report.to_wire()["seconds"]}
    finally:
        await db.close()


def _cmd_sync(args: argparse.Namespace) -> int:
    try:
        print(json.dumps(asyncio.run(_sync(args)), ensure_ascii=False))
    except ConveneError as err:
        print(f"convene: {err.code}: {err.message}", file=sys.stderr)
        return 2
    return 0


def add_ldap_parser(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    ldap = sub.add_parser("ldap", help="the company directory (LDAP / Active Directory)")
    ldap_sub = ldap.add_subparsers(dest="ldap_command", required=True)
    sync = ldap_sub.add_parser("sync", help="sync users, departments, roles and channels from the directory now; "
                                            "prints the counts as JSON")
    add_common(sync)
    sync.add_argument("--database-url", default=None, help="postgresql://… when the server runs with PostgreSQL")
    sync.add_argument("--org", default=None, metavar="ORG",
                      help="sync this organisation's own directory (convene orgs set-directory) instead of the "
                           "default organisation's (the --ldap-* flags)")
    sync.add_argument("--token-secret-file", default=None,
                      help="the server's token secret file, if it uses one (an organisation's bind password is "
                           "sealed under it)")
    add_ldap_arguments(sync)
    sync.set_defaults(func=_cmd_sync)
