"""`convene retention run`: the retention job once, now (the server runs it daily); prints its counts as JSON.

The same deletes as the server's job (chat/retention.py): every organisation under its own policy and holds (or
only `--org ORG`'s), recorded as one `retention.run` audit event per organisation by the operator. Run it against the server's data dir (or --database-url) while the server runs or not.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from chat.cli import _run
from chat.config import ChatConfig
from chat.files import FileVault
from chat.legal_hold import HoldStore
from chat.retention import Retention
from chat.service import ChatService
from chat.sql_store import SqlChatStore


def _cmd_run(args: argparse.Namespace) -> int:
    async def job(service: ChatService, config: ChatConfig) -> None:
        assert isinstance(service.store, SqlChatStore)
        service.legal_holds = HoldStore(service.store.db)
        report = await Retention(service, service.store.db, FileVault(config.files_dir), batch=args.batch).run(
            org=args.org)
        print(json.dumps(report.to_wire()))
    return _run(args, job)


def add_retention_parser(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    retention = sub.add_parser("retention", help="message retention (docs/retention.md)")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    run = retention_sub.add_parser("run", help="delete what the retention policies let go, now; prints the counts")
    add_common(run)
    run.add_argument("--redis", default=None, help="redis://… when the server runs with Redis (clients hear it)")
    run.add_argument("--database-url", default=None, help="postgresql://… when the server runs with PostgreSQL")
    run.add_argument("--batch", type=int, default=1000, help="messages deleted per transaction (default 1000)")
    run.add_argument("--org", default=None, metavar="ORG",
                     help="only this organisation (default: every organisation, each under its own policy)")
    run.set_defaults(func=_cmd_run)
