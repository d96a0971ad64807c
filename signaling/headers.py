"""Security headers on every HTTP response: pages, static files, JSON, errors and 404s.

They are set from `on_response_prepare`, not a middleware: a middleware never sees the responses of
aiohttp's static route or of requests no route matched, the signal sees every prepared response.
A header a handler set itself wins (a file download keeps its stricter `Content-Security-Policy: sandbox`).
"""

from __future__ import annotations

from aiohttp import web

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


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = SERVER_NAME


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(_add_security_headers)
