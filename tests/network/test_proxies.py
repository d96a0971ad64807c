"""Behind a reverse proxy: X-Forwarded-For/-Proto are believed only from --trusted-proxies, and then they decide the
address the guest-join limit counts and the scheme the WebSocket Origin check compares."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from common.errors import InvalidConfig
from signaling.proxies import client_address, forwarded_scheme, parse_networks
from tests.conftest import running_server, server_config

LOOPBACK = ("127.0.0.1/32",)
# Addresses below only appear inside headers (documentation ranges): no traffic goes anywhere but loopback.
ALICE, BOB = "198.51.100.1", "198.51.100.2"


def test_the_client_is_the_first_address_from_the_right_that_is_not_a_trusted_proxy() -> None:
    nets = parse_networks(["127.0.0.1/32", "10.0.0.0/8"])
    assert client_address("127.0.0.1", [ALICE], nets) == ALICE
    assert client_address("127.0.0.1", [f"{ALICE}, 10.1.2.3"], nets) == ALICE  # two proxies
    assert client_address("127.0.0.1", ["6.6.6.6", f"{ALICE}, 10.1.2.3"], nets) == ALICE  # spoofed hop ignored
    assert client_address("127.0.0.1", [f"{ALICE}, 6.6.6.6"], nets) == "6.6.6.6"  # the proxy saw 6.6.6.6
    assert client_address("127.0.0.1", ["not-an-ip"], nets) == "127.0.0.1"  # garbage: the proxy itself
    assert client_address("127.0.0.1", ["10.9.9.9"], nets) == "10.9.9.9"  # all trusted: the leftmost
    assert client_address("127.0.0.1", [], nets) == "127.0.0.1"
    assert client_address("::ffff:127.0.0.1", [ALICE], nets) == ALICE  # a dual-stack socket's IPv4 peer
    assert client_address("192.0.2.9", [ALICE], nets) == "192.0.2.9"  # not from a proxy: header ignored
    assert client_address("::1", [ALICE], parse_networks(["::1"])) == ALICE


def test_the_scheme_is_the_nearest_proxys_and_only_http_or_https() -> None:
    assert forwarded_scheme(["https"]) == "https"
    assert forwarded_scheme(["http, https"]) == "https"
    assert forwarded_scheme(["HTTPS"]) == "https"
    assert forwarded_scheme(["javascript"]) is None
    assert forwarded_scheme([]) is None


def test_a_trusted_proxy_entry_must_be_an_address_or_a_network() -> None:
    assert [str(n) for n in parse_networks(["10.0.0.0/8", "192.168.1.5", "fd00::/8"])] == \
        ["10.0.0.0/8", "192.168.1.5/32", "fd00::/8"]
    with pytest.raises(InvalidConfig):
        parse_networks(["proxy.example"])


async def guest_joins(url: str, forwarded_for: list[str]) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession() as http:
        for i, address in enumerate(forwarded_for):
            async with http.post(f"{url}/v1/rooms/proxied-{i}/join", json={"name": "Guest"},
                                 headers={"X-Forwarded-For": address}) as r:
                statuses.append(r.status)
    return statuses


@pytest.mark.parametrize("trusted, expected", [
    (LOOPBACK, [201, 201, 429, 201]),  # two guests behind the proxy, each with their own limit
    ((), [201, 201, 429, 429]),  # no trusted proxies: the header is ignored, the peer is one address
    (("10.0.0.0/8",), [201, 201, 429, 429]),  # a proxy network that is not where the request comes from
], ids=["trusted", "no-proxies", "other-network"])
async def test_the_guest_join_limit_counts_the_forwarded_client_only_from_a_trusted_proxy(
        tmp_path: Path, trusted: tuple[str, ...], expected: list[int]) -> None:
    config = server_config(tmp_path / "data", trusted_proxies=trusted, guest_joins_per_minute=2)
    async with running_server(config) as server:
        assert await guest_joins(server.url, [ALICE, ALICE, ALICE, BOB]) == expected


async def socket_status(url: str, headers: dict[str, str]) -> int:
    ws_url = url.replace("http", "ws", 1) + "/v1/rooms/proxied/ws"
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(ws_url, headers=headers):
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


@pytest.mark.parametrize("trusted, proto, expected", [
    (LOOPBACK, "https", 101),  # the page is https://meet.example.com, the proxy says so: the same origin
    (LOOPBACK, None, 403),  # without X-Forwarded-Proto the request looks like http://meet.example.com
    ((), "https", 403),  # the header from a peer that is not a trusted proxy is ignored
], ids=["trusted-https", "trusted-no-proto", "untrusted-https"])
async def test_the_origin_check_compares_the_scheme_a_trusted_proxy_reports(
        tmp_path: Path, trusted: tuple[str, ...], proto: str | None, expected: int) -> None:
    async with running_server(server_config(tmp_path / "data", trusted_proxies=trusted)) as server:
        headers = {"Origin": "https://meet.example.com", "Host": "meet.example.com"}
        if proto:
            headers["X-Forwarded-Proto"] = proto
        assert await socket_status(server.url, headers) == expected
