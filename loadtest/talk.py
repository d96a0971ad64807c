"""Who talks when: `speakers` publishers hold the floor at a time, in turns, speaking in phrases.

Every worker computes the same schedule from the seed and the clock, so no coordination is needed.
Pauses inside a turn stay shorter than the server's speaker hold (0.8 s), as between a person's words.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

TURN_SECONDS = 6.0


@dataclass(frozen=True)
class Phrase:
    start: float  # seconds into the turn
    end: float


class TalkSchedule:
    def __init__(self, speakers: int, seed: int, publishers_at: Callable[[float], int],
                 turn_seconds: float = TURN_SECONDS) -> None:
        self.speakers = speakers
        self.seed = seed
        self.publishers_at = publishers_at  # how many publishers are in the room t seconds in
        self.turn_seconds = turn_seconds
        self._turn = -1
        self._talkers: set[int] = set()
        self._phrases: dict[int, list[Phrase]] = {}

    def talkers(self, t: float) -> set[int]:
        """Indices of the publishers holding the floor `t` seconds into the run."""
        self._enter_turn(int(t // self.turn_seconds), t)
        return self._talkers

    def talking(self, index: int, t: float) -> bool:
        if t < 0 or index not in self.talkers(t):
            return False
        into = t - self._turn * self.turn_seconds
        phrases = self._phrases.get(index)
        if phrases is None:
            phrases = self._phrases[index] = self._phrases_of(index)
        return any(p.start <= into < p.end for p in phrases)

    def _enter_turn(self, turn: int, t: float) -> None:
        if turn == self._turn:
            return
        self._turn = turn
        self._phrases = {}
        population = self.publishers_at(turn * self.turn_seconds)
        rng = random.Random(self.seed * 1_000_003 + turn)
        self._talkers = set(rng.sample(range(population), min(self.speakers, population))) if population else set()

    def _phrases_of(self, index: int) -> list[Phrase]:
        rng = random.Random((self.seed * 7919 + self._turn) * 104_729 + index)
        phrases = []
        at = rng.uniform(0.0, 0.3)
        for _ in range(64):  # bounded: phrases of >= 0.6 s fill a turn long before
            if at >= self.turn_seconds:
                break
            end = min(self.turn_seconds, at + rng.uniform(0.6, 2.5))
            phrases.append(Phrase(at, end))
            at = end + rng.uniform(0.15, 0.6)
        return phrases
