"""Search terms for any language: words for scripts with spaces, single characters for CJK.

Chinese and Japanese have no spaces between words, so a CJK run is indexed character by character
(and, for the Redis index, as overlapping bigrams); a CJK query term matches where its characters stand
next to each other. Latin and other scripts are case-folded and stripped of diacritics.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_CJK = (
    "\u3040-\u30ff"  # kana
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # hangul syllables
    "\uf900-\ufaff"  # compatibility ideographs
    "\U00020000-\U0002ebef"
)
_RUN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+")
_IS_CJK = re.compile(rf"[{_CJK}]")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class Term:
    text: str
    cjk: bool


def terms(text: str) -> list[Term]:
    """The words and CJK runs of `text`, in order, folded."""
    return [Term(m.group(0), bool(_IS_CJK.match(m.group(0)))) for m in _RUN.finditer(_fold(text))]


# Stands between two CJK runs in an FTS document so that a phrase cannot span them.
_RUN_BREAK = "qxqbreak"


def fts_document(text: str) -> str:
    """What the SQLite FTS5 index stores: words, and CJK runs spelt out one character at a time."""
    out: list[str] = []
    previous_cjk = False
    for t in terms(text):
        if t.cjk and previous_cjk:
            out.append(_RUN_BREAK)
        out.append(" ".join(t.text) if t.cjk else t.text)
        previous_cjk = t.cjk
    return " ".join(out)


def fts_query(query: str) -> str | None:
    """An FTS5 MATCH expression: every term must occur; a CJK run is a phrase of its characters."""
    parts = ['"' + (" ".join(t.text) if t.cjk else t.text) + '"' for t in terms(query)]
    return " AND ".join(parts) if parts else None


def index_keys(text: str) -> set[str]:
    """What the Redis index stores per message: words, CJK characters and CJK bigrams."""
    keys: set[str] = set()
    for t in terms(text):
        if t.cjk:
            keys.update(t.text)
            keys.update(t.text[i:i + 2] for i in range(len(t.text) - 1))
        else:
            keys.add(t.text)
    return keys


def query_keys(query: str) -> list[str]:
    keys: list[str] = []
    for t in terms(query):
        if t.cjk and len(t.text) > 1:
            keys.extend(t.text[i:i + 2] for i in range(len(t.text) - 1))
        else:
            keys.append(t.text)
    return list(dict.fromkeys(keys))


def matches(query: str, text: str) -> bool:
    """The exact rule both indexes implement: every query word is a word of the text, and every CJK
    run of the query stands, as written, inside a CJK run of the text."""
    doc = terms(text)
    words = {t.text for t in doc if not t.cjk}
    cjk = [t.text for t in doc if t.cjk]
    for t in terms(query):
        if t.cjk:
            if not any(t.text in run for run in cjk):
                return False
        elif t.text not in words:
            return False
    return True
