"""The application factory: one aiohttp app serving signaling, REST, the web client and sidecars."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from chat.web import setup_chat
from integrations.hooks_web import setup_hooks
from integrations.scheduled_web import setup_scheduled_posts
from integrations.interaction_web import setup_interactions
from chat.directory_web import setup_directory
from sfu.rooms import RoomRegistry
from signaling import deactivation
from sfu.workers import PipeServer
from signaling import (headers, health, member_join, metrics, openapi, prometheus, proxies, rest, session_probe,
                       static, ws)
from signaling import oidc_routes
from signaling import scheduled_api
from identity.schedule import ScheduleStore
from signaling.sidecars import attach_sidecars
from signaling.turn import configure_server_ice
from transcribe.web import setup_transcribe
from identity.apikeys import ApiKeyStore
from identity.meetings import MeetingLedger
from signaling.appkeys import API_KEYS, CONFIG, MEETINGS, MEETINGS_DESK, PIPES, ROOMS, TOKENS
from signaling.meetings import Meetings
from common.config import Config
from common.private_files import private_dir
from identity.secrets_store import server_secret
from identity.tokens import TokenIssuer
from common.wire import error_middleware
from audit import Recorder
from audit.appkeys import AUDIT
from audit.origin import origin_middleware
from signaling.audit_api import setup_audit
from signaling.stats_api import setup_stats
from identity.appkeys import DATABASE, ORGS
from identity.orgs import OrgDirectory, org_middleware
from signaling.legacy_import import import_legacy
from signaling.room_directory import StoreRoomDirectory
from store.database import Database

log = logging.getLogger("convene.app")

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    # First in, last out: opening migrates, so every part after it finds its tables; it closes after them all.
    db = app[DATABASE]
    await db.open()
    try:
        if not app[CONFIG].media_only:  # the front process; spawned media workers start after it
            await import_legacy(db, app[CONFIG].data_dir)  # a data dir of a release before the store, once
        yield
    finally:
        if AUDIT in app:
            await app[AUDIT].close()  # queued audit appends are written (or given up) while the store is open
        await db.close()


async def _rooms_ctx(app: web.Application) -> AsyncIterator[None]:
    rooms = app[ROOMS]
    config = app[CONFIG]
    rooms.start(empty_timeout=config.empty_room_seconds)
    pipes: PipeServer | None = None
    if config.worker_id is not None:
        pipes = PipeServer(rooms, StoreRoomDirectory(app[DATABASE]), config.worker_id, config.url,
                           secret=server_secret(config.data_dir, config.token_secret_file))
        await pipes.start()
        app[PIPES] = pipes
    yield
    await ws.close_all(app)
    if pipes is not None:
        await pipes.close()
    await rooms.close()
    await app[MEETINGS_DESK].drain()


def create_app(config: Config) -> web.Application:
    private_dir(config.data_dir)  # 0700, also when an older version left it open
    private_dir(config.data_dir / "chat")  # chat's part (its blobs, unless --files-dir): 0700 as well
    configure_server_ice(config)  # ICE gathering: loopback, networks, ports, announced address
    database = Database.for_config(config.database_url, config.data_dir)
    orgs = OrgDirectory(database)
    # Outermost: every other middleware and handler sees the client's address, scheme and Host, not the proxy's;
    # then the request's organisation, from that Host (identity/orgs.py).
    app = web.Application(middlewares=[*proxies.middlewares(config.trusted_proxies), org_middleware(orgs),
                                       origin_middleware, error_middleware],
                          client_max_size=1024 * 1024)
    app[CONFIG] = config
    app[DATABASE] = database
    app[ORGS] = orgs
    app.cleanup_ctx.append(_database_ctx)
    headers.setup(app)
    app[TOKENS] = TokenIssuer(server_secret(config.data_dir, config.token_secret_file))
    app[AUDIT] = Recorder.on(app[DATABASE])  # the audit log (audit/): who did what, hash-chained
    app[API_KEYS] = ApiKeyStore(app[DATABASE])
    app[ROOMS] = RoomRegistry(
        ice_servers=config.ice_server_urls,
        pli_throttle=config.pli_throttle_seconds,
        captions_default=config.captions_default,
        max_rooms=config.max_rooms,
    )
    app[MEETINGS] = MeetingLedger(app[DATABASE])
    app[MEETINGS_DESK] = Meetings(app[MEETINGS], app[ROOMS])
    ws.setup(app)
    rest.setup(app)
    member_join.setup(app)  # signed-in people join as themselves
    session_probe.setup(app)  # pages that work signed in or not ask here
    openapi.setup(app)  # before chat, whose part it includes
    if not config.media_only:
        setup_chat(app, config)
        scheduled_api.setup(app, ScheduleStore(app[DATABASE]))  # after chat (notices); before transcribe's routes
        setup_directory(app, config)  # LDAP / AD sign-in and sync: after chat, whose users it keeps
        oidc_routes.setup(app)  # single sign-on: after chat, whose sessions it starts
        setup_audit(app)
        setup_scheduled_posts(app)  # after chat: it posts through it
        setup_hooks(app, config)  # webhooks: after chat, which they post through
        setup_interactions(app, config)  # bots, slash commands, buttons: after chat, whose hooks it sets
    deactivation.setup(app)  # a deactivated person's meeting sockets close (4410), also in media workers
    setup_stats(app, WEB_DIR)  # usage analytics: after chat and the meetings desk, whose callers it counts
    setup_transcribe(app, config)
    attach_sidecars(app, app[ROOMS])
    metrics.setup(app)
    prometheus.setup(app)  # GET /metrics; after chat and transcribe, whose bus and engine it hooks
    app.cleanup_ctx.append(_rooms_ctx)
    static.setup(app, WEB_DIR)
    health.setup(app)  # last: ready once every startup hook above has run
    return app
