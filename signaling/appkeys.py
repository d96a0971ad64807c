"""Typed keys for the state the aiohttp application carries (one place, no module globals)."""

from __future__ import annotations

from aiohttp import web

from common.config import Config
from identity.appkeys import API_KEYS, TOKENS
from sfu.rooms import RoomRegistry
from sfu.workers import PipeServer

__all__ = ["API_KEYS", "CONFIG", "PIPES", "ROOMS", "TOKENS"]

CONFIG = web.AppKey("config", Config)
ROOMS = web.AppKey("rooms", RoomRegistry)
PIPES = web.AppKey("pipes", PipeServer)
