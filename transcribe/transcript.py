"""A meeting's transcript: who was there, and every final caption, on the meeting's clock."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from transcribe.caption import SENTENCE_END, Caption, join_text

MERGE_GAP_SECONDS = 1.5


@dataclass
class Attendee:
    participant_id: str
    name: str
    identity: str = ""
    joined: float = 0.0  # meeting seconds
    left: float | None = None


@dataclass(frozen=True)
class Segment:
    """One speaker's sentence (or run of words without a pause), merged from final captions."""

    participant_id: str
    name: str
    start: float
    end: float
    text: str


@dataclass
class Transcript:
    room: str
    meeting_id: str
    started_at: float  # Unix time of meeting second 0
    ended_at: float | None = None
    attendees: dict[str, Attendee] = field(default_factory=dict)
    captions: list[Caption] = field(default_factory=list)  # finals with text, in arrival order

    def add(self, caption: Caption) -> None:
        if caption.final and caption.text.strip():
            self.captions.append(caption)

    def attend(self, participant_id: str, name: str, identity: str = "", at: float = 0.0) -> None:
        known = self.attendees.get(participant_id)
        if known is None:
            self.attendees[participant_id] = Attendee(participant_id, name, identity, at)
        else:
            known.name = name or known.name
            known.identity = identity or known.identity
            known.left = None

    def leave(self, participant_id: str, at: float) -> None:
        if participant_id in self.attendees:
            self.attendees[participant_id].left = at

    def segments(self) -> list[Segment]:
        """Final captions merged per speaker into sentences, in time order."""
        out: list[Segment] = []
        open_by: dict[str, int] = {}  # participant -> index in out of their open segment
        for c in sorted(self.captions, key=lambda c: (c.start, c.end)):
            i = open_by.get(c.participant_id)
            if i is not None and i == len(out) - 1:
                prev = out[i]
                if c.start - prev.end <= MERGE_GAP_SECONDS and not SENTENCE_END.search(prev.text):
                    out[i] = Segment(prev.participant_id, c.name or prev.name, prev.start, max(prev.end, c.end),
                                     join_text(prev.text, c.text))
                    continue
            out.append(Segment(c.participant_id, c.name, c.start, c.end, c.text.strip()))
            open_by[c.participant_id] = len(out) - 1
        return out

    def name_of(self, participant_id: str) -> str:
        a = self.attendees.get(participant_id)
        return a.name if a else participant_id

    def wall(self, seconds: float) -> datetime:
        return datetime.fromtimestamp(self.started_at + seconds, tz=timezone.utc)

    def to_dict(self) -> dict[str, Any]:
        return {
            "room": self.room,
            "meeting_id": self.meeting_id,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "attendees": [asdict(a) for a in self.attendees.values()],
            "captions": [asdict(c) for c in self.captions],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Transcript":
        t = cls(room=str(data["room"]), meeting_id=str(data["meeting_id"]), started_at=float(data["started_at"]),
                ended_at=data.get("ended_at"))
        for a in data.get("attendees", []):
            t.attendees[a["participant_id"]] = Attendee(**a)
        t.captions = [Caption(**c) for c in data.get("captions", [])]
        return t
