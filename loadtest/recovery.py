"""How a bot gets back into its meeting, as the web client does (web/reconnector.js): retries back off from
0.5 s doubling to 4 s with ±25 % jitter, give up after three minutes, and never retry what no retry fixes."""

from __future__ import annotations

import random
from typing import Any

RETRY_FIRST = 0.5
RETRY_MAX = 4.0
GIVE_UP = 180.0

# Socket close codes (docs/signaling.md): removed, replaced by another socket of the same identity, a token
# refused, a meeting over or out of reach.
FINAL_CLOSE_CODES = frozenset({4000, 4001, 4401, 4403})
# Join errors that mean the same.
FINAL_ERRORS = frozenset({"meeting_ended", "removed", "invalid_token", "token_expired", "wrong_room",
                          "out_of_scope"})
# Messages after which the socket closes for good.
FINAL_MESSAGES = frozenset({"room_ended", "removed"})


def retry_delay(tries: int, rng: random.Random) -> float:
    """Seconds before retry number `tries` (0 first): 0.5, 1, 2, 4, 4… ±25 %."""
    return float(min(RETRY_MAX, RETRY_FIRST * 2.0 ** tries) * (0.75 + rng.random() * 0.5))


def final_close(close_code: int | None, messages: list[dict[str, Any]]) -> bool:
    """Whether a closed socket means the bot is out for good rather than disconnected."""
    if close_code in FINAL_CLOSE_CODES:
        return True
    return any(m.get("type") in FINAL_MESSAGES for m in messages[-20:])
