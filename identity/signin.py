"""Sign-in sessions: the session cookie and its CSRF token.

A session is a user token (identity/tokens.py, USER_SCOPE) carried in an HttpOnly cookie. Its CSRF token is an
HMAC of the session under the server secret: nothing to store, and a page on another origin (which the browser
sends the cookie for, on a form post) cannot know it. Reads need only the cookie; writes need the header too.

The lockout after failed attempts is identity/attempts.py (in the store, shared by every process).
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp.web import StreamResponse

SESSION_COOKIE = "convene_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600


def set_session_cookie(response: StreamResponse, token: str, *, secure: bool) -> None:
    """The session cookie, as every way of signing in sets it: HttpOnly (no script reads it), SameSite=Lax
    (another site's form post does not carry it), Secure when served over TLS."""
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_SECONDS, path="/", httponly=True,
                        samesite="Lax", secure=secure)


def csrf_token(secret: bytes, session: str) -> str:
    return hmac.new(secret, b"csrf:" + session.encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, session: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_token(secret, session), presented)
