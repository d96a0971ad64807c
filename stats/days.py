"""UTC days as the rollups name them ("2026-12-01") and the instants they span."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

from common.errors import InvalidField

MAX_DAYS = 400  # a request or a backfill spans at most this many days


def day_of(instant: float) -> str:
    return datetime.fromtimestamp(instant, tz=timezone.utc).date().isoformat()


def parse_day(text: str, field: str) -> date:
    """A day from 1970 to 9998 (so a default range before it, or a day after it, stays a date)."""
    try:
        day = date.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidField(f"{field} takes a day like 2026-12-01", field=field) from None
    if not 1970 <= day.year <= 9998:
        raise InvalidField(f"{field} must be a day from 1970 on", field=field)
    return day


def span(day: date) -> tuple[float, float]:
    """The day's first instant and the next day's (Unix seconds)."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()
    return start, start + 86400.0


def days(first: date, last: date) -> Iterator[date]:
    """first..last inclusive; InvalidField when reversed or longer than MAX_DAYS."""
    if last < first:
        raise InvalidField("to is before from", field="to")
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise InvalidField(f"at most {MAX_DAYS} days at once", field="to")
    for i in range(count):
        yield first + timedelta(days=i)
