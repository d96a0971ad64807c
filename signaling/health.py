"""`GET /healthz` (the process answers) and `GET /readyz` (it takes joins), for load balancers and systemd-style
supervisors. Both are public: they say nothing but whether the server works.

Ready means: the app finished starting (aiohttp ran every startup hook: the rooms registry runs, the chat store is
open, workers spawned), it is not shutting down, and the chat store answers a read within a second (with Redis
behind it, a Redis that went away makes this server not ready: joins would open meetings whose chat fails).
"""

from __future__ import annotations

import asyncio
import enum

from aiohttp import web

from chat.web import CHAT
from common.errors import NotReady

HEALTHZ = "/healthz"
READYZ = "/readyz"
STORE_TIMEOUT_SECONDS = 1.0


class Phase(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    STOPPING = "shutting down"


class Lifecycle:
    """Where the app is in aiohttp's lifecycle, as the startup and shutdown hooks below set it."""

    def __init__(self) -> None:
        self.phase = Phase.STARTING

    async def started(self, app: web.Application) -> None:
        self.phase = Phase.READY

    async def stopping(self, app: web.Application) -> None:
        self.phase = Phase.STOPPING


LIFECYCLE = web.AppKey("lifecycle", Lifecycle)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    phase = request.app[LIFECYCLE].phase
    if phase is not Phase.READY:
        raise NotReady(f"not ready: {phase.value}", reason=phase.value)
    checks = {"rooms": "ok"}
    if CHAT in request.app:
        await _check_chat_store(request.app)
        checks["chat"] = "ok"
    return web.json_response({"status": "ready", "checks": checks})


async def _check_chat_store(app: web.Application) -> None:
    try:
        await asyncio.wait_for(app[CHAT].store.get_org(), STORE_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure of the store (closed, Redis gone, timed out) means not ready
        raise NotReady(f"not ready: the chat store does not answer ({type(exc).__name__})",
                       reason="chat store unavailable") from exc


def setup(app: web.Application) -> None:
    """Routes and lifecycle hooks. Call after everything that adds cleanup contexts or startup hooks whose work
    readiness waits for: aiohttp runs all cleanup contexts first, then startup hooks in order."""
    lifecycle = Lifecycle()
    app[LIFECYCLE] = lifecycle
    app.router.add_get(HEALTHZ, healthz)
    app.router.add_get(READYZ, readyz)
    app.on_startup.append(lifecycle.started)
    # First of the shutdown hooks: a balancer polling us stops sending joins before sockets start closing.
    app.on_shutdown.insert(0, lifecycle.stopping)
