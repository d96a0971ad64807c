"""Typed keys for the state the aiohttp application carries (one place, no module globals)."""

from __future__ import annotations

from aiohttp import web

from sfu.rooms import RoomRegistry
from sfu.workers import PipeServer
from signaling.apikeys import ApiKeyStore
from signaling.config import Config
from signaling.tokens import TokenIssuer

CONFIG = web.AppKey("config", Config)
TOKENS = web.AppKey("tokens", TokenIssuer)
API_KEYS = web.AppKey("api_keys", ApiKeyStore)
ROOMS = web.AppKey("rooms", RoomRegistry)
PIPES = web.AppKey("pipes", PipeServer)
