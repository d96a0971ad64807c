"""`GET /v1/auth/session`: whether this browser is signed in, asked by pages that work either way.

The home page (`/`) and the meeting page (`/r/{room}`) show one thing to signed-in people and another to everyone
else. The session cookie is HttpOnly, so the page cannot look at it; asking `/v1/me` would answer 401 to every
visitor who is not signed in, an error line in each console. This answers 200 either way and tells nothing but
the yes or no; who the person is and what they may do is `/v1/me`'s, once the answer is yes.
"""

from __future__ import annotations

from aiohttp import web

from chat.web import CHAT_API
from common.errors import ConveneError
from identity.signin import SESSION_COOKIE

NO_STORE = {"Cache-Control": "no-store"}


async def session_state(request: web.Request) -> web.Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    signed_in = False
    if cookie and CHAT_API in request.app:
        try:
            # A read: no CSRF header needed. Ended, revoked, expired and forged sessions all raise.
            await request.app[CHAT_API].auth.from_session(request, cookie)
            signed_in = True
        except ConveneError:
            signed_in = False
    return web.json_response({"signed_in": signed_in}, headers=NO_STORE)


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/auth/session", session_state)
