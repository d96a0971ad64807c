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


# IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64 (RFC 6052 well-known, RFC 8215 local use),
# IPv4-translated ::ffff:0:0:0/96 (SIIT) and the deprecated IPv4-compatible ::/96. Python 3.11 calls some of them global whatever the IPv4 inside.
_V4_IN_LOW_BITS = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"),
                   ipaddress.IPv6Network("::ffff:0:0:0/96"), ipaddress.IPv6Network("::/96"))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64, IPv4-compatible), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _V4_IN_LOW_BITS) and int(ip) > 1:  # not :: nor ::1, judged as IPv6 below
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None and not public_address(str(inner)):
            return False  # the packet ends up at a private IPv4 address, whatever the IPv6 wrapper's class
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
