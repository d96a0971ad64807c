"""REST API against a real server: API keys, rooms, tokens, errors on the wire."""

from __future__ import annotations

import aiohttp

from tests.conftest import RunningServer


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_room_lifecycle_and_token(server: RunningServer) -> None:
    async with aiohttp.ClientSession(headers=auth(server.api_key)) as http:
        r = await http.post(f"{server.url}/v1/rooms", json={"name": "weekly", "captions": False})
        assert r.status == 201
        room = await r.json()
        assert room["name"] == "weekly" and room["captions"] is False and room["participants"] == []
        r = await http.get(f"{server.url}/v1/rooms")
        assert [x["name"] for x in (await r.json())["rooms"]] == ["weekly"]
        r = await http.post(f"{server.url}/v1/rooms/weekly/tokens",
                            json={"identity": "carol", "name": "Carol", "grants": {"moderator": True}})
        assert r.status == 201
        body = await r.json()
        assert body["url"].endswith(f"/r/weekly#token={body['token']}")  # a fragment: never sent to a server
        r = await http.get(f"{server.url}/v1/rooms/weekly")
        assert r.status == 200
        r = await http.delete(f"{server.url}/v1/rooms/weekly")
        assert r.status == 200
        r = await http.get(f"{server.url}/v1/rooms/weekly")
        assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"


async def test_bad_requests_get_stable_codes_and_change_nothing(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{server.url}/v1/rooms", json={"name": "x"})
        assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
        r = await http.post(f"{server.url}/v1/rooms", json={"name": "x"}, headers=auth("cvk_nope_nope"))
        assert r.status == 401
        r = await http.post(f"{server.url}/v1/rooms", json={"name": "x"}, headers=auth("forged.jwt.token"))
        assert r.status == 401 and (await r.json())["error"]["code"] == "invalid_token"
        h = auth(server.api_key)
        r = await http.post(f"{server.url}/v1/rooms", data=b"{not json", headers=h)
        assert r.status == 400 and (await r.json())["error"]["code"] == "malformed_json"
        r = await http.post(f"{server.url}/v1/rooms", json={"name": "ok", "colour": "red"}, headers=h)
        assert r.status == 400 and (await r.json())["error"]["code"] == "bad_request"
        r = await http.post(f"{server.url}/v1/rooms", json={"name": "../etc"}, headers=h)
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_field"
        r = await http.post(f"{server.url}/v1/rooms", data=b"x" * (2 * 1024 * 1024), headers=h)
        assert r.status == 413 and (await r.json())["error"]["code"] == "message_too_large"
        r = await http.get(f"{server.url}/v1/rooms", headers=h)
        assert (await r.json())["rooms"] == []  # nothing was created by the bad requests
        # A meeting token is not an API key: it may see its own room, not list or create rooms.
        token = await server.token("mine", "alice")
        r = await http.get(f"{server.url}/v1/rooms", headers=auth(token))
        assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"


async def test_guest_join_makes_first_joiner_moderator(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{server.url}/v1/rooms/coffee/join", json={"name": "Dana"})
        assert r.status == 201 and (await r.json())["moderator"] is True
        r = await http.post(f"{server.url}/v1/rooms/coffee/join", json={"name": "Eve"})
        assert (await r.json())["moderator"] is False
        r = await http.post(f"{server.url}/v1/rooms/coffee/join", json={"name": ""})
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_field"


async def test_metrics_report_process_and_media(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"{server.url}/v1/metrics")
        assert r.status == 401
        r = await http.get(f"{server.url}/v1/metrics", headers=auth(server.api_key))
        body = await r.json()
        # What load tests poll each second: the process's counters without the walk over every subscription.
        r = await http.get(f"{server.url}/v1/metrics?media=false", headers=auth(server.api_key))
        process_only = await r.json()
        r = await http.get(f"{server.url}/v1/metrics?media=no", headers=auth(server.api_key))
        refused = await r.json()
        assert r.status == 400 and refused["error"]["code"] == "invalid_field"
        assert refused["error"]["details"]["field"] == "media"
    assert body["process"]["cpu_seconds"] > 0 and body["process"]["rss_bytes"] > 10_000_000
    assert body["media"]["rooms"] == 0 and body["media"]["packets_forwarded"] == 0
    assert set(process_only) == {"process"} and process_only["process"]["cpu_seconds"] >= body["process"]["cpu_seconds"]
