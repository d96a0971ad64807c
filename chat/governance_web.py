"""Retention, legal holds and channel archive over REST (#11, docs/retention.md).

- `POST /v1/admin/legal_holds {"name", "users": [login…], "channels": [id or name…]}` → 201 the hold;
  `GET /v1/admin/legal_holds` → `{"holds": […]}`; `DELETE /v1/admin/legal_holds/{id}` lifts it;
  `GET /v1/admin/legal_holds/{id}/messages` → NDJSON, what the hold keeps (the legal export; recalled originals
  included). All need edit_org (owners and admins) and act on the caller's organisation only: another's holds
  answer 404, and a hold names only users and channels of its own organisation.
- `POST /v1/admin/retention/run` runs retention now for the caller's organisation (edit_org) and answers its
  counts; the daily job runs every organisation, each under its own policy and holds.
- `POST /v1/channels/{id}/archive`, `POST /v1/channels/{id}/unarchive`: the channel's creator or a holder of
  manage_any_channel. Renaming is `PATCH /v1/channels/{id} {"name"}` (chat/web.py calls ChannelAdmin.rename).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from audit import AuditEvent
from chat.channel_admin import ChannelAdmin
from chat.legal_hold import HoldStore
from chat.retention import Retention
from common.errors import InvalidField, NotFound
from common.names import display_name
from common.wire import read_json_object
from identity.permissions import Action, require

if TYPE_CHECKING:
    from chat.web import ChatApi

MAX_TARGETS = 1000  # users plus channels in one hold


class HoldNotFound(NotFound):
    code = "legal_hold_not_found"


class GovernanceApi:
    def __init__(self, api: ChatApi, holds: HoldStore, retention: Retention) -> None:
        self.api = api
        self.holds = holds
        self.retention = retention
        self.channels = ChannelAdmin(api.service)

    async def _admin(self, request: web.Request, write: bool = False) -> tuple[str, HoldStore]:
        """The caller (edit_org in their organisation) and that organisation's holds."""
        p = await self.api.who(request, write=write)
        require(p.user, Action.EDIT_ORG, await self.api.service.table(p.org))
        return p.user.login, self.holds.in_org(p.org)

    async def _targets(self, body: dict[str, Any], org: str) -> tuple[list[str], list[str]]:
        """The users and channels a hold names, all of organisation `org` (another's answer as unknown)."""
        users, channels = body.get("users", []), body.get("channels", [])
        if not isinstance(users, list) or not isinstance(channels, list):
            raise InvalidField("users and channels are lists", field="users")
        if not users and not channels:
            raise InvalidField("a hold names at least one user or channel", field="users")
        if len(users) + len(channels) > MAX_TARGETS:
            raise InvalidField(f"at most {MAX_TARGETS} users and channels in one hold", field="users")
        logins = await self.api.service.require_users(org, users, "users")
        ids = []
        for ref in channels:
            if not isinstance(ref, str) or not ref:
                raise InvalidField("channels are channel ids or names", field="channels")
            ids.append((await self.api.service.resolve(ref, org)).id)
        return sorted(set(logins)), sorted(set(ids))

    async def create_hold(self, request: web.Request) -> web.Response:
        actor, holds = await self._admin(request, write=True)
        body = await read_json_object(request, allowed={"name", "users", "channels"})
        name = display_name(body.get("name"), "name", max_len=200)
        users, channels = await self._targets(body, holds.org_id)
        hold = await holds.create(name, users, channels, actor)
        await self.api.service.audit.record(AuditEvent("legal_hold.create", "legal_hold", hold.id, actor=actor,
                                                       after={"name": name, "users": users, "channels": channels}))
        return web.json_response(hold.to_wire(), status=201)

    async def list_holds(self, request: web.Request) -> web.Response:
        _, holds = await self._admin(request)
        return web.json_response({"holds": [h.to_wire() for h in await holds.list()]})

    async def lift_hold(self, request: web.Request) -> web.Response:
        actor, holds = await self._admin(request, write=True)
        hold_id = request.match_info["id"]
        if not await holds.lift(hold_id, actor):
            raise HoldNotFound(f"no active legal hold {hold_id!r}")
        hold = await holds.get(hold_id)
        assert hold is not None
        await self.api.service.audit.record(AuditEvent("legal_hold.lift", "legal_hold", hold_id, actor=actor,
                                                       before={"active": True, "name": hold.name},
                                                       after={"active": False}))
        return web.json_response(hold.to_wire())

    async def export_hold(self, request: web.Request) -> web.StreamResponse:
        actor, holds = await self._admin(request)
        hold = await holds.get(request.match_info["id"])
        if hold is None:
            raise HoldNotFound(f"no legal hold {request.match_info['id']!r}")
        await self.api.service.audit.record(AuditEvent("legal_hold.export", "legal_hold", hold.id, actor=actor))
        out = web.StreamResponse(headers={"Content-Type": "application/x-ndjson; charset=utf-8",
                                          "Cache-Control": "no-store"})
        await out.prepare(request)
        async for record in holds.export(hold):
            await out.write((json.dumps(record, ensure_ascii=False) + "\n").encode())
        await out.write_eof()
        return out

    async def run_retention(self, request: web.Request) -> web.Response:
        _, holds = await self._admin(request, write=True)
        return web.json_response((await self.retention.run(org=holds.org_id)).to_wire())

    async def archive(self, request: web.Request) -> web.Response:
        p = await self.api.who(request, write=True)
        channel = await self.channels.archive(p.user, request.match_info["id"], True)
        return web.json_response(channel.to_wire())

    async def unarchive(self, request: web.Request) -> web.Response:
        p = await self.api.who(request, write=True)
        channel = await self.channels.archive(p.user, request.match_info["id"], False)
        return web.json_response(channel.to_wire())

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/v1/admin/legal_holds", self.create_hold)
        r.add_get("/v1/admin/legal_holds", self.list_holds)
        r.add_delete("/v1/admin/legal_holds/{id}", self.lift_hold)
        r.add_get("/v1/admin/legal_holds/{id}/messages", self.export_hold)
        r.add_post("/v1/admin/retention/run", self.run_retention)
        r.add_post("/v1/channels/{id}/archive", self.archive)
        r.add_post("/v1/channels/{id}/unarchive", self.unarchive)
