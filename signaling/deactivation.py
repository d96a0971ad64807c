"""A deactivated person's live meeting sockets close within a second, with 4410 (as their chat sockets).

Two ways in, the same as chat's: in the process that deactivates (the admin's POST, the directory sync) chat
calls `close_meeting_sockets` through its deactivation listeners at once; every process (media workers too,
which have no chat) has a deactivation watch (identity/deactivation_watch.py) that reads the accounts table every
0.5 s while someone is in a meeting here, so `convene users disable`, `convene ldap sync` and other servers reach
it too.
"""

from __future__ import annotations

import logging

from aiohttp import web

from chat.web import CHAT_API
from identity.appkeys import DATABASE
from identity.deactivation_watch import deactivation_watch
from identity.passwords import AccountStore
from signaling.ws import SESSIONS

log = logging.getLogger(__name__)


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


async def _close(app: web.Application, login: str) -> None:
    close_meeting_sockets(app, login)


def setup(app: web.Application) -> None:
    """After setup_chat: chat's deactivations close this process's meeting sockets at once; the process's one
    deactivation watch (shared with chat) hands over the others while someone is in a meeting here."""
    if CHAT_API in app:
        app[CHAT_API].deactivation_listeners.append(lambda login: close_meeting_sockets(app, login))
    deactivation_watch(app, lambda: AccountStore(app[DATABASE])).listen(lambda: bool(app[SESSIONS]),
                                                                 lambda login: _close(app, login))
