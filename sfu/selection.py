"""Who receives what in a big room.

Video (last-N, after Jitsi): each subscriber gets at most N videos: the ones it pinned first, then
screen shares, then the most recent speakers, then the earliest joiners; the rest are paused at the
server (and resumed with a keyframe request).

Audio (loudest few): in a room with more audio publishers than `max_open`, only `max_open` of them are
forwarded at a time. A publisher's gate opens on its first voiced packet when a place is free, and it
keeps its place while it keeps talking (pauses shorter than `hold` included), so nobody is cut mid-word;
a place is given to a new voice only when one of the open speakers has been quiet for `hold` seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field


@dataclass
class VideoPreferences:
    """What one subscriber asked for (`set_subscriptions`)."""

    max_video: int = 25
    pinned: list[str] = field(default_factory=list)  # track ids, first wins
    explicit: list[str] | None = None  # exactly these, when the client chooses itself
    layers: dict[str, str] = field(default_factory=dict)  # track id -> low|mid|high
    default_layer: str = "high"  # for every video not in `layers`

    def layer_for(self, track_id: str) -> str:
        return self.layers.get(track_id, self.default_layer)

    def set_layers(self, layers: dict[str, str] | None, default_layer: str | None) -> frozenset[str] | None:
        """Takes new layer choices (None: unchanged); returns the track ids whose layer changed, or None when the
        default did (every video's may have). A client that lists every tile again when one changes costs a walk
        of what changed, not of every subscription."""
        old_layers, old_default = self.layers, self.default_layer
        if layers is not None:
            self.layers = dict(layers)
        if default_layer is not None:
            self.default_layer = default_layer
        if self.default_layer != old_default:
            return None
        if self.layers is old_layers:
            return frozenset()
        default = self.default_layer
        return frozenset(t for t in old_layers.keys() | self.layers.keys()
                         if old_layers.get(t, default) != self.layers.get(t, default))


@dataclass(frozen=True)
class VideoCandidate:
    track_id: str
    participant_id: str
    source: str
    joined_order: int


def _rank(pinned: dict[str, int], recency: dict[str, int]) -> Callable[[VideoCandidate], tuple[int, int, int, int]]:
    def rank(c: VideoCandidate) -> tuple[int, int, int, int]:
        return (
            pinned.get(c.track_id, len(pinned)),
            0 if c.source == "screen" else 1,
            recency.get(c.participant_id, len(recency)),
            c.joined_order,
        )

    return rank


def choose_videos(candidates: Sequence[VideoCandidate], prefs: VideoPreferences,
                  speaker_history: Sequence[str]) -> set[str]:
    """Track ids of the videos this subscriber should receive now."""
    available = {c.track_id for c in candidates}
    if prefs.explicit is not None:
        return {t for t in prefs.explicit if t in available}
    recency = {pid: i for i, pid in enumerate(speaker_history)}
    pinned = {t: i for i, t in enumerate(prefs.pinned)}
    ordered = sorted(candidates, key=_rank(pinned, recency))
    return {c.track_id for c in ordered[: max(0, prefs.max_video)]}


class RoomVideos:
    """A room's videos at one reselect, ranked once for all its subscribers. Without pins the ranking is the same
    for everyone (screens, recent speakers, early joiners): a subscriber's last-N is the first N of it that are
    not its own, found without a sort of its own. In a hundred-person meeting each join reselects everyone, so
    this is a hundred sorts of a hundred videos fewer per join."""

    def __init__(self, candidates: Sequence[VideoCandidate], speaker_history: Sequence[str],
                 previous: RoomVideos | None = None) -> None:
        self.candidates = candidates
        self.speaker_history = speaker_history
        self.ids = frozenset(c.track_id for c in candidates)
        recency = {pid: i for i, pid in enumerate(speaker_history)}
        self._order = sorted(candidates, key=_rank({}, recency))
        self.generation: int = 0 if previous is None else previous.generation + 1
        # The one video this ranking adds after every video of `previous` (whose order it keeps): a camera that
        # joins a meeting ranks last, so a subscriber whose last-N `previous` filled keeps it (`Participant`).
        # Not a reference to `previous`, which would keep every ranking of the room alive.
        self.appended: VideoCandidate | None = None
        # When this ranking has the videos of `previous`, in its order after the first `reordered` places: a
        # speaker who was already among the recent ones moves to the front (each speaker change).
        self.reordered: int | None = None
        if previous is not None and len(self._order) == len(previous._order) + 1 and all(
                a.track_id == b.track_id for a, b in zip(self._order, previous._order)):
            self.appended = self._order[-1]
        elif previous is not None and self.ids == previous.ids:
            unchanged_from = len(self._order)
            while unchanged_from and self._order[unchanged_from - 1].track_id == previous._order[
                    unchanged_from - 1].track_id:
                unchanged_from -= 1
            self.reordered = unchanged_from

    def chosen_unchanged(self, prefs: VideoPreferences, chosen: int, generation: int | None) -> bool:
        """Is a last-N of `chosen` videos, chosen from the ranking of `generation`, still what `choose` gives? Only
        for a subscriber without pins or a choice of its own, when this ranking follows that one and either
        - only appended a video, and the last-N is full; or
        - only reordered places a last-N takes whole (they hold at most N of its videos, so it had them all and
          then the same ones after them)."""
        if generation != self.generation - 1 or prefs.explicit is not None or prefs.pinned:
            return False
        if self.appended is not None:
            return chosen >= prefs.max_video
        return self.reordered is not None and self.reordered <= prefs.max_video

    def choose(self, prefs: VideoPreferences, participant_id: str, subscribed: Container[str]) -> set[str]:
        """What `choose_videos` gives for the candidates that are not `participant_id`'s and are in `subscribed`."""
        if prefs.explicit is not None or prefs.pinned:
            mine = [c for c in self.candidates if c.participant_id != participant_id and c.track_id in subscribed]
            return choose_videos(mine, prefs, self.speaker_history)
        chosen: set[str] = set()
        limit = prefs.max_video
        for candidate in self._order:
            if len(chosen) >= limit:
                break
            if candidate.participant_id != participant_id and candidate.track_id in subscribed:
                chosen.add(candidate.track_id)
        return chosen


# Where a publication stands in its room's gate, as its compiled receive route needs to know (Publication.gate):
GATE_OFF, GATE_IN, GATE_OUT = 0, 1, 2  # not gated; among the loudest; held out (its voices are for `admit`)


class AudioGate:
    """`on_change(publication_id)` runs when a publication gains or loses its place (the room moves
    subscribers' audio slots then); it runs inside `admit`, on the packet path, only on a change.

    A publication let in may stop calling `admit`: its packets can be forwarded without Python (a compiled
    receive route). It then hands `admit` a clock, asked for its last voice whenever a place is contested."""

    def __init__(self, max_open: int = 3, hold: float = 0.8,
                 on_change: Callable[[str], None] | None = None) -> None:
        self.max_open = max_open
        self.hold = hold
        self.on_change = on_change
        self._open: dict[str, float] = {}  # publication id -> last voiced time
        self._clocks: dict[str, Callable[[], float]] = {}  # publication id -> its last voice where admit can't see
        self.enabled = False  # only when the room has more audio publishers than max_open

    def admit(self, publication_id: str, voiced: bool, now: float,
              voice_clock: Callable[[], float] | None = None) -> bool:
        """May this packet be forwarded? `voice_clock`: when the publication last voiced outside `admit`."""
        if not self.enabled:
            return True
        last = self._open.get(publication_id)
        if last is not None:
            if voiced:
                self._open[publication_id] = now
            return True
        if not voiced:
            return False
        if len(self._open) >= self.max_open:
            self._read_clocks()
            quietest = min(self._open, key=lambda p: self._open[p])
            if now - self._open[quietest] <= self.hold:
                return False
            self._close(quietest)
            self._changed(quietest)
        self._open[publication_id] = now
        if voice_clock is not None:
            self._clocks[publication_id] = voice_clock
        self._changed(publication_id)
        return True

    def _read_clocks(self) -> None:
        for publication_id, clock in self._clocks.items():
            self._open[publication_id] = max(self._open[publication_id], clock())

    def _close(self, publication_id: str) -> bool:
        self._clocks.pop(publication_id, None)
        return self._open.pop(publication_id, None) is not None

    def _changed(self, publication_id: str) -> None:
        if self.on_change is not None:
            self.on_change(publication_id)

    def is_open(self, publication_id: str) -> bool:
        return not self.enabled or publication_id in self._open

    def set_enabled(self, enabled: bool) -> None:
        """Gating starts with nobody open (the next voices take the places) and ends with everyone open."""
        if enabled != self.enabled:
            self.enabled = enabled
            self._open.clear()
            self._clocks.clear()

    def forget(self, publication_id: str) -> None:
        if self._close(publication_id):
            self._changed(publication_id)
