"""Typed keys for the state the aiohttp application carries (one place, no module globals)."""

from __future__ import annotations

from aiohttp import web

from common.config import Config
from common.ratelimit import RateLimiter
from identity.appkeys import API_KEYS, MEETINGS, TOKENS
from identity.schedule import ScheduleStore
from sfu.rooms import RoomRegistry
from sfu.workers import PipeServer
from signaling.meetings import Meetings

__all__ = ["API_KEYS", "CONFIG", "GUEST_JOINS", "MEETINGS", "MEETINGS_DESK", "PIPES", "ROOMS", "SCHEDULE", "TOKENS"]

CONFIG = web.AppKey("config", Config)
ROOMS = web.AppKey("rooms", RoomRegistry)
PIPES = web.AppKey("pipes", PipeServer)
MEETINGS_DESK = web.AppKey("meetings_desk", Meetings)
GUEST_JOINS = web.AppKey("guest_joins", RateLimiter)
# Scheduled meetings (identity/schedule.py; signaling/scheduled_api.py serves them).
SCHEDULE = web.AppKey("schedule", ScheduleStore)
