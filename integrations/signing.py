"""Request signatures between Convene and the services it talks to (outgoing webhooks, slash commands, buttons).

What Convene sends carries two headers, Slack's scheme under our name:

    X-Convene-Request-Timestamp: 1764612345            (Unix seconds)
    X-Convene-Signature: v0=<hex HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)>

A receiver recomputes the HMAC over the raw body bytes with its secret, compares in constant time, and refuses a
timestamp more than five minutes from its clock (a captured request replayed later is refused). `verify` does
exactly that; our tests use it as a receiver would.

What GitHub sends us carries `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>` (`verify_github`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from common.errors import Unauthorized

VERSION = "v0"
SIGNATURE_HEADER = "X-Convene-Signature"
TIMESTAMP_HEADER = "X-Convene-Request-Timestamp"
MAX_AGE_SECONDS = 300.0


class InvalidSignature(Unauthorized):
    """A request whose signature is missing, malformed or wrong (or whose shared token does not match)."""

    code = "invalid_signature"


class StaleRequest(Unauthorized):
    """A signed request whose timestamp is too far from the receiver's clock: possibly a replay."""

    code = "stale_request"


def _mac(secret: str | bytes, message: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signature(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """`v0=<hex>` for this timestamp and body."""
    return f"{VERSION}={_mac(secret, f'{VERSION}:{timestamp}:'.encode() + body)}"


def sign(secret: str | bytes, body: bytes, now: float | None = None) -> dict[str, str]:
    """The two headers a request with this body carries."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def _same(presented: str | None, expected: str) -> bool:
    """Constant-time comparison of a header's value. aiohttp hands odd header bytes over as lone surrogates, which
    `.encode()` refuses: anything not ASCII is simply no match (401, never 500)."""
    return presented is not None and presented.isascii() and hmac.compare_digest(presented.encode(), expected.encode())


def verify(secret: str | bytes, timestamp: str | None, body: bytes, presented: str | None,
           now: float | None = None, max_age: float = MAX_AGE_SECONDS) -> None:
    """Raises InvalidSignature or StaleRequest unless `presented` signs `body` at `timestamp` with `secret` and the
    timestamp is within `max_age` seconds of `now`. The age is checked first: a replay is refused as stale even
    when its signature is good."""
    if not timestamp or not timestamp.isascii() or not timestamp.isdigit():  # "²".isdigit(), yet int() refuses it
        raise InvalidSignature(f"missing or malformed {TIMESTAMP_HEADER}")
    if abs((time.time() if now is None else now) - int(timestamp)) > max_age:
        raise StaleRequest(f"{TIMESTAMP_HEADER} is more than {int(max_age)} s away: refused as a possible replay")
    if not _same(presented, signature(secret, timestamp, body)):
        raise InvalidSignature("the signature does not match")


def verify_headers(secret: str | bytes, headers: Mapping[str, str], body: bytes, now: float | None = None,
                   max_age: float = MAX_AGE_SECONDS) -> None:
    """`verify` with the two headers read from a request's headers."""
    verify(secret, headers.get(TIMESTAMP_HEADER), body, headers.get(SIGNATURE_HEADER), now, max_age)


def verify_github(secret: str | bytes, body: bytes, presented: str | None) -> None:
    """GitHub's `X-Hub-Signature-256: sha256=<hex>` over the raw body."""
    expected = f"sha256={_mac(secret, body)}"
    if not _same(presented, expected):
        raise InvalidSignature("X-Hub-Signature-256 does not match")


def verify_token(expected: str, presented: str | None) -> None:
    """A shared token sent as is (GitLab's X-Gitlab-Token), compared in constant time."""
    if not _same(presented, expected):
        raise InvalidSignature("X-Gitlab-Token does not match")

