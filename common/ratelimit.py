"""Per-caller token buckets: `rate` writes per second, bursts up to `burst`."""

from __future__ import annotations

import time
from dataclasses import dataclass

from common.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float | None = None, cost: float = 1.0) -> None:
        """One request of `key`, worth `cost` tokens (a request that fans out, e.g. one chat notice per recipient,
        costs one per recipient). A cost above the burst needs a full bucket and leaves it in debt, paid back at
        `rate` before the next request passes: the long-run rate holds for any cost."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.stamp) * self._rate)
        bucket.stamp = now
        need = min(cost, self._burst)
        if bucket.tokens < need:
            raise RateLimited("too many requests from this caller", retry_after=(need - bucket.tokens) / self._rate)
        bucket.tokens -= cost
