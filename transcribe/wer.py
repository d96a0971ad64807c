"""Word error rate: (substitutions + deletions + insertions) / reference words, on normalised words; character
error rate the same on characters (for Chinese, which has no spaces to find words by)."""

from __future__ import annotations

import re

_NUMBERS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
            "7": "seven", "8": "eight", "9": "nine", "10": "ten"}


def words_of(text: str) -> list[str]:
    """Lower-case words without punctuation; hyphens split words; small digits spelled out."""
    cleaned = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " "))
    return [_NUMBERS.get(w, w) for w in (w.strip("'") for w in cleaned.split()) if w]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = words_of(reference), words_of(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def characters_of(text: str) -> list[str]:
    """Letters, digits and CJK characters, lower-cased; punctuation (ASCII or full-width) and spaces dropped."""
    return [ch for ch in text.lower() if ch.isalnum()]


def character_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = characters_of(reference), characters_of(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)
