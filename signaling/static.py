"""Serves the browser client: `/` (create or open a meeting), `/r/{room}` (the meeting), `/m/{meeting_id}` (a
meeting's record: transcript, notes; its data comes over REST with a record token), `/static/…`."""

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

    async def record(request: web.Request) -> web.FileResponse:
        # The same page for every id: whether the meeting exists is for the REST calls (with a credential) to say.
        return web.FileResponse(web_dir / "record.html", headers={"Cache-Control": "no-store"})

    app.router.add_get("/", index)
    app.router.add_get("/r/{room}", meeting)
    app.router.add_get("/m/{meeting_id}", record)
    app.router.add_static("/static/", web_dir, follow_symlinks=False, append_version=False)
