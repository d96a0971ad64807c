"""A deactivated person's live meeting sockets close within a second, with 4410 (as their chat sockets).

Two ways in, the same as chat's: in the process that deactivates (the admin's POST, the directory sync) chat
calls `close_meeting_sockets` through its deactivation listeners at once; every process (media workers too,
which have no chat) also polls the accounts table every 0.5 s for accounts deactivated since its last look, so
`convene users disable`, `convene ldap sync` and other servers reach it too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from chat.web import CHAT_API
from identity.appkeys import DATABASE
from identity.passwords import AccountStore
from signaling.ws import SESSIONS

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


def close_meeting_sockets(app: web.Application, login: str) -> int:
    """Closes (4410, after `account_disabled`) every meeting socket here whose token names `login`."""
    closed = 0
    for session in list(app[SESSIONS].values()):
        token = session.token
        if token is not None and token.identity == login and not token.is_user_token:
            session.deactivated()
            closed += 1
    if closed:
        log.info("closed %d meeting socket(s) of deactivated %s", closed, login)
    return closed


async def _poll(app: web.Application, accounts: AccountStore) -> None:
    since = time.time() - 5
    while True:
        await asyncio.sleep(POLL_SECONDS)
        if not app[SESSIONS]:
            continue  # nobody in a meeting here: nothing to close (and no read)
        checked = time.time()
        try:
            logins = await accounts.deactivated_since(since)
        except Exception:  # noqa: BLE001 - a store hiccup must not end the loop; the next poll retries
            log.exception("deactivation poll failed")
            continue
        for login in logins:
            close_meeting_sockets(app, login)
        since = checked - 2  # overlap: a row committed with a slightly earlier clock is still seen


async def _poll_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_poll(app, AccountStore(app[DATABASE])))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def setup(app: web.Application) -> None:
    """After setup_chat: chat's deactivations close this process's meeting sockets at once; the poll does the rest."""
    if CHAT_API in app:
        app[CHAT_API].deactivation_listeners.append(lambda login: close_meeting_sockets(app, login))
    app.cleanup_ctx.append(_poll_ctx)
