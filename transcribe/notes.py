"""Meeting notes without a network or an LLM: attendance and speaking time, an extractive summary,
decisions, and action items (owner, due date) found in what people said, in English or Chinese."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone

from identity.orgs import plain
from transcribe.due_date import resolve_due
from transcribe.formats import clock, md_escape
from transcribe.transcript import Attendee, Segment, Transcript

STOPWORDS = set(
    "a an and are as at be been but by for from has have he her his i i'll i'm if in into is it its just let's "
    "me my of on or our so that the their them then there these they this to up us was we we'll were what when "
    "which who will with would you your yes no okay ok thanks thank um uh also can could should all any do "
    "does did not now next first second".split()
)
_SENTENCE = re.compile(r"(?<=[.?!])\s+|(?<=[。！？；])\s*")
_DECISION = re.compile(
    r"\b(we (have )?(decided|agreed|chose|will go with)|(it|this|that) (is|was) (decided|agreed|approved)"
    r"|(is|are|was|were) approved|decision is|let's go with|we('re| are) going with)\b", re.I)
_SELF = re.compile(r"\b(I will|I'll|I am going to|I'm going to|I can|let me)\s+(.+)", re.I)
# A name is one or two capitalised words: a full name ("Bob Smith will…"), or a first name the recogniser has
# added a word to ("Bob Dog will…", "Then Bob will…"); _named_action and _attendee_named sort them out.
_NAMED = re.compile(r"\b([A-Z][a-z]+(?: [A-Z][a-z]+)?)(?:,)? (?:will|is going to|should|needs to|can|has to)\s+(.+)")
_ASKED = re.compile(r"\b(?:can|could) ([A-Z][a-z]+(?: [A-Z][a-z]+)?)(?:,)? (?:please )?(.+?)\??$")
_ACTION_ITEM = re.compile(r"\baction item(?: for ([A-Z][a-z]+))?[:,]?\s+(.+)", re.I)
# Chinese: 决定/确定/同意/批准/通过/敲定 (not 不确定, 没决定 ...); 负责, 跟进, 请…在…之前, 我来/我会.
_ZH_DECISION = re.compile(r"(?<![不没未])(决定|确定|同意|批准|敲定|定下来)|(?<![不没未])通过了")
_ZH_NAME = r"[A-Za-z\u4e00-\u9fff·]{1,12}?"
_ZH_ASKED = re.compile(rf"请({_ZH_NAME})(?:在|于)(.{{1,12}}?)(?:之前|以前|前)[，,]?(.+)")
_ZH_BY = re.compile(rf"由({_ZH_NAME})(?:来)?(?:负责|跟进)(.*)")
_ZH_OWNS = re.compile(rf"({_ZH_NAME})(?:来)?(?:负责|跟进)(.+)")
_ZH_SELF = re.compile(r"我(?:会|来|将|去|负责|跟进)(.+)")
_ZH_NOT_OWNERS = {"我们", "大家", "你们", "他们", "她们", "这个", "那个", "谁", "有人", "这", "那", "需要", "谁来"}
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_ZH_FUNCTION = set("的了是在我们你他她它这那个有和就也都要会把被对吧吗呢啊很还又")
_NOT_OWNERS = {"We", "They", "It", "This", "That", "There", "Everyone", "Somebody", "Someone", "The", "He", "She",
               "You", "What", "Who", "Then", "So", "And", "But", "Also", "First", "Second", "Next", "Thanks",
               "Today", "Tomorrow", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}


@dataclass(frozen=True)
class ActionItem:
    owner: str  # a display name ("Alice"); "" when nobody was named
    owner_participant_id: str | None
    owner_identity: str | None  # the login to assign a chat task to, when known
    task: str
    due: str | None  # ISO date
    said_by: str
    at: float  # meeting seconds
    sentence: str


@dataclass(frozen=True)
class SpeakerTime:
    participant_id: str
    name: str
    identity: str
    seconds: float


@dataclass(frozen=True)
class MeetingNotes:
    room: str
    meeting_id: str
    date: str
    started_at: str
    duration_seconds: float
    attendees: list[SpeakerTime]
    summary: list[str]
    decisions: list[str]
    action_items: list[ActionItem]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def to_markdown(self) -> str:
        """Every name and sentence goes through md_escape: people's words never add a heading, a
        decision or an action item of their own."""
        lines = [f"# Meeting notes: {self.room}", "", f"{self.date}, started {self.started_at}, "
                 f"{clock(self.duration_seconds)[:8]} long.", "", "## Attendees", ""]
        for a in self.attendees:
            lines.append(f"- {md_escape(a.name)}: spoke {clock(a.seconds)[:8]}")
        lines += ["", "## Summary", ""] + [f"- {md_escape(s)}" for s in self.summary or ["(nothing said)"]]
        lines += ["", "## Decisions", ""] + [f"- {md_escape(d)}" for d in self.decisions or ["(none recorded)"]]
        lines += ["", "## Action items", ""]
        for item in self.action_items:
            due = f" (due {item.due})" if item.due else ""
            lines.append(f"- [ ] **{md_escape(item.owner) or 'unassigned'}**: {md_escape(item.task)}{due}")
        if not self.action_items:
            lines.append("(none recorded)")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Sentence:
    text: str
    segment: Segment


def _sentences(segments: list[Segment]) -> list[_Sentence]:
    out: list[_Sentence] = []
    for seg in segments:
        for part in _SENTENCE.split(seg.text):
            if part.strip():
                out.append(_Sentence(part.strip(), seg))
    return out


def _content_words(text: str) -> list[str]:
    """Content words; Chinese has no spaces, so its content "words" are character pairs without function
    characters (a cheap stand-in for word segmentation that is enough to score sentences)."""
    words = [w for w in re.findall(r"[a-z']+", text.lower()) if w not in STOPWORDS and len(w) > 2]
    for run in _CJK_RUN.findall(text):
        words += [run[i:i + 2] for i in range(len(run) - 1)
                  if run[i] not in _ZH_FUNCTION and run[i + 1] not in _ZH_FUNCTION]
    return words


def _clean_task(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip().strip("，,：:").rstrip(".?!。！？；")
    return text[:1].upper() + text[1:] if text else text


class NotesWriter:
    """Builds MeetingNotes from a Transcript; `meeting_day` defaults to the meeting's UTC date."""

    def __init__(self, summary_sentences: int = 4) -> None:
        self._summary_sentences = summary_sentences

    def write(self, t: Transcript, meeting_day: date | None = None) -> MeetingNotes:
        day = meeting_day or datetime.fromtimestamp(t.started_at, tz=timezone.utc).date()
        segments = t.segments()
        sentences = _sentences(segments)
        spoken: dict[str, float] = {}
        for c in t.captions:
            spoken[c.participant_id] = spoken.get(c.participant_id, 0.0) + max(0.0, c.end - c.start)
        attendees = [
            SpeakerTime(a.participant_id, a.name, a.identity, round(spoken.get(a.participant_id, 0.0), 1))
            for a in t.attendees.values()
        ]
        for pid in spoken:
            if pid not in t.attendees:
                attendees.append(SpeakerTime(pid, t.name_of(pid), "", round(spoken[pid], 1)))
        attendees.sort(key=lambda a: -a.seconds)
        end = max((s.end for s in segments), default=0.0)
        duration = (t.ended_at - t.started_at) if t.ended_at else end
        return MeetingNotes(
            room=plain(t.room),
            meeting_id=t.meeting_id,
            date=day.isoformat(),
            started_at=t.wall(0).strftime("%Y-%m-%dT%H:%M:%SZ"),
            duration_seconds=round(max(duration, end), 1),
            attendees=attendees,
            summary=self._summary(sentences),
            decisions=[f"{s.text} ({s.segment.name})" for s in sentences if _is_decision(s.text)],
            action_items=[item for s in sentences if (item := self._action(s, t, day)) is not None],
        )

    def _summary(self, sentences: list[_Sentence]) -> list[str]:
        freq = Counter(w for s in sentences for w in _content_words(s.text))
        scored = []
        for i, s in enumerate(sentences):
            words = _content_words(s.text)
            if len(words) < 2:
                continue
            score = sum(freq[w] for w in set(words)) / (len(words) ** 0.5)
            if _is_decision(s.text):
                score *= 1.5
            scored.append((score, i))
        best = sorted(i for _, i in sorted(scored, reverse=True)[: self._summary_sentences])
        return [f"{sentences[i].segment.name}: {sentences[i].text}" for i in best]

    def _action(self, s: _Sentence, t: Transcript, day: date) -> ActionItem | None:
        owner = ""
        task = ""
        zh = _zh_action(s.text, [a.name for a in t.attendees.values() if a.name])
        if zh is not None:
            owner, task = zh
            if owner == "我":
                owner = s.segment.name
            elif owner in _ZH_NOT_OWNERS:
                owner = ""
            if not task:
                return None
        elif (m := _ACTION_ITEM.search(s.text)) is not None:
            owner, task = (m.group(1) or ""), m.group(2)
        elif (m := _SELF.search(s.text)) is not None:
            owner, task = s.segment.name, m.group(2)
        elif (named := _named_action(s.text)) is not None:
            owner, task = named
        else:
            return None
        if len(_content_words(task)) < 1:
            return None
        pid: str | None = None
        identity: str | None = None
        if owner == s.segment.name:
            pid = s.segment.participant_id
            a = t.attendees.get(pid)
            identity = a.identity if a and a.identity else None
        elif owner and (a := _attendee_named(owner, list(t.attendees.values()))) is not None:
            owner, pid, identity = a.name, a.participant_id, a.identity or None
        # Chinese says the date before the task (请张三在周五之前…): look in the whole sentence.
        due = resolve_due(s.text if zh is not None else task, day)
        return ActionItem(owner=owner, owner_participant_id=pid, owner_identity=identity, task=_clean_task(task),
                          due=due.isoformat() if due else None, said_by=s.segment.name, at=round(s.segment.start, 2),
                          sentence=s.text)


