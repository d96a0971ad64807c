"""Which browser pages may open our WebSockets, and keeping credentials out of URLs.

A browser sends the page's `Origin` with a WebSocket handshake but, unlike fetch, never blocks a
cross-site socket: without this check any web page a user visits could open a socket to us with the
user's cookies or ambient network access. Clients that are not browsers (bots, aiortc tests) send no
Origin and are allowed: they hold a token anyway.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable

from aiohttp import web

from common.config import Config
from common.errors import OriginRefused, TokenInUrl

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize_origin(value: str) -> str | None:
    """`HTTPS://Example.com:443/` -> `https://example.com`; None for what is not an origin (e.g. `null`)."""
    try:
        parts = urllib.parse.urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    shown_port = f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else ""
    return f"{scheme}://{host}{shown_port}"


def trusted_origins(request: web.Request, config: Config) -> set[str]:
    """The server's own origin as this request reached it, its configured URL, and the allowed list."""
    candidates = [f"{request.scheme}://{request.host}", config.url, *config.allowed_origins]
    return {o for o in (normalize_origin(c) for c in candidates) if o is not None}


def rehosted(origins: Iterable[str], host: str) -> set[str]:
    """`origins` at another host name, each keeping its scheme and port (`host` as `identity.orgs.host_name`)."""
    moved = set()
    for origin in origins:
        parts = urllib.parse.urlsplit(normalize_origin(origin) or "")
        if parts.scheme and parts.hostname:
            port = f":{parts.port}" if parts.port is not None else ""
            moved.add(normalize_origin(f"{parts.scheme}://{host}{port}"))
    return {o for o in moved if o is not None}


def check_origin(request: web.Request, config: Config, also: Iterable[str] = ()) -> None:
    """Raises OriginRefused (403) for a browser page on another origin (not ours, nor in `also`); call before
    the upgrade."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    normalized = normalize_origin(origin)
    if normalized is None or normalized not in trusted_origins(request, config) | set(also):
        raise OriginRefused(f"WebSockets from {origin!r} are not allowed (see --allowed-origins)")


def refuse_token_in_url(request: web.Request, instead: str) -> None:
    """A `?token=` would land in access logs and browser history: refused, whatever else the request has."""
    if "token" in request.query:
        raise TokenInUrl(f"credentials are not accepted in the URL; {instead}")
