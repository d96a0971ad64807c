"""The application's recorder, for the parts of the front door that record (one per process, on its store)."""

from __future__ import annotations

from aiohttp import web

from audit.recorder import Recorder

AUDIT = web.AppKey("audit", Recorder)
