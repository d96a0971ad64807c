"""Chinese meetings: transcripts join Chinese captions without spaces, sentences end at 。！？；, and the notes
find decisions (决定, 确定, …), action items (负责, 跟进, 请…在…之前, 我来) with owners, and Chinese due dates."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from transcribe.caption import Caption, join_text
from transcribe.due_date import resolve_due, zh_number
from transcribe.notes import NotesWriter
from transcribe.transcript import Transcript

# Tuesday 2026-11-24 15:00 UTC
STARTED = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc).timestamp()
DAY = date(2026, 11, 24)
SCRIPT = [  # (participant, name, start, end, text) as final caption fragments, as Whisper writes them
    ("PA_z", "张三", 1.0, 2.5, "大家好，"),
    ("PA_z", "张三", 2.5, 4.0, "我们开始每周的计划会议。"),
    ("PA_l", "李四", 5.0, 8.0, "我们决定把发布推迟到下个月。"),
    ("PA_l", "李四", 8.5, 11.0, "请张三在周五之前更新网站。"),
    ("PA_z", "张三", 12.0, 14.0, "好的，我来准备客户评审的幻灯片，下周一给大家。"),
    ("PA_w", "王五", 15.0, 17.0, "测试计划由李四负责，月底之前完成。"),
    ("PA_w", "王五", 17.5, 19.0, "王五跟进客户的反馈，12月5日之前回复。"),
    ("PA_l", "李四", 19.5, 21.0, "我还不确定预算够不够。"),
]


def scripted() -> Transcript:
    t = Transcript(room="周会", meeting_id="20261124T150000Z", started_at=STARTED, ended_at=STARTED + 30)
    for pid, name in (("PA_z", "张三"), ("PA_l", "李四"), ("PA_w", "王五")):
        t.attend(pid, name, pid.lower())
    for i, (pid, name, start, end, text) in enumerate(SCRIPT):
        t.add(Caption(f"S{i}", pid, name, start, end, text, True, "zh"))
    return t


def test_chinese_captions_join_without_spaces_and_split_at_chinese_sentence_ends() -> None:
    segments = scripted().segments()
    assert segments[0].text == "大家好，我们开始每周的计划会议。"  # two captions, one sentence, no space
    assert [s.name for s in segments[:3]] == ["张三", "李四", "李四"]  # 。 closes a sentence
    assert join_text("我们 需要", "在月底 之前") == "我们需要在月底之前"
    assert join_text("我们用", "Python 写") == "我们用 Python 写"  # spaces stay around Latin words


def test_chinese_notes_find_decisions_owners_and_due_dates() -> None:
    notes = NotesWriter().write(scripted(), meeting_day=DAY)
    assert notes.decisions == ["我们决定把发布推迟到下个月。 (李四)"]  # 不确定 is no decision
    items = {(i.owner, i.task, i.due) for i in notes.action_items}
    assert ("张三", "更新网站", "2026-11-27") in items  # 请…在周五之前…: Friday of this week
    assert ("张三", "准备客户评审的幻灯片，下周一给大家", "2026-11-30") in items  # 我来 → the speaker
    assert ("李四", "测试计划，月底之前完成", "2026-11-30") in items  # 由李四负责, 月底
    assert ("王五", "客户的反馈，12月5日之前回复", "2026-12-05") in items
    assert len(notes.action_items) == 4
    by_task = {i.task: i for i in notes.action_items}
    assert by_task["更新网站"].owner_identity == "pa_z" and by_task["更新网站"].said_by == "李四"
    assert notes.summary and all(":" in line for line in notes.summary)
    assert "更新网站" in notes.to_markdown()


@pytest.mark.parametrize(("said", "due"), [
    ("周五", "2026-11-27"), ("星期五", "2026-11-27"), ("这周五", "2026-11-27"), ("礼拜二", "2026-12-01"),
    ("下周一", "2026-11-30"), ("下星期三", "2026-12-02"), ("下周", "2026-11-30"), ("12月5日", "2026-12-05"),
    ("十二月五号", "2026-12-05"), ("1月3日", "2027-01-03"), ("月底", "2026-11-30"), ("明天", "2026-11-25"),
    ("后天", "2026-11-26"), ("今天", "2026-11-24"), ("三天内", "2026-11-27"), ("两周后", "2026-12-08"),
    ("本周末", "2026-11-27"), ("28号", "2026-11-28"),
])
def test_chinese_due_dates(said: str, due: str) -> None:
    assert resolve_due(f"请在{said}之前完成", DAY) == date.fromisoformat(due)


def test_chinese_numbers_and_no_date() -> None:
    assert [zh_number(n) for n in ("五", "十", "十二", "二十", "二十五", "三十一", "7")] == [5, 10, 12, 20, 25, 31, 7]
    assert resolve_due("我们需要更多的测试", DAY) is None
    assert resolve_due("by Friday", DAY) == date(2026, 11, 27)  # English still works
