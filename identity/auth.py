"""Who is calling: an API key (REST, operators and bots) or an access token (people in a meeting)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from common.errors import Forbidden, OutOfScope, Unauthorized
from identity.apikeys import PREFIX, ApiKey
from identity.appkeys import API_KEYS, MEETINGS, TOKENS
from identity.meetings import Meeting
from identity.tokens import AccessToken


@dataclass(frozen=True)
class Caller:
    api_key: ApiKey | None = None
    token: AccessToken | None = None
    meeting: Meeting | None = None  # the live meeting a meeting token reaches

    @property
    def is_admin_key(self) -> bool:
        return self.api_key is not None and self.api_key.role == "admin"

    def in_room(self, room: str) -> bool:
        """A meeting token of this room's live meeting (checked when the caller was authenticated)."""
        return self.token is not None and self.meeting is not None and self.token.room == room

    def may_moderate(self, room: str) -> bool:
        if self.is_admin_key:
            return True
        return self.in_room(room) and self.token is not None and self.token.grants.moderator


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("missing 'Authorization: Bearer <API key or token>' header")
    return value.strip()


def authenticate(request: web.Request) -> Caller:
    """An API key, or a meeting token whose meeting is live and that was not removed from it."""
    value = bearer(request)
    if value.startswith(PREFIX):
        return Caller(api_key=request.app[API_KEYS].verify(value))
    token = request.app[TOKENS].verify(value)
    if token.is_user_token:
        raise OutOfScope("a chat user token does not reach rooms")
    return Caller(token=token, meeting=request.app[MEETINGS].check(token))


def require_admin_key(request: web.Request) -> Caller:
    caller = authenticate(request)
    if not caller.is_admin_key:
        raise Forbidden("this endpoint needs an admin API key")
    return caller
