"""Who is acting, for the event the code below records: a context variable set once per request.

The front door's middleware (`origin_middleware`) fills in the client's address and user agent; the code that
authenticates the caller adds who it is (`note_caller`); a command-line tool says it is the operator
(`operator_origin`). The recorder reads it, so a call site names only the event, never the request.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import replace

from aiohttp import web

from audit.event import Origin

_CLIENT_CHARS = 256  # a user agent is kept up to this long
_ORIGIN: ContextVar[Origin] = ContextVar("audit_origin", default=Origin())


def current_origin() -> Origin:
    return _ORIGIN.get()


def note_caller(login: str, credential: str, org: str = "") -> None:
    """The authenticated caller of this request (or socket): `credential` is `key:<key id>`, `session`,
    `user_token` or `meeting_token`; `org` its organisation (the events it causes are that organisation's)."""
    _ORIGIN.set(replace(_ORIGIN.get(), login=login, credential=credential, org=org))


@contextlib.contextmanager
def acting(origin: Origin) -> Iterator[None]:
    token = _ORIGIN.set(origin)
    try:
        yield
    finally:
        _ORIGIN.reset(token)


def operator_origin() -> Origin:
    """The `convene` command line: the operating-system user at this machine."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Origin(address="local", client="convene-cli", credential="cli", login=f"operator:{user}")


@web.middleware
async def origin_middleware(request: web.Request,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Place it after the proxy middleware, so `request.remote` is the client, not the proxy."""
    origin = Origin(address=request.remote or "", client=request.headers.get("User-Agent", "")[:_CLIENT_CHARS])
    with acting(origin):
        return await handler(request)
