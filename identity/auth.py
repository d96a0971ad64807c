"""Who is calling: an API key (REST, operators and bots) or an access token (people in a room)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from identity.apikeys import ApiKey, PREFIX
from identity.appkeys import API_KEYS, TOKENS
from common.errors import Forbidden, Unauthorized
from identity.tokens import AccessToken


@dataclass(frozen=True)
class Caller:
    api_key: ApiKey | None = None
    token: AccessToken | None = None

    @property
    def is_admin_key(self) -> bool:
        return self.api_key is not None and self.api_key.role == "admin"

    def may_moderate(self, room: str) -> bool:
        if self.is_admin_key:
            return True
        return self.token is not None and self.token.room == room and self.token.grants.moderator


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("missing 'Authorization: Bearer <API key or token>' header")
    return value.strip()


def authenticate(request: web.Request) -> Caller:
    value = bearer(request)
    if value.startswith(PREFIX):
        return Caller(api_key=request.app[API_KEYS].verify(value))
    return Caller(token=request.app[TOKENS].verify(value))


def require_admin_key(request: web.Request) -> Caller:
    caller = authenticate(request)
    if not caller.is_admin_key:
        raise Forbidden("this endpoint needs an admin API key")
    return caller
