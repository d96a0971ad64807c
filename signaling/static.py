"""Serves the browser client: `/` (create or open a meeting), `/r/{room}` (the meeting), `/m/{meeting_id}` (a
meeting's record: transcript, notes; its data comes over REST with a record token), `/admin` (users, departments,
permissions, directory status for admins), `/static/…`. `/` is also the signed-in person's home page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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

    def page(path: Path) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
        async def serve(request: web.Request) -> web.FileResponse:
            return web.FileResponse(path, headers={"Cache-Control": "no-store"})
        return serve

    app.router.add_get("/", index)
    app.router.add_get("/r/{room}", meeting)
    app.router.add_get("/m/{meeting_id}", record)
    # The admin pages: the same page for everyone; the data APIs it calls refuse who is not an admin.
    app.router.add_get("/admin", page(web_dir / "admin.html"))
    app.router.add_static("/static/", web_dir, follow_symlinks=False, append_version=False)
