"""One audit event as a value, and its canonical JSON text (what the chain hashes).

Canonical JSON: keys sorted at every level, no spaces (`,` and `:`), UTF-8 (no \\u escapes for non-ASCII),
so the same event always gives the same bytes, and a reader can re-serialise a parsed event and get the
stored text back.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

# JSON values of before/after: plain data only (the recorder refuses what json cannot encode).
State = dict[str, Any] | None


@dataclass(frozen=True)
class Origin:
    """Where an action came from: the request's client address and user agent, and which credential
    authenticated it (`key:<key id>`, `session`, `user_token`, `meeting_token`, `cli`; "" unknown)."""

    address: str = ""
    client: str = ""
    credential: str = ""
    login: str = ""  # the authenticated caller, when the code that records does not name one
    org: str = ""  # the caller's organisation ("" unknown: the event's own, else `default`)


@dataclass(frozen=True)
class AuditEvent:
    """What happened. `event` is a dotted name from the table in docs/audit.md (`message.recall`, …);
    `actor` the user login (None: the caller authenticated for this request, else "system"); `object_type`
    and `object_id` what it happened to; `before` / `after` its state (for messages a SHA-256 of the content,
    never the content: see `content_digest`)."""

    event: str
    object_type: str
    object_id: str
    before: State = None
    after: State = None
    actor: str | None = None
    at: float = field(default_factory=time.time)
    org_id: str = ""  # whose log it belongs to; "" the acting caller's organisation (audit.origin), else `default`


def content_digest(text: str) -> str:
    """The SHA-256 (hex) an audit event keeps instead of a message's content."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def iso_time(at: float) -> str:
    """UTC, millisecond precision, `Z`: what an event's `time` says."""
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def event_document(seq: int, event: AuditEvent, origin: Origin, actor: str) -> dict[str, Any]:
    """The stored event: everything a reader needs, seq included (so a row moved to another seq shows)."""
    return {
        "seq": seq,
        "org_id": event.org_id or "default",
        "time": iso_time(event.at),
        "event": event.event,
        "actor": {"login": actor, "credential": origin.credential, "address": origin.address,
                  "client": origin.client},
        "object": {"type": event.object_type, "id": event.object_id},
        "before": event.before,
        "after": event.after,
    }
