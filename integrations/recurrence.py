"""When a recurring post is due: an RRULE (RFC 5545, python-dateutil) or a 5-field cron line (croniter), read
in an IANA time zone.

Both are evaluated on the zone's wall clock and only then turned into instants, so "every weekday at 18:00
Europe/Berlin" stays at 18:00 local across a daylight-saving change. A wall time that does not exist (the hour
skipped in spring) is taken with the offset before the change (02:30 becomes 03:30 summer time); a wall time that
happens twice (the hour repeated in autumn) runs once, at its first instant (PEP 495 fold=0).

An RRULE's DTSTART is the post's `at` when given, else midnight of the day it was made in its zone, so
`FREQ=DAILY;BYHOUR=18` means 18:00:00 (fields not given default to DTSTART's, as RFC 5545 says).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from dateutil.rrule import rrule, rrulestr

from common.errors import InvalidField

KINDS = ("rrule", "cron")
# Finer rules would post more than once a minute (and make iterating from DTSTART slow): cron's minute is the floor.
_FREQUENCIES = {"YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY"}
# What a posting schedule needs; the rest (BYSETPOS, BYWEEKNO, BYYEARDAY, BYEASTER, BYSECOND) is refused.
_RRULE_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYHOUR", "BYMINUTE"}
_DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
MAX_RULE_CHARS = 500


def zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not 1 <= len(name) <= 64:
        raise InvalidField("timezone must be an IANA zone name such as Asia/Shanghai", field="timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidField(f"unknown time zone {name!r}", field="timezone") from exc


def _wall(instant: float, tz: ZoneInfo) -> datetime:
    """The zone's wall clock at `instant`, naive (what the rules are read on)."""
    return datetime.fromtimestamp(instant, tz).replace(tzinfo=None)


def _instant(wall: datetime, tz: ZoneInfo) -> float:
    return wall.replace(tzinfo=tz, fold=0).timestamp()


@dataclass(frozen=True)
class Recurrence:
    kind: str  # "rrule" | "cron"
    rule: str
    timezone: str
    start: float  # DTSTART (rrule) / not before (cron), an instant

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def _rrule(self) -> rrule:
        dtstart = _wall(self.start, self.tz).replace(microsecond=0)
        parsed = rrulestr(self.rule, dtstart=dtstart)
        assert isinstance(parsed, rrule)
        return parsed

    def next_after(self, instant: float) -> float | None:
        """The first occurrence strictly after `instant` (and not before `start`); None when the rule has ended."""
        tz = self.tz
        after = max(instant, self.start - 1e-6)
        wall = _wall(after, tz)
        for _ in range(3):  # a wall time repeated in autumn may map back to or before `after`: look further
            if self.kind == "rrule":
                found = self._rrule().after(wall, inc=False)
                if found is None:
                    return None
            else:
                try:
                    found = croniter(self.rule, wall).get_next(datetime)
                except CroniterBadDateError:  # a day that never comes (0 0 30 2 *)
                    return None
            at = _instant(found, tz)
            if at > after:
                return at
            wall = found
        return None

    def latest_until(self, instant: float, not_before: float) -> float | None:
        """The last occurrence in [not_before, instant]: the one a scheduler that was down sends on waking."""
        tz = self.tz
        wall = _wall(instant, tz)
        if self.kind == "rrule":
            found = self._rrule().before(wall, inc=True)
        else:
            # croniter's get_prev is strictly before: step one second past `instant` to include it.
            try:
                found = croniter(self.rule, wall + timedelta(seconds=1)).get_prev(datetime)
            except CroniterBadDateError:
                return None
        if found is None:
            return None
        at = _instant(found, tz)
        return at if not_before <= at <= instant else None


