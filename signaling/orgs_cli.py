"""`convene orgs add NAME --host HOST [--host HOST2]` and `convene orgs list`: organisations (tenants) and the Host
names that serve them (identity/orgs.py). A running server sees a new organisation within a few seconds."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from common.errors import ConveneError


def _run(args: argparse.Namespace, use: Callable[[Any], Any]) -> Any:
    from identity.orgs import OrgDirectory
    from signaling.cli import _with_database

    return _with_database(args, lambda db: use(OrgDirectory(db)))


def _cmd_add(args: argparse.Namespace) -> int:
    try:
        org = _run(args, lambda orgs: orgs.add(args.name, args.host or []))
    except ConveneError as err:
        print(f"convene: {err.code}: {err.message}", file=sys.stderr)
        return 2
    print(f"organisation {org.org_id}: {', '.join(org.hosts) or 'no host yet'}")
    print(f"(its first admin: convene users add LOGIN --org {org.org_id} --role owner --password-stdin)",
          file=sys.stderr)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    print("default\t(every other host)")
    for org in _run(args, lambda orgs: orgs.list()):
        made = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(org.created_at))
        print(f"{org.org_id}\t{','.join(org.hosts) or '-'}\tcreated {made}")
    return 0


def add_orgs_parser(sub: Any, add_common: Callable[[argparse.ArgumentParser], None],
                    add_database: Callable[[argparse.ArgumentParser], None]) -> None:
    orgs = sub.add_parser("orgs", help="organisations (tenants): each has its own users, channels, meetings, files")
    orgs_sub = orgs.add_subparsers(dest="orgs_command", required=True)
    add = orgs_sub.add_parser("add", help="add an organisation, or more Host names to one")
    add.add_argument("name", help="its id: lower-case letters, digits and '-'")
    add.add_argument("--host", action="append", help="a Host name that serves it (repeatable), e.g. acme.example.com")
    add_common(add)
    add_database(add)
    add.set_defaults(func=_cmd_add)
    listing = orgs_sub.add_parser("list", help="list the organisations and their Host names")
    add_common(listing)
    add_database(listing)
    listing.set_defaults(func=_cmd_list)
    from signaling.org_directory_cli import add_org_directory_parsers

    add_org_directory_parsers(orgs_sub, add_common, add_database)
