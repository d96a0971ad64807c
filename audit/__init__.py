"""Audit log: an append-only, hash-chained record of who did what (issue #11). Event table: docs/audit.md.

Recording, from any package that may import audit (chat, identity, transcribe, integrations, signaling):

    from audit import AuditEvent, Recorder, content_digest

    recorder = Recorder.on(db)              # or app[AUDIT] in the front door; Recorder.off() records nothing
    await recorder.record(AuditEvent(
        "channel.rename", "channel", channel.id,    # event name (noun.verb), object type, object id
        before={"name": old}, after={"name": new},  # plain JSON; for content: {"content_sha256": content_digest(t)}
        actor=user.login))                          # optional: default is the request's authenticated caller

The actor's address, user agent and credential (`key:<id>`, `session`, `user_token`, `meeting_token`, `cli`)
come from the request (audit.origin: the front door's middleware, `note_caller` where callers authenticate,
`acting(operator_origin())` in command-line tools). `record` returns the row's seq; it raises only for a
malformed event, and logs (never raises) a store failure.

Storage (table audit_log): `event` is canonical JSON (sorted keys, no spaces, UTF-8), `hash` =
SHA-256(prev_hash ‖ event) in hex, the first row's prev_hash 64 zeros. `convene audit verify` re-walks it;
`GET /v1/audit` reads it (NDJSON or CSV). Retention never touches it.
"""

from audit.event import AuditEvent, Origin, content_digest
from audit.origin import acting, current_origin, note_caller, operator_origin
from audit.recorder import Recorder

__all__ = ["AuditEvent", "Origin", "Recorder", "acting", "content_digest", "current_origin", "note_caller",
           "operator_origin"]