def _rrule_parts(text: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in text.upper().split(";"):
        key, sep, value = item.partition("=")
        if not sep or key in parts:
            raise InvalidField(f"rrule part {item!r} is not KEY=VALUE (once each)", field="rrule")
        parts[key] = value
    return parts


def _ints(value: str | None) -> list[int]:
    return [int(v) for v in value.split(",")] if value else []


def _check_rrule_is_reachable(parts: dict[str, str], start: float, tz: ZoneInfo) -> None:
    """Refuses rules that can never occur, before anything iterates them: dateutil looks for the next occurrence
    period by period up to the year 9999, which takes tens of seconds of CPU for an hourly rule that never matches
    (BYMONTH=2;BYMONTHDAY=30, or an INTERVAL that never lands on the wanted weekday or month)."""
    unknown = sorted(set(parts) - _RRULE_PARTS)
    if unknown:
        raise InvalidField(f"rrule parts {', '.join(unknown)} are not supported here", field="rrule")
    if parts.get("FREQ") not in _FREQUENCIES:
        raise InvalidField("rrule FREQ must be HOURLY or coarser (use cron for minutes)", field="rrule")
    interval = int(parts.get("INTERVAL", "1") or "1")
    if interval > 1 and parts["FREQ"] in ("HOURLY", "DAILY"):
        raise InvalidField("rrule INTERVAL is for WEEKLY, MONTHLY and YEARLY (list BYHOUR or BYDAY instead)",
                           field="rrule")
    months = _ints(parts.get("BYMONTH")) or list(range(1, 13))
    days = _ints(parts.get("BYMONTHDAY"))
    if days and not any(abs(d) <= _DAYS_IN_MONTH[m] for m in months for d in days):
        raise InvalidField("rrule BYMONTHDAY never falls in its BYMONTH", field="rrule")
    if parts["FREQ"] == "MONTHLY" and interval > 1 and "BYMONTH" in parts:
        first = _wall(start, tz).month - 1
        reachable = {(first + i * interval) % 12 + 1 for i in range(12)}
        if not reachable & set(months):
            raise InvalidField("rrule INTERVAL never reaches its BYMONTH", field="rrule")


def _local_until(text: str, tz: ZoneInfo) -> str:
    """An UTC UNTIL (RFC 5545's form, `…Z`) as the zone's wall time, which the rule is read on."""
    def local(match: re.Match[str]) -> str:
        instant = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=ZoneInfo("UTC"))
        return "UNTIL=" + instant.astimezone(tz).strftime("%Y%m%dT%H%M%S")
    try:
        return re.sub(r"UNTIL=(\d{8}T\d{6})Z", local, text, flags=re.IGNORECASE)
    except ValueError as exc:
        raise InvalidField(f"rrule UNTIL: {exc}", field="rrule") from exc


def parse(kind: str, rule: object, timezone_name: object, start: float) -> Recurrence:
    """A checked Recurrence (InvalidField naming the bad field otherwise)."""
    tz = zone(timezone_name)
    assert isinstance(timezone_name, str)
    if not isinstance(rule, str) or not 1 <= len(rule) <= MAX_RULE_CHARS:
        raise InvalidField(f"{kind} must be a string of 1-{MAX_RULE_CHARS} characters", field=kind)
    text = rule.strip()
    if kind == "rrule":
        text = _local_until(text.removeprefix("RRULE:"), tz)
        if "\n" in text or ":" in text:
            raise InvalidField("rrule is one RRULE line without DTSTART (the post's at is its start)", field=kind)
        try:
            _check_rrule_is_reachable(_rrule_parts(text), start, tz)
            parsed = rrulestr(text, dtstart=datetime(2000, 1, 1))
        except (ValueError, TypeError) as exc:
            raise InvalidField(f"rrule: {exc}", field=kind) from exc
        if not isinstance(parsed, rrule):
            raise InvalidField("rrule must be one rule", field=kind)
    else:
        if len(text.split()) != 5 or not croniter.is_valid(text):
            raise InvalidField("cron must be 5 fields: minute hour day-of-month month day-of-week", field=kind)
    return Recurrence(kind=kind, rule=text, timezone=timezone_name, start=start)


def local_midnight(instant: float, timezone_name: str) -> float:
    """Midnight of `instant`'s day in the zone (a recurring post's default DTSTART)."""
    tz = zone(timezone_name)
    wall = _wall(instant, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return _instant(wall, tz)

