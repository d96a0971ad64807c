"""Security headers on every HTTP response: pages, static files, JSON, errors and 404s.

They are set from `on_response_prepare`, not a middleware: a middleware never sees the responses of
aiohttp's static route or of requests no route matched, the signal sees every prepared response.
A header a handler set itself wins (a file download keeps its stricter `Content-Security-Policy: sandbox`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import urlsplit

from aiohttp import web

from common.config import Config
from identity.orgs import host_name
from signaling.appkeys import CONFIG

HOST_SOURCE = re.compile(r"^[a-z0-9.-]+$")

# The web client is plain ES modules and stylesheets from /static; nothing inline, nothing third-party.
# img-src allows data: for the blank favicon (`<link rel=icon href="data:,">`) and blob: for pictures a
# page may build locally; media is MediaStreams (srcObject), which CSP does not govern, blob: is for
# recordings played back. connect-src 'self' covers ws:/wss: to this same host and port (CSP Level 3;
# checked in Chromium by tests/browser/test_csp.py).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
])

# Meetings need camera, microphone and screen capture on this origin; everything else is off. Only
# features Chromium knows are listed: an unknown one is a console error on every page.
PERMISSIONS_POLICY = ", ".join([
    "camera=(self)",
    "microphone=(self)",
    "display-capture=(self)",
    "fullscreen=(self)",
    "clipboard-write=(self)",
    "autoplay=(self)",
    "geolocation=()",
    "payment=()",
    "usb=()",
    "serial=()",
    "hid=()",
    "midi=()",
    "magnetometer=()",
    "gyroscope=()",
    "accelerometer=()",
])

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": PERMISSIONS_POLICY,
}

# aiohttp announces "Python/3.x aiohttp/3.x": no versions for whoever probes the server.
SERVER_NAME = "Convene"


def worker_sockets(request: web.Request, config: Config) -> list[str]:
    """With `--workers N` placement may send a page of this process to another worker's signaling socket, on
    the next ports: at the worker's own URL (the default organisation's) or at the page's Host name (another
    organisation's, signaling/rest.py worker_base_url). 'self' covers only this port."""
    if config.workers <= 1 or config.media_only:
        return []
    sources = []
    for index in range(1, config.workers):
        own = urlsplit(replace(config, port=config.port + index, public_url=None).url)
        for scheme, host in ((own.scheme, own.hostname), (request.scheme, host_name(request.host or ""))):
            if host and HOST_SOURCE.match(host):  # an IPv6 literal is not a CSP host
                sources.append(f"{'wss' if scheme == 'https' else 'ws'}://{host}:{config.port + index}")
    return list(dict.fromkeys(sources))


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    sockets = worker_sockets(request, request.app[CONFIG])
    if sockets and response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "connect-src 'self'", " ".join(["connect-src 'self'", *sockets]))
    response.headers["Server"] = SERVER_NAME


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(_add_security_headers)