def _named_action(text: str) -> tuple[str, str] | None:
    """(owner, task) of "Bob will…" or "could Bob…", without the words before it that are no name ("Then Bob")."""
    for pattern in (_NAMED, _ASKED):
        m = pattern.search(text)
        if m is None:
            continue
        owner = " ".join(w for w in m.group(1).split() if w not in _NOT_OWNERS)
        if owner:
            return owner, m.group(2)
    return None


def _attendee_named(said: str, attendees: list[Attendee]) -> Attendee | None:
    """The attendee a spoken name stands for: the whole name ("Bob Smith"), else the first of its words that is an
    attendee's first name, since recognisers add words next to names ("Bob Dog will write…")."""
    named = [a for a in attendees if a.name]
    whole = next((a for a in named if a.name.lower() == said.lower()), None)
    if whole is not None:
        return whole
    by_first = {a.name.split()[0].lower(): a for a in named}
    return next((by_first[w.lower()] for w in said.split() if w.lower() in by_first), None)


def _is_decision(text: str) -> bool:
    return bool(_DECISION.search(text) or _ZH_DECISION.search(text))


def _zh_owner(said: str, names: list[str]) -> str:
    """Who is meant by the words before 负责/跟进 or after 请: Chinese has no spaces, so "所以张三" is read
    as 张三 when an attendee has that name; a short phrase (a name of 2-3 characters, or an English word) is
    taken as it is; anything longer is left unassigned rather than guessed."""
    for name in sorted(names, key=len, reverse=True):
        if said.endswith(name) or said.lower().endswith(name.lower()):
            return name
    said = said.strip("，,。 ")
    if said in ("我", *_ZH_NOT_OWNERS):
        return said
    return said if len(said) <= 3 or re.fullmatch(r"[A-Za-z·]+", said) else ""


def _zh_action(text: str, names: list[str]) -> tuple[str, str] | None:
    """(owner, task) of a Chinese action item: 请X在…之前做Y, 由X负责Y, X负责/跟进Y, 我来/我会Y."""
    if not _CJK_RUN.search(text):
        return None
    if (m := _ZH_ASKED.search(text)) is not None:
        return _zh_owner(m.group(1), names), m.group(3)
    if (m := _ZH_BY.search(text)) is not None:
        # "测试计划由李四负责，月底之前完成": the task is said around 由X负责.
        parts = [text[: m.start()].strip("，,。 "), m.group(2).strip("，,。 ")]
        return _zh_owner(m.group(1), names), "，".join(p for p in parts if p)
    if (m := _ZH_SELF.search(text)) is not None:
        return "我", m.group(1)
    if (m := _ZH_OWNS.search(text)) is not None:
        return _zh_owner(m.group(1), names), m.group(2)
    return None
