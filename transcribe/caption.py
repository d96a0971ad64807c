"""The values captions are made of: a recognised word and a caption event for one speaker."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

# Han, kana, hangul syllables and CJK punctuation: text written without spaces between words.
CJK = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_SPACE_IN_CJK = re.compile(rf"(?<=[{CJK}])\s+(?=[{CJK}])")
# A sentence's end, Western or Chinese (full-width 。！？ and ；, which Whisper puts between clauses), with any
# closing quote or bracket after it.
SENTENCE_END = re.compile(r"[.?!。！？；][\"')\]”’」』）]*$")
# Languages whose captions are labelled beta until they are measured on real speech.
BETA_LANGUAGES = frozenset({"zh"})


@dataclass(frozen=True)
class Word:
    text: str  # as spoken, with its leading space and punctuation (" Friday."); a CJK character has no space
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
    language: str = ""  # what it was transcribed as ("en", "zh"); "" in transcripts stored before languages

    def to_event(self) -> dict[str, Any]:
        return {"type": "caption", **asdict(self), "beta": self.language in BETA_LANGUAGES}


def join_text(*parts: str) -> str:
    """Joins pieces of text with spaces, except between CJK characters ("我们 需要" is "我们需要")."""
    return _SPACE_IN_CJK.sub("", " ".join(p.strip() for p in parts if p.strip()))


def join_words(words: list[Word]) -> str:
    return _SPACE_IN_CJK.sub("", "".join(w.text for w in words).strip())


def is_cjk(text: str) -> bool:
    return any(re.match(rf"[{CJK}]", ch) for ch in text)
