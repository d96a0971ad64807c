"""Due dates said aloud ("by Friday", "tomorrow", "next week", "by March 3"; 周五, 下周一, 12月5日, 月底)
resolved against the meeting day."""

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


# Chinese: weekdays after 周/星期/礼拜 (一 is Monday, 日 and 天 Sunday), numbers as digits or characters.
ZH_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_NUM = r"(?:\d{1,2}|[零〇一二两三四五六七八九十]{1,3})"
_ZH_WEEK = r"(?:周|星期|礼拜)"
_ZH_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"今天|今晚|今日"), "today"),
    (re.compile(r"明天|明日"), "tomorrow"),
    (re.compile(r"后天"), "day_after_tomorrow"),
    (re.compile(r"月底|月末"), "month_end"),
    (re.compile(rf"(?:这|本)?{_ZH_WEEK}末|(?:这|本){_ZH_WEEK}(?:内|之内)?(?![一二三四五六日天])"), "week_end"),
    (re.compile(rf"下(?:个)?{_ZH_WEEK}([一二三四五六日天])"), "next_week_day"),
    (re.compile(rf"下(?:个)?{_ZH_WEEK}"), "next_week"),
    (re.compile(rf"{_ZH_WEEK}([一二三四五六日天])"), "weekday"),
    (re.compile(rf"({_ZH_NUM})月({_ZH_NUM})(?:日|号)"), "month_day"),
    (re.compile(rf"({_ZH_NUM})号"), "day_of_month"),
    (re.compile(rf"({_ZH_NUM})天(?:后|之后|以后|内|之内|以内)"), "in_days"),
    (re.compile(rf"({_ZH_NUM})(?:个)?(?:周|星期|礼拜)(?:后|之后|以后|内|之内|以内)"), "in_weeks"),
]


def zh_number(text: str) -> int:
    """12, 十二, 二十五, 三十一, 五 → int (the numbers dates use)."""
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_ZH_DIGITS.get(tens, 1) if tens else 1) * 10 + (_ZH_DIGITS.get(ones, 0) if ones else 0)
    return _ZH_DIGITS.get(text, 0)


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


def _relative_day(kind: str, meeting_day: date) -> date | None:
    """The due dates English and Chinese phrases share (today, tomorrow, month end, end of the week)."""
    if kind == "today":
        return meeting_day
    if kind == "tomorrow":
        return meeting_day + timedelta(days=1)
    if kind == "day_after_tomorrow":
        return meeting_day + timedelta(days=2)
    if kind == "month_end":
        return meeting_day.replace(day=calendar.monthrange(meeting_day.year, meeting_day.month)[1])
    if kind == "week_end":
        friday = meeting_day + timedelta(days=(4 - meeting_day.weekday()) % 7)
        return friday if meeting_day.weekday() <= 4 else meeting_day
    return None


def resolve_due_zh(text: str, meeting_day: date) -> date | None:
    """The first Chinese due date phrase in `text` (周五, 下周一, 12月5日, 月底, 三天内, ...)."""
    next_monday = meeting_day + timedelta(days=7 - meeting_day.weekday())
    for pattern, kind in _ZH_PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        shared = _relative_day(kind, meeting_day)
        if shared is not None:
            return shared
        if kind == "next_week_day":
            return next_monday + timedelta(days=ZH_WEEKDAYS[m.group(1)])
        if kind == "next_week":
            return next_monday
        if kind == "weekday":
            return _coming(meeting_day, ZH_WEEKDAYS[m.group(1)])
        if kind == "month_day":
            return _month_day(meeting_day, zh_number(m.group(1)), zh_number(m.group(2)))
        if kind == "day_of_month":
            dom = zh_number(m.group(1))
            month = meeting_day.month if dom >= meeting_day.day else meeting_day.month % 12 + 1
            return _month_day(meeting_day, month, dom)
        if kind == "in_days":
            return meeting_day + timedelta(days=zh_number(m.group(1)))
        if kind == "in_weeks":
            return meeting_day + timedelta(days=7 * zh_number(m.group(1)))
    return None


def resolve_due(text: str, meeting_day: date) -> date | None:
    """The first due date phrase in `text`, as a calendar date; None when there is none."""
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        found = resolve_due_zh(text, meeting_day)
        if found is not None:
            return found
    lowered = text.lower()
    for pattern, kind in _PATTERNS:
        m = pattern.search(lowered)
        if not m:
            continue
        shared = _relative_day(kind, meeting_day)
        if shared is not None:
            return shared
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
