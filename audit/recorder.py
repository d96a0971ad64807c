"""The one call other code makes: `await recorder.record(AuditEvent(...))`."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from audit.event import AuditEvent
from audit.log import AuditLog
from audit.origin import current_origin
from store.database import Database
from store.schema import DEFAULT_ORG

log = logging.getLogger(__name__)
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")  # noun.verb, e.g. channel.create


class Recorder:
    """Appends events to the audit log of one store. Who acted comes from the event's `actor`, else from the
    request's caller (audit.origin), else "system"; address, client and credential always from the request.

    `record` raises for a malformed event (a bug at the call site: a bad name, state JSON cannot hold). A store
    failure is logged at ERROR and returns None: the action it describes has already happened, so its caller
    should not fail with it."""

    def __init__(self, log_: AuditLog | None) -> None:
        self._log = log_

    @classmethod
    def on(cls, db: Database) -> Recorder:
        return cls(AuditLog(db))

    @classmethod
    def off(cls) -> Recorder:
        """Records nothing (a component built without a store, in a unit test)."""
        return cls(None)

    async def close(self) -> None:
        """Writes what is queued and stops the log's writer (the app's cleanup, before the store closes)."""
        if self._log is not None:
            await self._log.close()

    async def _user_org(self, event: AuditEvent, actor: str) -> str:
        """Every event is one organisation's (GET /v1/audit shows an organisation only its own): when neither the
        call site nor the authenticated caller says which, the acting user's (a sign-in, a job acting for someone)
        or the user acted on (the command line), else the default one (the server's own doings)."""
        assert self._log is not None
        try:
            org = await self._log.org_of(actor, *([event.object_id] if event.object_type == "user" else []))
        except Exception:  # noqa: BLE001 - the event is still recorded, as the default organisation's
            log.warning("the organisation of audit event %s could not be read", event.event, exc_info=True)
            org = None
        return org or DEFAULT_ORG

    async def record(self, event: AuditEvent) -> int | None:
        """Appends the event; returns its seq (None: not recorded)."""
        if not EVENT_NAME.match(event.event) or len(event.event) > 64:
            raise ValueError(f"audit event names look like 'channel.create', not {event.event!r}")
        if self._log is None:
            return None
        origin = current_origin()
        actor = (event.actor or origin.login or "system")[:128]
        event = replace(event, org_id=event.org_id or origin.org or await self._user_org(event, actor))
        try:
            return await self._log.append(event, origin, actor)
        except (TypeError, ValueError):
            raise
        except Exception:  # noqa: BLE001 - see the class docstring
            log.exception("audit event %s on %s %s by %s was NOT recorded", event.event, event.object_type,
                          event.object_id, actor)
            return None
