"""The server's REST API as a load run uses it: create the room, mint bot tokens, read metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp


class ApiError(Exception):
    pass


@dataclass(frozen=True)
class ServerSample:
    """One reading of GET /v1/metrics?media=false (the server process's counters)."""

    at: float  # time.monotonic() when read
    wall_time: float  # the server's clock when it answered (CPU rates use its intervals, not ours)
    cpu_seconds: float
    rss_bytes: int
    cores: int
    wait_seconds: float | None = None  # run-queue wait, cumulative, when the server runs on this machine


class ServerApi:
    def __init__(self, url: str, api_key: str, session: aiohttp.ClientSession) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._session = session

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
                    timeout: float = 10.0) -> dict[str, Any]:
        async with self._session.request(method, self.url + path, json=body, headers=self._headers,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            data = await response.json(content_type=None)
            if response.status >= 400 or not isinstance(data, dict):
                raise ApiError(f"{method} {path}: HTTP {response.status} {data}")
            return data

    async def create_room(self, room: str, max_participants: int) -> None:
        await self._call("POST", "/v1/rooms", {"name": room, "captions": False,
                                               "max_participants": max_participants})

    async def token(self, room: str, identity: str, name: str) -> str:
        data = await self._call("POST", f"/v1/rooms/{room}/tokens", {"identity": identity, "name": name})
        return str(data["token"])

    async def metrics(self, at: float) -> ServerSample:
        # The process's counters only: the media ones walk every subscription, which would put this poll's own
        # cost (each second) into the server CPU it measures.
        data = await self._call("GET", "/v1/metrics?media=false", timeout=3.0)
        process = data["process"]
        return ServerSample(at=at, wall_time=float(process["wall_time"]), cpu_seconds=float(process["cpu_seconds"]),
                            rss_bytes=int(process["rss_bytes"]), cores=int(process["cores"]))
