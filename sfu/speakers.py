"""Active speaker detection from the RFC 6464 audio levels that publishers put on every audio packet.

Every interval the detector reads each audio publication's counters (voiced packets, loudness) and
resets them. A speaker becomes active when at least a third of its packets in the window were voiced,
and stays active for `hold` seconds after it falls silent, so highlights don't flicker between words.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sfu.publication import Publication

ACTIVE_FRACTION = 0.33


@dataclass(frozen=True)
class Speaker:
    participant_id: str
    level: float  # 0..1, loudness averaged over voiced packets


class SpeakerDetector:
    def __init__(self, hold: float = 1.0) -> None:
        self._hold = hold
        self._last_voiced: dict[str, float] = {}
        self._level: dict[str, float] = {}
        self.current: list[Speaker] = []

    def update(self, publications: Iterable[Publication], now: float | None = None) -> list[Speaker] | None:
        """Returns the new ordered speaker list when it changed, else None."""
        now = time.monotonic() if now is None else now
        seen: set[str] = set()
        for pub in publications:
            if pub.kind != "audio" or pub.muted:
                continue
            pid = pub.participant_id
            pub.fold_routed()  # levels a compiled receive route counted
            heard, voiced, loudness = pub.heard, pub.voiced, pub.loudness
            pub.heard = pub.voiced = pub.loudness = 0
            if heard and voiced / heard >= ACTIVE_FRACTION:
                self._last_voiced[pid] = now
                level = loudness / voiced / 127.0
                self._level[pid] = max(self._level.get(pid, 0.0) * 0.5, level)
            if now - self._last_voiced.get(pid, -1e9) <= self._hold:
                seen.add(pid)
        for pid in list(self._last_voiced):
            if pid not in seen and now - self._last_voiced[pid] > self._hold:
                del self._last_voiced[pid]
                self._level.pop(pid, None)
        ranked = sorted(seen, key=lambda p: (-self._level.get(p, 0.0), p))
        speakers = [Speaker(p, round(self._level.get(p, 0.0), 2)) for p in ranked]
        if [s.participant_id for s in speakers] == [s.participant_id for s in self.current]:
            self.current = speakers
            return None
        self.current = speakers
        return speakers

    def forget(self, participant_id: str) -> None:
        self._last_voiced.pop(participant_id, None)
        self._level.pop(participant_id, None)
