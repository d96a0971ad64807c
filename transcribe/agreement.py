"""LocalAgreement-2: a word is final once two consecutive hypotheses over a growing buffer agree on it."""

from __future__ import annotations

import re

from transcribe.caption import Word

_NON_WORD = re.compile(r"[^\w']+")


def normalized(text: str) -> str:
    return _NON_WORD.sub("", text.lower())


def without_repetition(words: list[Word], run: int = 4) -> list[Word]:
    """Cuts a hypothesis where it starts repeating itself: Whisper sometimes loops back over what it just said
    (into the silence padded after the buffer), and those words, timed after the committed end, would be
    committed twice. A verbatim run of `run` words said twice in one buffer is far likelier a loop than speech.
    Chinese "words" are single characters, so there the run is twice as long."""
    keys = [normalized(w.text) for w in words]
    if keys and sum(len(k) == 1 for k in keys) * 2 > len(keys):
        run *= 2
    seen: dict[tuple[str, ...], int] = {}
    for i in range(len(keys) - run + 1):
        gram = tuple(keys[i:i + run])
        first = seen.setdefault(gram, i)
        if first + run <= i and all(gram):
            return words[:i]
    return words


class LocalAgreement:
    """Holds the uncommitted tail of the previous hypothesis; all times are on the stream's timeline."""

    def __init__(self) -> None:
        self._previous: list[Word] = []
        self._committed_tail: list[Word] = []  # the last few committed words, to drop repeats
        self.committed_end = 0.0  # end time of the last committed word

    @property
    def pending(self) -> list[Word]:
        """Words heard but not yet agreed on: the interim caption."""
        return list(self._previous)

    def _fresh(self, hypothesis: list[Word]) -> list[Word]:
        # Word times jitter between hypotheses: keep words that start near or end after the committed end,
        # then drop the repeated committed words at the head.
        cut = self.committed_end
        new = [w for w in hypothesis if w.start >= cut - 0.2 or w.end > cut + 0.05]
        # The model often repeats the last committed words at the head of a new hypothesis.
        for n in range(min(5, len(self._committed_tail), len(new)), 0, -1):
            tail = [normalized(w.text) for w in self._committed_tail[-n:]]
            head = [normalized(w.text) for w in new[:n]]
            if tail == head:
                return new[n:]
        return new

    def _commit(self, words: list[Word], following: Word | None = None) -> list[Word]:
        if words:
            end = words[-1].end
            if following is not None:  # a last word's end is often stretched over the next one
                end = min(end, max(words[-1].start, following.start))
            self.committed_end = max(self.committed_end, end)
            self._committed_tail = (self._committed_tail + words)[-5:]
        return words

    def insert(self, hypothesis: list[Word]) -> list[Word]:
        """Takes a new hypothesis for the whole buffer; returns the words that became final."""
        new = self._fresh(hypothesis)
        agreed: list[Word] = []
        for old, cur in zip(self._previous, new):
            if normalized(old.text) != normalized(cur.text) or not normalized(cur.text):
                break
            agreed.append(cur)
        self._previous = new[len(agreed):]
        return self._commit(agreed, self._previous[0] if self._previous else None)

    def complete(self, hypothesis: list[Word] | None = None) -> list[Word]:
        """End of an utterance: everything in the last hypothesis becomes final."""
        words = self._fresh(hypothesis) if hypothesis is not None else self._previous
        self._previous = []
        return self._commit(words)

    def forget_pending(self) -> None:
        self._previous = []
