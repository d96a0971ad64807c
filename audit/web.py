"""`GET /v1/audit?since=&until=&event=&actor=&format=`: the log, streamed as NDJSON (default) or CSV.

NDJSON: one row per line, `{"seq", "prev_hash", "hash", "event": {...}}`, the event exactly as stored (canonical
JSON), so a reader can re-serialise it (sorted keys, no spaces, UTF-8) and check each hash itself. CSV: one row
per event with the fields flattened; `before` and `after` stay JSON; a cell that a spreadsheet would run as a
formula (=, +, -, @ first) is prefixed with a quote. Who may read is decided by the front door (`authorize`), which
answers the caller's organisation: a reader sees that organisation's events only.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from audit.chain import StoredRow
from audit.log import AuditLog, Query
from common.errors import InvalidField
from common.times import parse_time
from common.wire import query_format

PARAMS = {"since", "until", "event", "actor", "format"}
CSV_COLUMNS = ("seq", "time", "event", "actor", "credential", "address", "client", "object_type", "object_id",
               "before", "after", "org_id", "prev_hash", "hash")
Authorize = Callable[[web.Request], Awaitable[str]]  # the organisation whose events the caller may read


def parse_query(request: web.Request, org: str | None = None) -> tuple[Query, str]:
    fmt = query_format(request, PARAMS, ("ndjson", "csv"))
    text = {name: request.query.get(name) or None for name in ("event", "actor")}
    for name, value in text.items():
        if value is not None and len(value) > 128:
            raise InvalidField(f"{name} is at most 128 characters", field=name)
    return Query(since=parse_time(request.query.get("since") or None, "since"),
                 until=parse_time(request.query.get("until") or None, "until"), event=text["event"],
                 actor=text["actor"], org=org), fmt


def ndjson_line(row: StoredRow) -> str:
    return f'{{"seq":{row.seq},"prev_hash":"{row.prev_hash}","hash":"{row.hash}","event":{row.event}}}\n'


# A cell a spreadsheet would run as a formula: these first characters (OWASP's list; a tab or carriage return
# before one is skipped by some spreadsheets, so those lead a formula too).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return "'" + value if value[:1] in FORMULA_STARTS else value


def csv_rows(rows: list[StoredRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        doc = json.loads(row.event)
        actor, obj = doc.get("actor") or {}, doc.get("object") or {}
        values = (row.seq, doc.get("time", ""), row.event_type, row.actor, actor.get("credential", ""),
                  actor.get("address", ""), actor.get("client", ""), obj.get("type", ""), obj.get("id", ""),
                  json.dumps(doc.get("before"), ensure_ascii=False, sort_keys=True),
                  json.dumps(doc.get("after"), ensure_ascii=False, sort_keys=True), doc.get("org_id", ""),
                  row.prev_hash, row.hash)
        writer.writerow([v if isinstance(v, int) else _cell(str(v)) for v in values])
    return out.getvalue()


def audit_handler(log: AuditLog, authorize: Authorize) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def read_audit(request: web.Request) -> web.StreamResponse:
        org = await authorize(request)
        query, fmt = parse_query(request, org)  # errors before the stream starts: they still get their status
        response = web.StreamResponse(headers={"Cache-Control": "no-store"})
        response.content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
        response.charset = "utf-8"
        if fmt == "csv":
            response.headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
        await response.prepare(request)
        if fmt == "csv":
            await response.write(",".join(CSV_COLUMNS).encode() + b"\r\n")
        async for rows in log.rows(query):
            text = csv_rows(rows) if fmt == "csv" else "".join(ndjson_line(r) for r in rows)
            await response.write(text.encode("utf-8"))
        await response.write_eof()
        return response

    return read_audit
