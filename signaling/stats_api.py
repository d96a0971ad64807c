"""Usage analytics at the front door (stats/ does the work): `GET /v1/admin/stats`, the page `/admin/stats`,
the hooks that note active people and meeting participants, and the rollup job.

Who may read: holders of read_stats (owners and admins by default; an organisation may grant it to others with
PUT /v1/admin/permissions); meeting tokens never. Each organisation reads its own rollups (stats/rollup.py keeps
them apart), the page too: it asks the API with the signed-in person's session, on the organisation's Host.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from aiohttp import web

from chat.web import CHAT_API
from common.wire import query_format
from identity.appkeys import DATABASE, PERMISSIONS
from identity.permissions import Permission
from signaling.appkeys import CONFIG, MEETINGS_DESK
from stats.activity import ActivityRecorder
from stats.attendance import AttendanceRecorder
from stats.days import parse_day
from stats.job import RollupJob
from stats.report import as_csv, as_series, read_rows

log = logging.getLogger("convene.signaling.stats")

PARAMS = {"from", "to", "format"}
DEFAULT_DAYS = 30
ACTIVITY = web.AppKey("stats_activity", ActivityRecorder)
ATTENDANCE = web.AppKey("stats_attendance", AttendanceRecorder)


async def _authorize(request: web.Request) -> str:
    """The caller's organisation, whose rollups they may read (read_stats in its permission table)."""
    api = request.app[CHAT_API]
    caller = await api.who(request, write=True)
    await request.app[PERMISSIONS].require(caller.user, Permission.READ_STATS, caller.org)
    return caller.org


def _range(request: web.Request) -> tuple[Any, Any, str]:
    fmt = query_format(request, PARAMS, ("json", "csv"))
    today = datetime.now(timezone.utc).date()
    last = parse_day(request.query["to"], "to") if request.query.get("to") else today
    first = (parse_day(request.query["from"], "from") if request.query.get("from")
             else last - timedelta(days=DEFAULT_DAYS - 1))
    return first, last, fmt


async def get_stats(request: web.Request) -> web.Response:
    org = await _authorize(request)
    first, last, fmt = _range(request)
    rows = await read_rows(request.app[DATABASE], first, last, org)
    if fmt == "csv":
        return web.Response(text=as_csv(rows), content_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="convene-stats-{first}-{last}.csv"'})
    return web.json_response(as_series(first, last, rows))


def _job_ctx(job: RollupJob | None) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if job is not None:
            job.start()
        yield
        if job is not None:
            await job.close()
        await app[ATTENDANCE].close()
        await app[ACTIVITY].close()
    return ctx


async def write_noted(app: web.Application) -> None:
    """Writes the attendance and activity this process gathered but has not written yet (within a second)."""
    await app[ATTENDANCE].flush()
    await app[ACTIVITY].flush()


def setup_stats(app: web.Application, web_dir: Path) -> None:
    """After setup_chat and the meetings desk. In a media worker only the meeting joins are noted."""
    db = app[DATABASE]
    app[ACTIVITY] = ActivityRecorder(db)
    app[ATTENDANCE] = AttendanceRecorder(db, app[ACTIVITY])
    app[MEETINGS_DESK].on_join = app[ATTENDANCE].joined
    front = CHAT_API in app
    if front:
        app[CHAT_API].auth.on_active = app[ACTIVITY].touch
        app.router.add_get("/v1/admin/stats", get_stats)

        async def page(request: web.Request) -> web.FileResponse:
            return web.FileResponse(web_dir / "stats.html", headers={"Cache-Control": "no-store"})

        app.router.add_get("/admin/stats", page)
    seconds = app[CONFIG].stats_rollup_seconds
    job = RollupJob(db, seconds, before=lambda: write_noted(app)) if front and seconds > 0 else None
    app.cleanup_ctx.append(_job_ctx(job))


def openapi_part() -> dict[str, Any]:
    text = {"type": "string"}
    error = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    params = [{"name": "from", "in": "query", "required": False, "schema": {"type": "string", "format": "date"}},
              {"name": "to", "in": "query", "required": False, "schema": {"type": "string", "format": "date"}},
              {"name": "format", "in": "query", "required": False, "schema": {"enum": ["json", "csv"]}}]
    series = {"type": "object", "properties": {
        "from": text, "to": text, "days": {"type": "array", "items": text},
        "computed": {"type": "object", "additionalProperties": {"type": "number"}},
        "metrics": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": {
            "type": "array", "items": {"type": "number"}}}}}}
    return {"paths": {"/v1/admin/stats": {"get": {
        "summary": "The caller's organisation's usage analytics per UTC day, from..to inclusive (default: the 30 days to today; at most 400): "
                   "active users (dau, wau, mau), messages by channel kind and by client (web, api, bot, webhook, "
                   "scheduled, other), meetings, meeting minutes, participants, caption minutes, files and bytes "
                   "(docs/analytics.md). JSON: a series per metric and dimension, one value per day (0 where the day "
                   "has not been rolled up); CSV (format=csv): day,metric,dimension,value rows. read_stats (owners "
                   "and admins by default); meeting tokens 403 out_of_scope",
        "tags": ["admin"], "parameters": params,
        "responses": {"200": {"description": "the rollups", "content": {
            "application/json": {"schema": series}, "text/csv": {"schema": text}}},
            **{code: error for code in ("400", "401", "403", "429")}, "default": error}}}}}
