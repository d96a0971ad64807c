"""Where the server may send outgoing webhooks: http(s) URLs only, and public addresses only unless the operator
allows private ones (--hooks-allow-private).

Without the guard anyone who may make a hook could make the server POST into its own network (a metadata service
at 169.254.169.254, an admin port on 127.0.0.1, the office LAN) and read the answers back into a channel. Names
are checked when they are resolved for each connection (GuardedResolver), so a name that resolves to a public
address when the hook is made and to a private one later (DNS rebinding) is refused as well; a literal address is
checked when the hook is made and again before each send.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from common.errors import InvalidField

MAX_URL = 2048


class AddressRefused(OSError):
    """The URL's host is (or resolves only to) an address outgoing hooks may not reach."""


def public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


def literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def check_url(url: object, allow_private: bool, field: str = "url") -> str:
    """The URL if hooks may send to it, else InvalidField."""
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise InvalidField(f"{field} must be an http(s) URL of at most {MAX_URL} characters", field=field)
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # "http://[nope" and the like
        raise InvalidField(f"{field} must be an http(s) URL", field=field) from exc
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password or \
            any(c.isspace() for c in url):
        raise InvalidField(f"{field} must be an http(s) URL with a host and no credentials", field=field)
    literal = literal_address(host)
    if literal is not None and not allow_private and not public_address(literal):
        raise InvalidField(f"{field} names a private address; the server sends hooks to public ones only",
                           field=field)
    return url


class GuardedResolver(AbstractResolver):
    """Resolves as usual and keeps only the public addresses (all when private ones are allowed)."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if self._allow_private or public_address(r["host"])]
        if not kept:
            raise AddressRefused(f"{host} resolves to no public address")
        return kept

    async def close(self) -> None:
        await self._inner.close()
