"""The watermark (issue #11, docs/watermark.md): the viewer's own identity drawn over chat and the meeting stage.

The server says two things, both from the caller's credential and never from anything the page sends:
`GET /v1/me` -> `watermark` (the setting where the caller is: the org's, or for a meeting token its meeting
channel's own when set) and `watermark_text` ("name · login · date"). The page draws it (web/watermark.js) and,
when someone removes or restyles the overlay, draws it again and reports it: `POST /v1/watermark/tamper`, which
records `watermark.tamper` in the audit log at most once a minute per person.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from aiohttp import web

from audit import AuditEvent
from chat.auth import Principal
from chat.model import WATERMARK_MODES
from chat.service import ChannelWatermark
from common.errors import InvalidField, RateLimited
from common.ratelimit import RateLimiter
from common.wire import read_json_object

if TYPE_CHECKING:
    from chat.web import ChatApi

log = logging.getLogger(__name__)
TAMPER_AUDIT_SECONDS = 60.0  # at most one watermark.tamper row per person per minute (per process)
TAMPER_PAGES = ("chat", "meeting")
TAMPER_WHAT_CHARS = 64


def watermark_text(name: str, login: str, when: float) -> str:
    """What is drawn: the display name, the login (or a meeting guest's identity) and the UTC date."""
    day = datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y-%m-%d")
    shown = name.strip() if name and name.strip() and name.strip() != login else ""
    return " · ".join(part for part in (shown, login, day) if part)


def channel_watermark(body: dict[str, Any]) -> ChannelWatermark | None:
    """PATCH /v1/channels/{id} `watermark`: a mode, null to follow the org again; absent: no change."""
    if "watermark" not in body:
        return None
    value = body["watermark"]
    if value is not None and value not in WATERMARK_MODES:
        raise InvalidField("watermark is off, important, all or null (the organisation's)", field="watermark")
    return ChannelWatermark(value)


def important_flag(body: dict[str, Any], default: bool | None) -> bool | None:
    """A message's `important` flag from a request body: true or false; absent gives `default`."""
    if "important" not in body:
        return default
    value = body["important"]
    if not isinstance(value, bool):
        raise InvalidField("important must be true or false", field="important")
    return value


class WatermarkApi:
    """`GET /v1/me`'s watermark fields and `POST /v1/watermark/tamper`."""

    def __init__(self, api: ChatApi) -> None:
        self.api = api
        self.tamper_audits = RateLimiter(1.0 / TAMPER_AUDIT_SECONDS, 1)

    async def for_viewer(self, p: Principal) -> dict[str, Any]:
        mode = (await self.api.service.org(p.org)).watermark
        when = time.time()
        if p.scoped and p.channel_id is not None:
            channel = await self.api.store.get_channel(p.channel_id)
            if channel is not None and channel.watermark is not None:
                mode = channel.watermark
            # A meeting's participants (guests too) carry the meeting's date: the day it started.
            meeting = await self.api.auth.meetings.get(p.meeting) if p.meeting else None
            when = meeting.started_at if meeting is not None else when
        return {"watermark": mode, "watermark_text": watermark_text(p.user.name, p.user.login, when)}

    async def tamper(self, request: web.Request) -> web.Response:
        """A page saw its overlay removed or restyled (and drew it again). Answers whether it was recorded:
        within a minute of the last record for this person it is not (the page keeps redrawing regardless)."""
        p = await self.api.who(request, write=True, meeting=True)
        body = await read_json_object(request, allowed={"page", "what"})
        page = body.get("page")
        if page not in TAMPER_PAGES:
            raise InvalidField("page is chat or meeting", field="page")
        what = body.get("what", "")
        if not isinstance(what, str) or len(what) > TAMPER_WHAT_CHARS:
            raise InvalidField(f"what is a string of at most {TAMPER_WHAT_CHARS} characters", field="what")
        try:
            self.tamper_audits.take(p.user.login)
        except RateLimited:
            return web.json_response({"recorded": False})
        log.info("watermark tampered with by %s on the %s page (%s)", p.user.login, page, what or "-")
        after: dict[str, Any] = {"page": page, "what": what}
        if p.channel_id is not None:
            after["channel"] = p.channel_id
        await self.api.service.audit.record(AuditEvent("watermark.tamper", "user", p.user.login,
                                                       actor=p.user.login, after=after))
        return web.json_response({"recorded": True})
