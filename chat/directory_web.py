"""The directory (LDAP / AD) on the chat server: sign-in by a bind as the user, the sync on a schedule, and the
admin routes POST /v1/admin/ldap/sync and GET /v1/admin/ldap/status.

Each organisation has its own directory: the default organisation's is the server's --ldap-* flags, another's
the connection stored with `convene orgs set-directory` (identity/org_directories.py), read when first needed
and again whenever it changed. A sign-in at an organisation's Host binds against that organisation's directory
only, and a sync and status (manage_users: owners and admins unless the organisation's table says otherwise) are
the caller's own organisation's.

`setup_directory(app, config)` runs after setup_chat. Without a directory the routes still answer (status says
`configured: false`, a sync is 409 directory_not_configured) and sign-in stays local.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from chat.auth import Principal
from chat.directory_sync import DirectorySync, describe_shared, sync_loop
from chat.model import User
from common.config import Config
from common.errors import DirectoryNotConfigured, DirectoryUnavailable, InvalidConfig
from identity.directory import Directory, DirectorySettings
from identity.group_map import GroupMap, load_group_map
from identity.org_directories import LDAP, OrgConnections, directory_settings
from identity.orgs import DEFAULT_ORG
from identity.permissions import Permission, require
from identity.sealed import SecretSealer
from identity.secrets_store import server_secret

if TYPE_CHECKING:
    from chat.web import ChatApi

log = logging.getLogger(__name__)

class OrgDirectorySyncs:
    """Each organisation's DirectorySync: the default one's from the flags (made once), another's from its stored
    connection, kept while the stored row's `updated_at` stays the same."""

    def __init__(self, api: ChatApi, default: DirectorySync | None, connections: OrgConnections) -> None:
        self.api = api
        self.default = default
        self.connections = connections
        self._cached: dict[str, tuple[float, DirectorySync]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._retiring: set[asyncio.Task[None]] = set()

    def _make(self, org: str, settings: DirectorySettings, group_map: GroupMap) -> DirectorySync:
        assert self.api.accounts is not None
        return DirectorySync(Directory(settings), group_map, self.api.accounts.db, self.api.service,
                             self.api.accounts, self.api.end_access, org=org)

    async def for_org(self, org: str) -> DirectorySync | None:
        if org == DEFAULT_ORG:
            return self.default
        version = await self.connections.version(org, LDAP)
        cached = self._cached.get(org)
        if cached is not None and cached[0] == version:
            return cached[1]
        async with self._locks.setdefault(org, asyncio.Lock()):  # one rebuild per change, however many sign-ins
            version = await self.connections.version(org, LDAP)
            cached = self._cached.get(org)
            if cached is not None and cached[0] == version:
                return cached[1]
            self._retire(org)
            stored = None if version is None else await self.connections.get(org, LDAP)
            if stored is None:
                return None
            try:
                sync = self._make(org, *directory_settings(stored))
            except InvalidConfig as exc:
                log.error("organisation %s: its directory connection cannot be used: %s", org, exc.message)
                raise DirectoryUnavailable("this organisation's directory connection cannot be used") from None
            self._cached[org] = (stored.updated_at, sync)
            return sync

    def _retire(self, org: str) -> None:
        """Swaps the organisation's sync out at once; its kept connection is closed once a sync it is running has
        ended (a sign-in still holding it finds its directory closed and searches on a connection of its own)."""
        cached = self._cached.pop(org, None)
        if cached is None:
            return
        task = asyncio.get_running_loop().create_task(_close_after_run(cached[1]))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def admit(self, org: str, login: str, password: str) -> tuple[User, int] | None:
        """A sign-in at `org`'s Host against `org`'s directory; None when the organisation has none."""
        sync = await self.for_org(org)
        return None if sync is None else await sync.admit(login, password)

    async def all(self) -> list[DirectorySync]:
        """Every configured organisation's sync, the default one's first (the periodic sync runs them all)."""
        out = [] if self.default is None else [self.default]
        for org in await self.connections.orgs_with(LDAP):
            try:
                sync = await self.for_org(org)
            except DirectoryUnavailable:
                continue  # logged in for_org; the other organisations still sync
            if sync is not None:
                out.append(sync)
        return out

    async def aclose(self) -> None:
        """At shutdown: the retiring syncs' waits end (each closes its directory) and every kept search
        connection is ended."""
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Ends every kept search connection (blocking: on a thread at shutdown)."""
        for sync in [*([self.default] if self.default else []), *(s for _, s in self._cached.values())]:
            sync.directory.close()


async def _close_after_run(sync: DirectorySync) -> None:
    """Closes a replaced sync's directory, after the run it may be in the middle of (run() holds its lock)."""
    try:
        async with sync.run_lock:
            pass
    finally:
        await asyncio.to_thread(sync.directory.close)


DIRECTORY_SYNCS = web.AppKey("directory_syncs", OrgDirectorySyncs)


class DirectoryAdmin:
    def __init__(self, api: ChatApi, syncs: OrgDirectorySyncs, config: Config) -> None:
        self.api = api
        self.syncs = syncs
        self.config = config

    async def _manager(self, request: web.Request, write: bool = False) -> Principal:
        """The caller, if it holds manage_users in its organisation (a sync adds and deactivates people there; its
        status names the directory): the permission table's row, as the /v1/users routes ask."""
        p = await self.api.who(request, write=write)
        require(p.user, Permission.MANAGE_USERS, await self.api.service.table(p.org))
        return p

    async def run_sync(self, request: web.Request) -> web.Response:
        p = await self._manager(request, write=True)
        sync = await self.syncs.for_org(p.org)
        if sync is None:
            raise DirectoryNotConfigured("this organisation has no directory (--ldap-url for the default one, "
                                         "`convene orgs set-directory` for another)")
        report = await sync.run()  # DirectoryUnavailable: 503, recorded in the status
        return web.json_response({**report.counts(), "errors": report.errors[:20]})

    async def status(self, request: web.Request) -> web.Response:
        p = await self._manager(request)
        sync = await self.syncs.for_org(p.org)
        url = None if sync is None else sync.directory.settings.url
        return web.json_response(await describe_shared(sync, url, self.config.ldap_sync_interval_seconds))

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/admin/ldap/sync", self.run_sync)
        app.router.add_get("/v1/admin/ldap/status", self.status)


def build_sync(config: Config, api: ChatApi) -> DirectorySync | None:
    """The default organisation's sync, from the flags (None without --ldap-url)."""
    settings = DirectorySettings.from_config(config)  # InvalidConfig for a bad URL or a missing base DN
    if settings is None:
        return None
    assert api.accounts is not None
    return DirectorySync(Directory(settings), load_group_map(config.ldap_group_map), api.accounts.db, api.service,
                         api.accounts, api.end_access)


def setup_directory(app: web.Application, config: Config) -> OrgDirectorySyncs:
    from chat.web import CHAT_API  # here: chat.web does not import this module, but this one needs its app key

    api = app[CHAT_API]
    assert api.accounts is not None  # setup_chat sets it
    sync = build_sync(config, api)
    sealer = SecretSealer(server_secret(config.data_dir, config.token_secret_file))
    syncs = OrgDirectorySyncs(api, sync, OrgConnections(api.accounts.db, sealer))
    app[DIRECTORY_SYNCS] = syncs
    DirectoryAdmin(api, syncs, config).routes(app)

    async def close_directories(app: web.Application) -> None:
        await syncs.aclose()
    app.on_cleanup.append(close_directories)
    api.directory_login = syncs.admit
    if config.ldap_sync_interval_seconds > 0:
        app.cleanup_ctx.append(_sync_ctx(syncs, config.ldap_sync_interval_seconds))
    if sync is not None:
        log.info("directory %s: sign-in by bind, sync every %.0f s", config.ldap_url,
                 config.ldap_sync_interval_seconds)
    return syncs


def _sync_ctx(syncs: OrgDirectorySyncs, interval: float) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(sync_loop(syncs.all, interval))
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return ctx
