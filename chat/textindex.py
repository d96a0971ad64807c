"""Search terms for any language: words for scripts with spaces, single characters for CJK.

Chinese and Japanese have no spaces between words, so a CJK run is indexed as overlapping character
bigrams; a CJK query term matches where its characters stand next to each other. Latin and other
scripts are case-folded and stripped of diacritics.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import snowballstemmer

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
_STEMMER = snowballstemmer.stemmer("english")


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


# The SQL store's index (chat/sql_store.py) ---------------------------------------------------------
#
# A message is indexed as a set of terms: its folded words, the English stem of a word when the stem is
# not a prefix of the word ("happy" -> "happi"), and for each CJK run its character bigrams plus its
# last character. A query word of three or more characters matches every term that starts with its
# stem (or with the word, when the stem is not its prefix): "deploy" finds "deployment", "approve"
# ("approv") finds "approved", "reviewer" ("review") finds "reviewers". A CJK query run matches where
# all its bigrams occur (then `relevance` checks they stand together); one CJK character matches
# the terms that start with it. Both backends run exactly this, as range scans on one table.

MAX_TERM = 64  # characters; longer words are indexed (and searched) by their first 64
MIN_PREFIX = 3  # shorter query words match whole words only ("go" does not find "google")
_LATIN = re.compile(r"[a-z]+")


@functools.lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The English (Snowball) stem of a lower-case ASCII word; other words are their own stem."""
    if not _LATIN.fullmatch(word) or len(word) < MIN_PREFIX:
        return word
    stemmed: str = _STEMMER.stemWord(word)
    return stemmed if len(stemmed) >= MIN_PREFIX else word


def _word_terms(word: str) -> set[str]:
    word = word[:MAX_TERM]
    root = stem(word)
    return {word} if word.startswith(root) else {word, root}


def index_terms(text: str) -> set[str]:
    """The terms one message is indexed under."""
    out: set[str] = set()
    for t in terms(text):
        if t.cjk:
            out.update(t.text[i:i + 2] for i in range(len(t.text) - 1))
            out.add(t.text[-1])
        else:
            out |= _word_terms(t.text)
    return out


@dataclass(frozen=True)
class QueryTerm:
    """One query word or CJK run: the index must hold every term in `all_of`, or (for words) any term
    starting with one of `prefixes`; a term equal to `exact` ranks the message higher."""

    text: str
    cjk: bool
    exact: str
    prefixes: tuple[str, ...] = ()
    all_of: tuple[str, ...] = ()


def query_terms(query: str) -> list[QueryTerm]:
    out: list[QueryTerm] = []
    for t in terms(query):
        text = t.text[:MAX_TERM]
        if t.cjk:
            if len(text) == 1:
                out.append(QueryTerm(text, True, text, prefixes=(text,)))
            else:
                grams = tuple(dict.fromkeys(text[i:i + 2] for i in range(len(text) - 1)))
                out.append(QueryTerm(text, True, text, all_of=grams))
        elif len(text) < MIN_PREFIX:
            out.append(QueryTerm(text, False, text, all_of=(text,)))
        else:
            root = stem(text)
            out.append(QueryTerm(text, False, text, prefixes=(root,) if text.startswith(root) else (text, root)))
    return list({q.text: q for q in out}.values())


def prefix_end(prefix: str) -> str:
    """The smallest string after every string starting with `prefix` (for `term >= p AND term < end`)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def term_weight(q: QueryTerm, text: str) -> int:
    """0: `text` does not match q; 2: it holds q exactly (the word, or the CJK run); 1: an inflection or
    a longer word."""
    doc = terms(text)
    if q.cjk:
        return 2 if any(q.text in run.text for run in doc if run.cjk) else 0
    words = {d.text[:MAX_TERM] for d in doc if not d.cjk}
    if q.exact in words:
        return 2
    if not q.prefixes:
        return 0
    held = set().union(*(_word_terms(w) for w in words)) if words else set()
    return 1 if any(h.startswith(p) for h in held for p in q.prefixes) else 0


def relevance(query: list[QueryTerm], text: str) -> int:
    """The sum of the terms' weights, or 0 when any term does not match (what search ranks by)."""
    total = 0
    for q in query:
        w = term_weight(q, text)
        if w == 0:
            return 0
        total += w
    return total
