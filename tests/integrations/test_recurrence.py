"""Recurrence (integrations/recurrence.py): RRULE and cron read on an IANA zone's wall clock, DST-correct."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from common.errors import InvalidField
from integrations.recurrence import local_midnight, parse
from integrations.scheduled_store import SCHEDULED, ScheduledPost
from integrations.scheduler import plan

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def local(instant: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(instant, tz)


def occurrences(rec_next: object, start: float, n: int) -> list[float]:
    out, t = [], start
    for _ in range(n):
        nxt = rec_next(t)  # type: ignore[operator]
        assert nxt is not None
        out.append(nxt)
        t = nxt
    return out


@pytest.mark.parametrize("kind,rule", [("cron", "0 18 * * 1-5"),
                                       ("rrule", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=18")])
def test_weekdays_at_18_in_shanghai_across_a_week_boundary(kind: str, rule: str) -> None:
    thursday_noon = datetime(2026, 12, 3, 12, 0, tzinfo=SHANGHAI).timestamp()
    rec = parse(kind, rule, "Asia/Shanghai", local_midnight(thursday_noon, "Asia/Shanghai"))
    got = [local(t, SHANGHAI) for t in occurrences(rec.next_after, thursday_noon, 4)]
    assert [(d.strftime("%a %d"), d.hour, d.minute, d.second) for d in got] == [
        ("Thu 03", 18, 0, 0), ("Fri 04", 18, 0, 0), ("Mon 07", 18, 0, 0), ("Tue 08", 18, 0, 0)]
    # 18:00 in Shanghai is 10:00 UTC.
    assert all(datetime.fromtimestamp(t.timestamp(), ZoneInfo("UTC")).hour == 10 for t in got)


@pytest.mark.parametrize("kind,rule", [("cron", "0 9 * * *"), ("rrule", "FREQ=DAILY;BYHOUR=9")])
def test_daily_9_in_berlin_keeps_local_time_across_both_dst_changes(kind: str, rule: str) -> None:
    for day, gap_hours in ((datetime(2026, 3, 27, 12, tzinfo=BERLIN), 23), (datetime(2026, 10, 23, 12, tzinfo=BERLIN), 25)):
        rec = parse(kind, rule, "Europe/Berlin", local_midnight(day.timestamp() - 86400, "Europe/Berlin"))
        first, second = occurrences(rec.next_after, day.timestamp(), 2)
        assert (local(first, BERLIN).hour, local(second, BERLIN).hour) == (9, 9)
        assert (second - first) / 3600 == gap_hours  # the night the clocks change is an hour shorter / longer


def test_a_skipped_wall_time_runs_an_hour_later_and_a_repeated_one_runs_once() -> None:
    rec = parse("cron", "30 2 * * *", "Europe/Berlin", 0.0)
    skipped = rec.next_after(datetime(2026, 3, 28, 12, tzinfo=BERLIN).timestamp())  # 02:30 does not exist on 29th
    assert skipped is not None and local(skipped, BERLIN).strftime("%m-%d %H:%M %z") == "03-29 03:30 +0200"
    following = rec.next_after(skipped)
    assert following is not None and local(following, BERLIN).strftime("%m-%d %H:%M") == "03-30 02:30"
    autumn = rec.next_after(datetime(2026, 10, 24, 12, tzinfo=BERLIN).timestamp())
    assert autumn is not None and local(autumn, BERLIN).strftime("%m-%d %H:%M %z") == "10-25 02:30 +0200"
    after = rec.next_after(autumn)
    assert after is not None and local(after, BERLIN).strftime("%m-%d %H:%M") == "10-26 02:30"


def test_after_downtime_a_recurring_post_sends_only_its_latest_missed_occurrence() -> None:
    monday = datetime(2026, 11, 30, 18, tzinfo=SHANGHAI).timestamp()
    post = ScheduledPost(id="sp_x", author="a", channel_id="c", text="t", rule_kind="cron", rule="0 18 * * 1-5",
                         timezone="Asia/Shanghai", start=monday - 3600, status=SCHEDULED, next_run=monday,
                         created_at=monday - 3600)
    thursday_noon = monday + 3 * 86400 - 6 * 3600  # Mon, Tue, Wed missed
    occurrence, next_run = plan(post, thursday_noon)
    assert local(occurrence, SHANGHAI).strftime("%a %H:%M") == "Wed 18:00"
    assert next_run is not None and local(next_run, SHANGHAI).strftime("%a %H:%M") == "Thu 18:00"
    one_shot = ScheduledPost(**{**post.__dict__, "rule_kind": None, "rule": None, "timezone": None})
    assert plan(one_shot, thursday_noon) == (monday, None)


@pytest.mark.parametrize("kind,rule,zone", [
    ("cron", "* * *", "UTC"), ("cron", "0 0 * * * *", "UTC"), ("cron", "61 * * * *", "UTC"),
    ("rrule", "FREQ=MINUTELY", "UTC"), ("rrule", "FREQ=SECONDLY", "UTC"), ("rrule", "BYHOUR=3", "UTC"),
    ("rrule", "DTSTART:20200101T000000\nRRULE:FREQ=DAILY", "UTC"), ("rrule", "FREQ=DAILY;BYHOUR=99", "UTC"),
    ("cron", "0 18 * * 1-5", "Mars/Olympus"), ("cron", "0 18 * * 1-5", 8),
    # Rules that never occur are refused before anything iterates them (dateutil would search to the year 9999).
    ("rrule", "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "UTC"), ("rrule", "FREQ=DAILY;INTERVAL=7;BYDAY=MO", "UTC"),
    ("rrule", "FREQ=MONTHLY;INTERVAL=12;BYMONTH=2", "UTC"), ("rrule", "FREQ=YEARLY;BYSETPOS=1;BYDAY=MO", "UTC"),
    ("rrule", "FREQ=DAILY;FREQ=WEEKLY", "UTC"), ("rrule", "FREQ=WEEKLY;INTERVAL=x", "UTC")])
def test_bad_rules_and_zones_are_refused(kind: str, rule: str, zone: object) -> None:
    with pytest.raises(InvalidField):
        parse(kind, rule, zone, 0.0)


def test_a_cron_day_that_never_comes_has_no_occurrence_and_costs_nothing() -> None:
    rec = parse("cron", "0 0 30 2 *", "UTC", 0.0)
    started = time.perf_counter()
    assert rec.next_after(1_800_000_000.0) is None and rec.latest_until(1_800_000_000.0, 0.0) is None
    assert time.perf_counter() - started < 0.5


def test_sparse_but_real_rules_are_found_quickly() -> None:
    started = time.perf_counter()
    leap_monday = parse("rrule", "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=9", "UTC", 1_800_000_000.0)
    found = leap_monday.next_after(1_800_000_000.0)
    assert found is not None and local(found, ZoneInfo("UTC")).strftime("%m-%d %a %H") == "02-29 Mon 09"
    quarterly = parse("rrule", "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1;BYHOUR=9", "UTC", 1_800_000_000.0)
    assert quarterly.next_after(1_800_000_000.0) is not None
    assert time.perf_counter() - started < 2.0


def test_until_in_utc_is_read_as_the_instant_it_names() -> None:
    start = datetime(2026, 12, 1, tzinfo=SHANGHAI).timestamp()
    # 10:00 UTC on Dec 3rd is 18:00 in Shanghai: the 18:00 post of that day is the last one.
    rec = parse("rrule", "FREQ=DAILY;BYHOUR=18;UNTIL=20261203T100000Z", "Asia/Shanghai", start)
    assert [local(t, SHANGHAI).day for t in occurrences(rec.next_after, start, 3)[:3]] == [1, 2, 3]
    assert rec.next_after(datetime(2026, 12, 3, 18, tzinfo=SHANGHAI).timestamp()) is None
