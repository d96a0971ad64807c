"""Sign-in sessions: the session cookie, its CSRF token, and the lockout after failed attempts.

A session is a user token (identity/tokens.py, USER_SCOPE) carried in an HttpOnly cookie. Its CSRF token is an
HMAC of the session under the server secret: nothing to store, and a page on another origin (which the browser
sends the cookie for, on a form post) cannot know it. Reads need only the cookie; writes need the header too.

The lockout counts failures per login and per client address in a sliding window, in this process (a restart
forgets them; several processes each count their own).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import deque

from aiohttp.web import StreamResponse

from common.errors import TooManyAttempts

SESSION_COOKIE = "convene_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600
MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


def set_session_cookie(response: StreamResponse, token: str, *, secure: bool) -> None:
    """The session cookie, as every way of signing in sets it: HttpOnly (no script reads it), SameSite=Lax
    (another site's form post does not carry it), Secure when served over TLS."""
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_SECONDS, path="/", httponly=True,
                        samesite="Lax", secure=secure)


def csrf_token(secret: bytes, session: str) -> str:
    return hmac.new(secret, b"csrf:" + session.encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, session: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_token(secret, session), presented)


class Lockout:
    """Failures per key ("login:alice", "addr:10.0.0.1") within the window; `check` refuses at MAX_FAILURES."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def check(self, *keys: str) -> None:
        now = time.monotonic()
        waits = [times[0] + self.window - now for key in keys
                 if len(times := self._recent(key, now)) >= self.max_failures]
        if waits:
            raise TooManyAttempts("too many failed sign-ins; try again later", retry_after=max(waits))

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        if len(self._failures) > 100_000:  # a flood of addresses: forget rather than grow without bound
            self._failures.clear()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, login_key: str) -> None:
        self._failures.pop(login_key, None)
