"""What a subscribing bot counts for one received track, without decoding: packets, sequence gaps
(loss after retransmission), RFC 3550 jitter, bytes, end-to-end latency from the send-time tail, and
time to first frame."""

from __future__ import annotations

from loadtest.histogram import Histogram, bucket_of
from loadtest.stamp import MARKER, TAIL_SIZE, unpack_sent_at

MAX_TRACKED_GAP = 2000  # a jump larger than this is counted as loss without remembering each number


class TrackStats:
    __slots__ = (
        "_base",
        "_highest",
        "_missing",
        "_transit",
        "bytes",
        "clock_rate",
        "duplicates",
        "first_at",
        "first_frame_at",
        "frozen",
        "jitter",
        "kind",
        "last_at",
        "latency",
        "offered_at",
        "packets",
        "participant_id",
        "paused",
        "recovered",
        "run_latency",
        "track_id",
        "unique",
        "wanted_at",
    )

    def __init__(self, track_id: str, participant_id: str, kind: str, offered_at: float,
                 run_latency: Histogram) -> None:
        self.track_id = track_id
        self.participant_id = participant_id
        self.kind = kind
        self.clock_rate = 90000 if kind == "video" else 48000
        self.offered_at = offered_at  # when the server's offer named this track
        self.latency = Histogram()
        self.run_latency = run_latency  # the worker's interval histogram, fed as well
        self.packets = 0
        self.bytes = 0
        self.unique = 0
        self.duplicates = 0
        self.recovered = 0  # gaps filled later (retransmissions, reordering)
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.first_frame_at: float | None = None
        self.wanted_at = offered_at  # offered, or resumed after a last-N pause
        self.paused = False
        self._base: int | None = None  # extended sequence number of the first packet
        self._highest = 0
        self._missing: set[int] = set()
        self._transit: float | None = None
        self.jitter = 0.0  # seconds
        self.frozen = False

    def add(self, seq: int, timestamp: int, payload: bytes, marker: int, arrival: float) -> None:
        """One received packet, whole (tests; a bot counts through `add_counted`, from a parsed packet or a record)."""
        self.add_counted(seq, timestamp, len(payload), payload[-TAIL_SIZE:], marker, arrival)

    def add_counted(self, seq: int, timestamp: int, size: int, tail: bytes, marker: int, arrival: float) -> None:
        """One received packet, by what is counted of it: `tail` holds the payload's last TAIL_SIZE octets (the
        compiled route's record, sfu.aiortc_seams.RECORD). Called for every packet a bot receives (tens of
        thousands a second per generator core), so the in-order case takes the fewest steps: locals, one bucket."""
        if self.frozen:
            return
        self.packets += 1
        self.bytes += size
        highest = self._highest
        if self._base is None:
            self._base = self._highest = seq
            self.first_at = arrival
        else:
            # Extend the 16-bit number around the highest seen: 1..32767 ahead is new, the rest is behind.
            delta = (seq - highest) & 0xFFFF
            if 0 < delta < 32768:
                if delta > 1:
                    self._note_gap(highest, highest + delta)
                self._highest = highest + delta
            elif delta and (ext := highest - (65536 - delta)) in self._missing:
                self._missing.discard(ext)
                self.recovered += 1
                self.unique += 1
                self.last_at = arrival
                return  # a late packet: not a latency sample of the path
            else:
                self.duplicates += 1
                return
        self.unique += 1
        self.last_at = arrival
        transit = arrival - timestamp / self.clock_rate
        previous = self._transit
        if previous is not None:
            d = abs(transit - previous)
            if d < 10:  # timestamps jump across DTX and resumes; skip those
                self.jitter += (d - self.jitter) / 16
        self._transit = transit
        if size >= TAIL_SIZE and tail.endswith(MARKER):
            ms = (arrival - unpack_sent_at(tail)[0]) * 1000
            key = int(ms) if 0 <= ms < 1000 else bucket_of(ms)  # bucket_of, inline for the common case
            self.latency.add_key(key)
            self.run_latency.add_key(key)
        if self.first_frame_at is None and (marker or self.kind == "audio"):
            self.first_frame_at = arrival

    def _note_gap(self, highest: int, ext: int) -> None:
        """Remembers the numbers between the highest seen and `ext` as missing (a jump past
        MAX_TRACKED_GAP counts as loss without remembering each number)."""
        if ext - highest <= MAX_TRACKED_GAP:
            self._missing.update(range(highest + 1, ext))
        if len(self._missing) > 4 * MAX_TRACKED_GAP:
            floor = ext - MAX_TRACKED_GAP
            self._missing = {s for s in self._missing if s > floor}

    def set_paused(self, paused: bool, now: float) -> None:
        if self.paused and not paused and self.first_frame_at is None:
            self.wanted_at = now
        self.paused = paused

    @property
    def expected(self) -> int:
        return 0 if self._base is None else self._highest - self._base + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.unique)

    @property
    def time_to_first_frame(self) -> float | None:
        return None if self.first_frame_at is None else max(0.0, self.first_frame_at - self.wanted_at)
