"""The values captions are made of: a recognised word and a caption event for one speaker."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Word:
    text: str  # as spoken, with its leading space and punctuation (" Friday.")
    start: float  # seconds on the stream's timeline
    end: float
    probability: float = 1.0

    def shifted(self, offset: float) -> "Word":
        return Word(self.text, self.start + offset, self.end + offset, self.probability)


@dataclass(frozen=True)
class Caption:
    segment_id: str
    participant_id: str
    name: str
    start: float  # seconds since the meeting started
    end: float
    text: str
    final: bool

    def to_event(self) -> dict[str, Any]:
        return {"type": "caption", **asdict(self)}


def join_words(words: list[Word]) -> str:
    return "".join(w.text for w in words).strip()
