"""The directory (LDAP / AD) on the chat server: sign-in by a bind as the user, the sync on a schedule, and the
admin routes POST /v1/admin/ldap/sync and GET /v1/admin/ldap/status.

`setup_directory(app, config)` runs after setup_chat. Without --ldap-url the routes still answer (status says
`configured: false`, a sync is 409 directory_not_configured) and sign-in stays local.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from chat.auth import Principal
from chat.directory_sync import DirectorySync, describe, sync_loop
from common.config import Config
from common.errors import DirectoryNotConfigured, Forbidden
from identity.orgs import DEFAULT_ORG
from identity.directory import Directory, DirectorySettings
from identity.group_map import load_group_map

if TYPE_CHECKING:
    from chat.web import ChatApi

log = logging.getLogger(__name__)

DIRECTORY_SYNC = web.AppKey("directory_sync", DirectorySync)
ADMIN_ROLES = ("owner", "admin")


def require_admin(p: Principal) -> None:
    """Routes under /v1/admin: an admin API key, or a signed-in admin or owner."""
    if p.user.role not in ADMIN_ROLES:
        raise Forbidden("this endpoint needs the admin role")
    if p.org != DEFAULT_ORG:  # the one configured directory fills the default organisation
        raise Forbidden("the directory connection is the default organisation's")


class DirectoryAdmin:
    def __init__(self, api: ChatApi, sync: DirectorySync | None, config: Config) -> None:
        self.api = api
        self.sync = sync
        self.config = config

    async def run_sync(self, request: web.Request) -> web.Response:
        p = await self.api._who(request, write=True)
        require_admin(p)
        if self.sync is None:
            raise DirectoryNotConfigured("no directory is configured (--ldap-url)")
        report = await self.sync.run()  # DirectoryUnavailable: 503, recorded in the status
        return web.json_response({**report.counts(), "errors": report.errors[:20]})

    async def status(self, request: web.Request) -> web.Response:
        p = await self.api._who(request)
        require_admin(p)
        return web.json_response(describe(self.sync, self.config.ldap_url, self.config.ldap_sync_interval_seconds))

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/admin/ldap/sync", self.run_sync)
        app.router.add_get("/v1/admin/ldap/status", self.status)


def build_sync(config: Config, api: ChatApi) -> DirectorySync | None:
    settings = DirectorySettings.from_config(config)  # InvalidConfig for a bad URL or a missing base DN
    if settings is None:
        return None
    assert api.accounts is not None
    return DirectorySync(Directory(settings), load_group_map(config.ldap_group_map), api.accounts.db, api.service,
                         api.accounts, api.end_access)


def setup_directory(app: web.Application, config: Config) -> DirectorySync | None:
    from chat.web import CHAT_API  # here: chat.web does not import this module, but this one needs its app key

    api = app[CHAT_API]
    sync = build_sync(config, api)
    DirectoryAdmin(api, sync, config).routes(app)
    if sync is None:
        return None
    app[DIRECTORY_SYNC] = sync

    async def close_directory(app: web.Application) -> None:
        await asyncio.to_thread(sync.directory.close)
    app.on_cleanup.append(close_directory)
    api.directory_login = sync.admit
    if config.ldap_sync_interval_seconds > 0:
        app.cleanup_ctx.append(_sync_ctx(sync, config.ldap_sync_interval_seconds))
    log.info("directory %s: sign-in by bind, sync every %.0f s", config.ldap_url, config.ldap_sync_interval_seconds)
    return sync


def _sync_ctx(sync: DirectorySync, interval: float) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(sync_loop(sync, interval))
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return ctx
