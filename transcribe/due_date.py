"""Due dates said aloud ("by Friday", "tomorrow", "next week", "by March 3") resolved against the meeting day."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "a": 1, "an": 1}

_WEEKDAY = "|".join(WEEKDAYS)
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(today|tonight|this evening)\b"), "today"),
    (re.compile(r"\btomorrow\b"), "tomorrow"),
    (re.compile(r"\b(end of (the )?month)\b"), "month_end"),
    (re.compile(r"\b(end of (the |this )?week|this week)\b"), "week_end"),
    (re.compile(rf"\bnext week'?s? ({_WEEKDAY})\b"), "next_weekday_of_week"),
    (re.compile(rf"\b({_WEEKDAY}) next week\b"), "weekday_next_week"),
    (re.compile(r"\bnext week\b"), "next_week"),
    (re.compile(rf"\bnext ({_WEEKDAY})\b"), "next_weekday"),
    (re.compile(rf"\b(?:this )?({_WEEKDAY})\b"), "weekday"),
    (re.compile(rf"\b({_MONTH})\.? (\d{{1,2}})(?:st|nd|rd|th)?\b"), "month_day"),
    (re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)? (?:of )?({_MONTH})\b"), "day_month"),
    (re.compile(r"\bin (\d+|one|two|three|four|five|six|seven|a|an) (day|week)s?\b"), "in_n"),
]


def _coming(day: date, weekday: int) -> date:
    """The next `weekday` strictly after `day` (said on a Friday, "by Friday" means a week later)."""
    ahead = (weekday - day.weekday()) % 7
    return day + timedelta(days=ahead or 7)


def _month_day(day: date, month: int, dom: int) -> date | None:
    for year in (day.year, day.year + 1):
        try:
            candidate = date(year, month, dom)
        except ValueError:
            return None
        if candidate >= day:
            return candidate
    return None


def resolve_due(text: str, meeting_day: date) -> date | None:
    """The first due date phrase in `text`, as a calendar date; None when there is none."""
    lowered = text.lower()
    for pattern, kind in _PATTERNS:
        m = pattern.search(lowered)
        if not m:
            continue
        if kind == "today":
            return meeting_day
        if kind == "tomorrow":
            return meeting_day + timedelta(days=1)
        if kind == "month_end":
            return meeting_day.replace(day=calendar.monthrange(meeting_day.year, meeting_day.month)[1])
        if kind == "week_end":
            friday = meeting_day + timedelta(days=(4 - meeting_day.weekday()) % 7)
            return friday if meeting_day.weekday() <= 4 else meeting_day
        next_monday = meeting_day + timedelta(days=7 - meeting_day.weekday())
        if kind in ("next_weekday_of_week", "weekday_next_week"):
            return next_monday + timedelta(days=WEEKDAYS[m.group(1)])
        if kind == "next_week":
            return next_monday
        if kind == "next_weekday":
            # "next Friday": Friday of next week.
            return next_monday + timedelta(days=WEEKDAYS[m.group(1)])
        if kind == "weekday":
            return _coming(meeting_day, WEEKDAYS[m.group(1)])
        if kind == "month_day":
            return _month_day(meeting_day, MONTHS[m.group(1)], int(m.group(2)))
        if kind == "day_month":
            return _month_day(meeting_day, MONTHS[m.group(2)], int(m.group(1)))
        if kind == "in_n":
            n = int(m.group(1)) if m.group(1).isdigit() else NUMBERS[m.group(1)]
            return meeting_day + timedelta(days=n * (7 if m.group(2) == "week" else 1))
    return None
