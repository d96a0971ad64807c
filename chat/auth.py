"""Who is calling the chat API: an API key (a named bot/member/admin), a chat user token, or a meeting
token (the participant's identity; a first-time identity becomes a `guest` user, and the caller joins
the meeting channel of the token's room)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiohttp import web

from chat.model import User
from chat.service import ChatService
from identity.apikeys import PREFIX, ApiKey, ApiKeyStore
from common.errors import Unauthorized
from identity.tokens import AccessToken, TokenIssuer

# The "room" of a token that names a chat user but no meeting (no real room has this name).
CHAT_ROOM = "@chat"


@dataclass(frozen=True)
class Principal:
    user: User
    rate_key: str
    room: str | None = None


class Authenticator:
    def __init__(self, service: ChatService, tokens: TokenIssuer, keys: ApiKeyStore) -> None:
        self._service = service
        self._tokens = tokens
        self._keys = keys
        self._key_cache: dict[str, tuple[float, ApiKey]] = {}
        self._joined: set[tuple[str, str]] = set()

    def mint_user_token(self, login: str, ttl_seconds: int) -> str:
        return self._tokens.mint(CHAT_ROOM, login, name=login, ttl_seconds=ttl_seconds)

    async def _api_key(self, presented: str) -> ApiKey:
        hit = self._key_cache.get(presented)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        key = await asyncio.to_thread(self._keys.verify, presented)
        if len(self._key_cache) > 10_000:
            self._key_cache.clear()
        self._key_cache[presented] = (time.monotonic() + 60.0, key)
        return key

    async def principal(self, request: web.Request, allow_query: bool = False) -> Principal:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            value = request.query.get("token", "") if allow_query else ""
        if not value:
            raise Unauthorized("missing 'Authorization: Bearer <API key or token>' header")
        return await self.from_credential(value)

    async def from_credential(self, value: str) -> Principal:
        if value.startswith(PREFIX):
            key = await self._api_key(value)
            user = await self._service.store.get_user(key.name)
            if user is None or user.role != key.role:
                user, _ = await self._service.add_user(None, key.name, key.role, name=key.name)
            return Principal(user=user, rate_key=f"key:{key.key_id}")
        token: AccessToken = self._tokens.verify(value)
        user = await self._service.ensure_user(token.identity, role="guest", name=token.name)
        if token.room == CHAT_ROOM:
            return Principal(user=user, rate_key=f"user:{user.login}")
        if (token.room, user.login) not in self._joined:
            await self._service.join_meeting(token.room, user.login)
            self._joined.add((token.room, user.login))
        return Principal(user=user, rate_key=f"user:{user.login}", room=token.room)
