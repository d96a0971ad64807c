"""`convene stats backfill --from DAY --to DAY`: recompute the usage rollups of those days (docs/analytics.md).

Each day's rows are replaced in one transaction, so running it twice leaves the same rows. Days run in order:
a day's weekly and monthly active users read the days before it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any

from stats.days import parse_day


def _cmd_backfill(with_database: Callable[..., Any]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from stats.job import backfill

        today = datetime.now(timezone.utc).date()
        first: date = parse_day(args.from_day, "from")
        last: date = parse_day(args.to_day, "to") if args.to_day else today

        def progress(day: date, seconds: float) -> None:
            print(f"{day}: rolled up in {seconds * 1000:.0f} ms", flush=True)

        count = with_database(args, lambda db: backfill(db, first, last, progress))
        print(f"{count} days rolled up ({first} to {last})")
        return 0
    return run


def add_stats_parser(sub: Any, add_common: Callable[[argparse.ArgumentParser], None],
                     add_database: Callable[[argparse.ArgumentParser], None],
                     with_database: Callable[..., Any]) -> None:
    stats = sub.add_parser("stats", help="usage analytics (docs/analytics.md)")
    stats_sub = stats.add_subparsers(dest="stats_command", required=True)
    backfill = stats_sub.add_parser("backfill", help="recompute the daily rollups of a range of UTC days "
                                                     "(idempotent: each day's rows are replaced)")
    backfill.add_argument("--from", dest="from_day", required=True, metavar="DAY", help="first day, 2026-11-01")
    backfill.add_argument("--to", dest="to_day", default=None, metavar="DAY", help="last day (default: today, UTC)")
    add_common(backfill)
    add_database(backfill)
    backfill.set_defaults(func=_cmd_backfill(with_database))
