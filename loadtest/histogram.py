"""A sparse latency histogram: 1 ms buckets below a second, 10 ms above. Cheap to merge and pickle."""

from __future__ import annotations

from dataclasses import dataclass, field


def bucket_of(ms: float) -> int:
    if ms < 0:
        return 0
    if ms < 1000:
        return int(ms)
    return min(int(ms // 10) * 10, 600_000)


def _middle(key: int) -> float:
    return key + (0.5 if key < 1000 else 5.0)


@dataclass
class Histogram:
    counts: dict[int, int] = field(default_factory=dict)
    total: int = 0

    def add(self, ms: float) -> None:
        self.add_key(bucket_of(ms))

    def add_key(self, key: int) -> None:
        """Counts one sample whose bucket the caller computed (a bot adds each to two histograms)."""
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        self.total += 1

    def merge(self, other: Histogram) -> None:
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.total += other.total

    def take(self) -> Histogram:
        """Returns the counts so far and starts afresh (for per-interval reports)."""
        taken = Histogram(self.counts, self.total)
        self.counts, self.total = {}, 0
        return taken

    def percentile(self, p: float) -> float | None:
        """The middle of the bucket holding the p-th percentile (0-100), or None when empty."""
        if self.total == 0:
            return None
        rank = max(1, round(p / 100 * self.total))
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return _middle(key)
        return _middle(max(self.counts))


def merged(histograms: list[Histogram]) -> Histogram:
    out = Histogram()
    for h in histograms:
        out.merge(h)
    return out


def percentile_of(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of a small list (join times, time to first frame)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
