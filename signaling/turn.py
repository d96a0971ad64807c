"""ICE servers and settings the front door derives from Config (docs/deploy.md "NAT" and "TURN").

Clients get, in `joined.ice_servers`, RTCIceServer objects: the STUN URL, and the TURN URLs with
time-limited credentials in coturn's `use-auth-secret` scheme (the "TURN REST API"): username
`<expiry unix time>:<identity>`, credential base64(HMAC-SHA1(secret, username)). The TURN server checks
them with the same secret and nothing else; a leaked credential stops working at its expiry.

The server's own peer connections use the STUN URL (a server-reflexive candidate names the public address
when --announce-ip is not set) but never TURN: a server is reached directly, on its own or its announced
address, and relaying its side too would only add a hop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any

from common.config import Config
from common.errors import InvalidConfig
from sfu.webrtc import IceConfigError, configure_ice, loopback_host

# What browsers and aioice accept: turns only over TCP (TLS), turn over UDP or TCP.
TURN_URL = re.compile(r"(?P<scheme>turns?):(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:(?P<port>\d{1,5}))?"
                      r"(\?transport=(?P<transport>udp|tcp))?")
STUN_URL = re.compile(r"stun:(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:(?P<port>\d{1,5}))?")


class IceSettingsError(ValueError):
    """A TURN or STUN setting that cannot work (the server refuses to start with it)."""


def check_turn_url(url: str) -> str:
    match = TURN_URL.fullmatch(url.strip())
    if match is None:
        raise IceSettingsError(f"turn-url: {url!r} is not turn:HOST[:PORT][?transport=udp|tcp] or turns:HOST[:PORT]"
                               "?transport=tcp")
    if match["scheme"] == "turns" and match["transport"] == "udp":
        raise IceSettingsError(f"turn-url: {url!r}: turns (TLS) runs over TCP only")
    if match["port"] is not None and not 1 <= int(match["port"]) <= 65535:
        raise IceSettingsError(f"turn-url: {url!r}: bad port")
    return url.strip()


def check_stun_url(url: str) -> str:
    match = STUN_URL.fullmatch(url.strip())
    if match is None or (match["port"] is not None and not 1 <= int(match["port"]) <= 65535):
        raise IceSettingsError(f"stun-url: {url!r} is not stun:HOST[:PORT]")
    return url.strip()


def check_ice_settings(config: Config) -> None:
    """Raises IceSettingsError for a TURN/STUN setting that cannot work (addresses and ports: sfu checks)."""
    for url in config.turn_urls:
        check_turn_url(url)
    if config.turn_urls and not config.turn_secret:
        raise IceSettingsError("turn-url needs --turn-secret (or CONVENE_TURN_SECRET): the shared secret of the "
                               "TURN server's use-auth-secret")
    if config.turn_secret and not config.turn_urls:
        raise IceSettingsError("turn-secret without --turn-url: no TURN server to hand out")
    if config.stun_url is not None:
        check_stun_url(config.stun_url)
    if config.turn_credential_ttl_seconds <= 0:
        raise IceSettingsError("the TURN credential lifetime must be positive")


def turn_credentials(secret: str, identity: str, ttl_seconds: int, now: float | None = None) -> tuple[str, str]:
    """(username, credential) valid for `ttl_seconds` from `now`, in coturn's use-auth-secret scheme."""
    expiry = int(now if now is not None else time.time()) + ttl_seconds
    username = f"{expiry}:{identity}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def client_ice_servers(config: Config, identity: str, now: float | None = None) -> list[str | dict[str, Any]]:
    """What a client gets in `joined.ice_servers`: plain URLs from CONVENE_ICE_SERVERS as before, then the
    STUN server and one TURN entry listing every TURN URL (browsers try them all; our aiortc peers too)."""
    servers: list[str | dict[str, Any]] = list(config.ice_servers)
    if config.stun_url:
        servers.append({"urls": [config.stun_url]})
    if config.turn_urls and config.turn_secret:
        username, credential = turn_credentials(config.turn_secret, identity, config.turn_credential_ttl_seconds, now)
        servers.append({"urls": list(config.turn_urls), "username": username, "credential": credential})
    return servers


def server_ice_servers(config: Config) -> list[str]:
    """The server's own peer connections: the plain URLs and STUN, never TURN (see the module's doc)."""
    return [*config.ice_servers, *([config.stun_url] if config.stun_url else [])]


def ice_gathering_args(config: Config) -> dict[str, Any]:
    """sfu.webrtc.configure_ice's arguments: 127.0.0.1 gathers only when serving on loopback."""
    return {"include_loopback": loopback_host(config.host), "announce_ip": config.announce_ip,
            "rtc_ips": config.rtc_ips, "port_range": config.rtc_port_range}


def configure_server_ice(config: Config) -> None:
    """Checks the ICE settings and installs them process-wide; InvalidConfig names what cannot work."""
    try:
        check_ice_settings(config)
        configure_ice(**ice_gathering_args(config))
    except (IceSettingsError, IceConfigError) as exc:
        raise InvalidConfig(str(exc)) from None
