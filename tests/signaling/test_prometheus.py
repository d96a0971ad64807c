"""GET /metrics on a real server after some traffic, parsed with prometheus_client's own parser: the convene_*
families are there with their types and base units, counters end in _total, HTTP durations are labelled by
route template, and no label value names a user, a room, a channel or a token. Only the admin key and the scrape token of --metrics-token-file read it; the token reaches nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from signaling.client import SignalingClient
from common.errors import InvalidConfig
from signaling.prometheus import PROMETHEUS, read_scrape_token
from transcribe.web import TRANSCRIBE
from tests.conftest import running_server, server_config

ROOM = "secret-room-name"
USER = "zelda-the-user"
CHANNEL = "hidden-channel-name"


async def test_scrape_after_traffic(tmp_path: Path) -> None:
    async with running_server(server_config(tmp_path / "data")) as server, aiohttp.ClientSession() as http:
        admin = {"Authorization": f"Bearer {server.api_key}"}

        async def call(method: str, path: str, body: object = None, headers: dict[str, str] = admin) -> object:
            async with http.request(method, server.url + path, json=body, headers=headers) as r:
                assert r.status < 300, (path, r.status, await r.text())
                return await r.json()

        await call("POST", "/v1/users", {"login": USER, "role": "member"})
        token = (await call("POST", f"/v1/users/{USER}/tokens", {}))["token"]  # type: ignore[index]
        channel = await call("POST", "/v1/channels", {"kind": "team", "name": CHANNEL, "members": [USER]})
        for n in range(3):
            await call("POST", "/v1/messages", {"to": CHANNEL, "content": f"hello {n}"})
        await call("GET", f"/v1/channels/{channel['id']}/messages")  # type: ignore[index]
        async with http.get(server.url + "/v1/rooms/nope-" + USER, headers=admin) as r:
            assert r.status == 404
        joined = await call("POST", f"/v1/rooms/{ROOM}/join", {"name": USER})
        signaling = SignalingClient(server.url, ROOM, joined["token"])  # type: ignore[index]
        chat_ws = await http.ws_connect(server.url.replace("http", "ws", 1) + "/v1/chat/ws")
        try:
            await signaling.connect()
            await chat_ws.send_str(json.dumps({"type": "auth", "token": token}))
            assert json.loads((await chat_ws.receive(timeout=5)).data)["type"] == "hello"

            # The caption engine reports each stream's lag after an inference (no model in this test).
            server.app[TRANSCRIBE].engine.metrics.observe_lag(1.2)
            async with http.get(server.url + "/metrics", headers=admin) as r:
                assert r.status == 200 and r.content_type == "text/plain"
                text = await r.text()
        finally:
            await chat_ws.close()
            await signaling.close()

        families = {f.name: f for f in text_string_to_metric_families(text)}
        want = {
            "convene_http_request_duration_seconds": "histogram",
            "convene_database_operation_duration_seconds": "histogram",
            "convene_caption_lag_seconds": "histogram",
            "convene_chat_messages": "counter",
            "convene_websocket_connections": "gauge",
            "convene_rooms": "gauge",
            "convene_participants": "gauge",
            "convene_forwarded_packets": "counter",
            "convene_forwarded_bytes": "counter",
            "convene_process_cpu_seconds": "counter",
            "convene_process_resident_memory_bytes": "gauge",
        }
        assert {name: families[name].type for name in want if name in families} == want
        assert all(name.startswith("convene_") for name in families)
        samples: list[Sample] = [s for f in families.values() for s in f.samples]
        for family in families.values():  # a counter's samples are NAME_total (and NAME_created)
            if family.type == "counter":
                assert all(s.name in (family.name + "_total", family.name + "_created") for s in family.samples)

        def value(name: str, **labels: str) -> float:
            found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
            assert found, (name, labels)
            return found[0]

        # Route templates, never concrete paths.
        routes = {s.labels["route"] for s in samples if s.name == "convene_http_request_duration_seconds_count"}
        assert {"/v1/messages", "/v1/channels/{id}/messages", "/v1/rooms/{room}", "/v1/rooms/{room}/join"} <= routes
        assert value("convene_http_request_duration_seconds_count", method="POST", route="/v1/messages",
                     status_class="2xx") == 3
        assert value("convene_http_request_duration_seconds_count", method="GET", route="/v1/rooms/{room}",
                     status_class="4xx") == 1
        assert value("convene_chat_messages_total", channel_kind="team") == 3
        assert value("convene_websocket_connections", kind="signaling") == 1
        assert value("convene_websocket_connections", kind="chat") == 1
        assert value("convene_rooms") == 1 and value("convene_participants") == 1
        assert value("convene_database_operation_duration_seconds_count", operation="write") > 0
        assert value("convene_database_operation_duration_seconds_count", operation="read") > 0
        assert value("convene_forwarded_packets_total") == 0  # nobody published media
        assert value("convene_caption_lag_seconds_count") == 1
        assert value("convene_caption_lag_seconds_bucket", le="1.5") == 1 and value(
            "convene_caption_lag_seconds_bucket", le="1.0") == 0

        # Nothing personal in any label.
        label_values = {v for s in samples for v in s.labels.values()}
        for secret in (ROOM, USER, CHANNEL, channel["id"], token, server.api_key):  # type: ignore[index]
            assert not any(secret in v for v in label_values), secret
        assert {k for s in samples for k in s.labels} <= {"method", "route", "status_class", "operation", "kind",
                                                          "channel_kind", "le"}


async def test_only_the_admin_key_reads_metrics_and_two_apps_keep_their_own_registries(tmp_path: Path) -> None:
    async with running_server(server_config(tmp_path / "a")) as a, running_server(server_config(tmp_path / "b")) as b:
        assert a.app[PROMETHEUS].registry is not b.app[PROMETHEUS].registry
        async with aiohttp.ClientSession() as http:
            async with http.get(a.url + "/metrics") as r:
                assert r.status == 401
            async with http.post(a.url + "/v1/users", json={"login": "mo", "role": "member"},
                                 headers={"Authorization": f"Bearer {a.api_key}"}) as r:
                assert r.status == 201
            async with http.post(a.url + "/v1/users/mo/tokens", json={},
                                 headers={"Authorization": f"Bearer {a.api_key}"}) as r:
                member_token = (await r.json())["token"]
            async with http.get(a.url + "/metrics", headers={"Authorization": f"Bearer {member_token}"}) as r:
                assert r.status == 403
            async with http.get(b.url + "/metrics", headers={"Authorization": f"Bearer {a.api_key}"}) as r:
                assert r.status == 401  # a's key is not b's
            async with http.get(b.url + "/metrics", headers={"Authorization": f"Bearer {b.api_key}"}) as r:
                text = await r.text()
        posts_on_b = [s for f in text_string_to_metric_families(text) for s in f.samples
                      if s.name == "convene_http_request_duration_seconds_count" and s.labels["route"] == "/v1/users"]
        assert posts_on_b == []  # a's requests are a's alone


async def test_a_scrape_token_reaches_metrics_and_nothing_else(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics.token"
    token = "s" * 24 + "crape-token-of-prometheus"
    token_file.write_text(token + "\n")
    config = server_config(tmp_path / "data", metrics_token_file=token_file)
    async with running_server(config) as server, aiohttp.ClientSession() as http:
        async def status(path: str, bearer: str) -> tuple[int, str]:
            async with http.get(server.url + path, headers={"Authorization": f"Bearer {bearer}"}) as r:
                body = await r.text()
                code = json.loads(body)["error"]["code"] if r.content_type == "application/json" and r.status >= 400 \
                    else ""
                return r.status, code

        assert (await status("/metrics", token))[0] == 200
        assert (await status("/metrics", server.api_key))[0] == 200  # the admin key still scrapes
        assert await status("/metrics", token[:-1] + "x") == (401, "invalid_token")
        for path in ("/v1/metrics", "/v1/rooms", "/v1/me", "/v1/audit"):
            assert (await status(path, token))[0] == 401, path


def test_a_short_or_missing_scrape_token_file_is_refused_at_start(tmp_path: Path) -> None:
    short = tmp_path / "short.token"
    short.write_text("too-short\n")
    for path, words in ((short, "at least 32"), (tmp_path / "absent", "cannot read")):
        with pytest.raises(InvalidConfig) as refused:
            read_scrape_token(path)
        assert refused.value.code == "invalid_config" and words in refused.value.message
    assert read_scrape_token(None) is None
