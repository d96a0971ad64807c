"""`GET /v1/audit`: the audit log for holders of the read_audit permission (the handler is audit/web.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from audit.appkeys import AUDIT
from audit.log import AuditLog
from audit.web import audit_handler
from chat.web import CHAT_API
from identity.appkeys import DATABASE, PERMISSIONS
from identity.permissions import Permission


async def _authorize(request: web.Request) -> str:
    """People and API keys whose role holds read_audit (owners and admins by default); meeting tokens never.
    Rate-limited as a write: a read streams the whole log. Answers the caller's organisation: its events are
    what the caller reads (every organisation's admins read their own log; the chain is the server's one)."""
    api = request.app[CHAT_API]
    caller = await api.who(request, write=True)
    # The organisation's own table (its overrides of read_audit, PUT /v1/admin/permissions).
    await request.app[PERMISSIONS].require(caller.user, Permission.READ_AUDIT, caller.org)
    return caller.org


def setup_audit(app: web.Application) -> None:
    """After setup_chat (it authenticates callers the way chat does)."""
    app.router.add_get("/v1/audit", audit_handler(AuditLog(app[DATABASE]), _authorize))


__all__ = ["AUDIT", "openapi_part", "setup_audit"]


def openapi_part() -> dict[str, Any]:
    """GET /v1/audit's operation (merged into the front door's document where chat runs)."""
    text = {"type": "string"}
    error = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    params = [{"name": n, "in": "query", "required": False, "schema": s} for n, s in (
        ("since", text), ("until", text), ("event", text), ("actor", text), ("format", {"enum": ["ndjson", "csv"]}))]
    return {"paths": {"/v1/audit": {"get": {
        "summary": "The caller's organisation's audit log, oldest first, streamed (read_audit: owners and admins by default; meeting tokens "
                   "403 out_of_scope): NDJSON lines {seq, prev_hash, hash, event} with the event as stored "
                   "(canonical JSON), or CSV with format=csv. Filters: since/until (ISO 8601 or Unix seconds; until "
                   "exclusive), event (a name from docs/audit.md), actor (a login)",
        "tags": ["audit"], "parameters": params,
        "responses": {"200": {"description": "the matching events", "content": {
            "application/x-ndjson": {"schema": text}, "text/csv": {"schema": text}}},
            **{code: error for code in ("400", "401", "403", "429")}, "default": error}}}}}
