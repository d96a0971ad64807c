"""Security headers on every kind of HTTP response of a real server (signaling/headers.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import aiohttp
from aiohttp.test_utils import make_mocked_request

from chat.web import CHAT_API
from common.config import Config
from signaling.headers import CONTENT_SECURITY_POLICY, worker_sockets
from tests.conftest import RunningServer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16


def assert_secured(headers: Mapping[str, str], what: str, csp: str = CONTENT_SECURITY_POLICY) -> None:
    h = {k.lower(): v for k, v in headers.items()}
    assert h.get("content-security-policy") == csp, what
    assert h.get("referrer-policy") == "no-referrer", what
    assert h.get("x-content-type-options") == "nosniff", what
    assert h.get("x-frame-options") == "DENY", what
    policy = h.get("permissions-policy", "")
    for feature in ("camera=(self)", "microphone=(self)", "display-capture=(self)", "geolocation=()"):
        assert feature in policy, (what, policy)
    # No product version for whoever probes the server.
    assert h.get("server") == "Convene", (what, h.get("server"))


async def test_every_kind_of_response_carries_the_headers(server: RunningServer) -> None:
    cases = [
        ("GET", "/", 200, "text/html"),
        ("GET", "/r/x", 200, "text/html"),
        ("GET", "/static/style.css", 200, "text/css"),
        ("GET", "/static/meeting.js", 200, "javascript"),
        ("GET", "/chat", 200, "text/html"),
        ("GET", "/v1/rooms", 401, "application/json"),  # no API key
        ("GET", "/no/such/page", 404, "application/json"),  # no route
        ("GET", "/static/no-such-file.js", 404, ""),  # static route, no file (aiohttp answers it itself)
        ("DELETE", "/", 405, "application/json"),
        ("HEAD", "/", 200, "text/html"),
    ]
    async with aiohttp.ClientSession() as http:
        for method, path, status, content_type in cases:
            async with http.request(method, server.url + path) as r:
                what = f"{method} {path}"
                assert r.status == status, what
                assert content_type in r.headers.get("Content-Type", ""), what
                assert_secured(r.headers, what)
        async with http.get(server.url + "/v1/rooms", headers={"Authorization": f"Bearer {server.api_key}"}) as r:
            assert r.status == 200
            assert_secured(r.headers, "GET /v1/rooms with a key")


async def test_a_download_keeps_its_own_sandbox_policy(server: RunningServer) -> None:
    """A handler's own Content-Security-Policy is not overwritten: downloads stay `sandbox`."""
    api = server.app[CHAT_API]
    await api.service.add_user(None, "ann", "member")
    token = api.auth.mint_user_token("ann", 3600)
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        form.add_field("file", PNG, filename="pic.png", content_type="image/png")
        async with http.post(server.url + "/v1/files", data=form, headers=auth) as r:
            assert r.status == 201, await r.text()
            file_id = (await r.json())["file"]["id"]
            assert_secured(r.headers, "POST /v1/files")
        async with http.get(server.url + f"/v1/files/{file_id}", headers=auth) as r:
            assert r.status == 200 and await r.read() == PNG
            assert_secured(r.headers, "GET /v1/files/{id}", csp="sandbox")



def test_pages_may_reach_the_other_workers_sockets(tmp_path: Path) -> None:
    """With --workers 3 the first worker's pages may open the sockets of workers 2 and 3 (placement sends them
    there): at the workers' own address and at the page's Host name (an organisation's, #10); nothing else."""
    config = Config(data_dir=tmp_path, host="127.0.0.1", port=8080, workers=3, worker_id="w0")
    page = make_mocked_request("GET", "/r/standup", headers={"Host": "Chat.Acme.Example:8080"})
    assert worker_sockets(page, config) == ["ws://127.0.0.1:8081", "ws://chat.acme.example:8081",
                                            "ws://127.0.0.1:8082", "ws://chat.acme.example:8082"]
    assert worker_sockets(page, replace(config, workers=1)) == []
    assert worker_sockets(page, replace(config, media_only=True)) == []  # a media worker serves no pages
    odd = make_mocked_request("GET", "/", headers={"Host": "[::1]:8080"})  # no IPv6 literal in a CSP host
    assert worker_sockets(odd, config) == ["ws://127.0.0.1:8081", "ws://127.0.0.1:8082"]
