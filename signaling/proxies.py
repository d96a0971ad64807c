"""Behind a reverse proxy: the client's address and scheme, believed only from proxies we were told to trust.

A proxy that ends TLS (nginx, Caddy) connects to us over plain http from its own address, so without help every
request looks like `http` from the proxy: the guest-join rate limit (per address) would count all guests as
one, and the WebSocket Origin check would compare the page's `https://` origin with `http://`. Proxies say what
they saw in `X-Forwarded-For` and `X-Forwarded-Proto`. Anyone can send those headers, so they are read only when
the connection comes from a network in `--trusted-proxies`; from any other peer they are ignored.

`X-Forwarded-For` is read right to left (each proxy appends the address it saw): the client is the first
address, from the right, that is not itself a trusted proxy. `X-Forwarded-Proto`: the value the nearest proxy
set (the last one), `http` or `https` only. `Host` is taken as the proxy passes it (nginx needs
`proxy_set_header Host $host`), or from a trusted proxy's `X-Forwarded-Host` (its last value) where it sends one:
the Host picks the request's organisation (identity/orgs.py). `Forwarded` (RFC 7239) is not read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from common.errors import InvalidConfig

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """`10.0.0.0/8`, `192.168.1.5`, `::1` -> networks (a bare address is a /32 or /128); InvalidConfig else."""
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError as exc:
            raise InvalidConfig(f"--trusted-proxies: {item!r} is not an address or CIDR") from exc
    return tuple(networks)


def _address(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; the networks people write are plain IPv4.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: IPAddress | None, networks: tuple[Network, ...]) -> bool:
    return ip is not None and any(ip.version == n.version and ip in n for n in networks)


def client_address(peer: str | None, forwarded_for: Iterable[str], networks: tuple[Network, ...]) -> str | None:
    """The client's address: `peer` unless it is a trusted proxy, then walking X-Forwarded-For from the right
    while each hop is a trusted proxy. A hop that is not an address stops the walk (at the proxy before it)."""
    current = _address(peer)
    if not _trusted(current, networks):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(current, networks):
            break
        ip = _address(hop)
        if ip is None:
            break
        current = ip
    return str(current)


def forwarded_scheme(values: Iterable[str]) -> str | None:
    """The scheme the nearest proxy reports (the last value), if it is http or https."""
    items = [v.strip().lower() for value in values for v in value.split(",") if v.strip()]
    if items and items[-1] in ("http", "https"):
        return items[-1]
    return None


def middleware(networks: tuple[Network, ...]) -> Middleware:
    """Rewrites `request.remote` and `request.scheme` from a trusted proxy's headers before any handler (and the
    other middlewares) sees the request; from anyone else the request passes unchanged."""

    @web.middleware
    async def from_proxy(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.remote
        if peer is None or not _trusted(_address(peer), networks):
            return await handler(request)
        remote = client_address(peer, request.headers.getall("X-Forwarded-For", []), networks) or peer
        scheme = forwarded_scheme(request.headers.getall("X-Forwarded-Proto", [])) or request.scheme
        forwarded_hosts = [h.strip() for v in request.headers.getall("X-Forwarded-Host", []) for h in v.split(",")]
        host = forwarded_hosts[-1] if forwarded_hosts and forwarded_hosts[-1] else request.host
        return await handler(request.clone(remote=remote, scheme=scheme, host=host))

    return from_proxy


def middlewares(trusted_proxies: tuple[str, ...]) -> list[Middleware]:
    """The app's proxy middleware when any proxies are trusted (none otherwise: the headers are never read)."""
    networks = parse_networks(trusted_proxies)
    return [middleware(networks)] if networks else []
