"""Typed keys for the identity state an aiohttp application carries (set by the front door's factory)."""

from __future__ import annotations

from aiohttp import web

from identity.apikeys import ApiKeyStore
from identity.meetings import MeetingLedger
from identity.tokens import TokenIssuer

TOKENS = web.AppKey("tokens", TokenIssuer)
API_KEYS = web.AppKey("api_keys", ApiKeyStore)
MEETINGS = web.AppKey("meetings", MeetingLedger)
