"""Serves the browser client: `/` (create or open a meeting), `/r/{room}` (the meeting), `/static/…`."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from common.errors import NotFound


def setup(app: web.Application, web_dir: Path) -> None:
    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(web_dir / "index.html")

    async def meeting(request: web.Request) -> web.FileResponse:
        page = web_dir / "meeting.html"
        if not page.exists():
            raise NotFound("the web client is not installed")
        return web.FileResponse(page, headers={"Cache-Control": "no-store"})

    app.router.add_get("/", index)
    app.router.add_get("/r/{room}", meeting)
    app.router.add_static("/static/", web_dir, follow_symlinks=False, append_version=False)
