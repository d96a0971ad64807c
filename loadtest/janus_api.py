"""A small client of the Janus HTTP API (sessions, plugin handles, long-poll events, keepalives) and of
the VideoRoom requests the comparison needs: create a room, publish with a JSEP offer, subscribe to a
feed and answer Janus's offer.

Janus acknowledges asynchronous plugin requests at once and delivers their result later, tagged with the
request's transaction, on the session's long poll (GET /janus/<session>).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger("convene.loadtest.janus_api")

VIDEOROOM = "janus.plugin.videoroom"
REQUEST_TIMEOUT = 15.0
KEEPALIVE_INTERVAL = 20.0
MAX_EVENTS_PER_POLL = 20

Json = dict[str, Any]


class JanusError(RuntimeError):
    """Janus or a plugin refused a request, or it did not answer in time."""


@dataclass
class PluginEvent:
    data: Json  # the plugin's answer (plugindata.data)
    jsep: Json | None  # the SDP that came with it, if any


def plugin_error(message: Json) -> str | None:
    if message.get("janus") == "error":
        error = message.get("error", {})
        return f"janus error {error.get('code')}: {error.get('reason')}"
    data = message.get("plugindata", {}).get("data", {})
    if "error" in data:
        return f"plugin error {data.get('error_code')}: {data['error']}"
    return None


class JanusSession:
    """One Janus session over HTTP: attach handles, send requests, receive their events."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session_id: int | None = None
        self._http: aiohttp.ClientSession | None = None
        self._transactions = (f"t{n}" for n in itertools.count())
        self._pending: dict[str, asyncio.Future[Json]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.unsolicited: list[Json] = []  # webrtcup, media, slowlink, hangup...

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.session_id}"

    async def open(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        reply = await self._post(self.base_url, {"janus": "create"})
        self.session_id = int(reply["data"]["id"])
        self._tasks = [asyncio.create_task(self._poll()), asyncio.create_task(self._keepalive())]

    async def attach(self, plugin: str = VIDEOROOM) -> JanusHandle:
        reply = await self._post(self.url, {"janus": "attach", "plugin": plugin})
        return JanusHandle(self, int(reply["data"]["id"]))

    async def _post(self, url: str, body: Json) -> Json:
        assert self._http is not None
        body = {**body, "transaction": next(self._transactions)}
        async with self._http.post(url, json=body, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as response:
            reply: Json = await response.json(content_type=None)
        error = plugin_error(reply)
        if error:
            raise JanusError(f"{body.get('janus')} {body.get('body', {}).get('request', '')}: {error}")
        return reply

    async def request(self, handle_id: int, body: Json, jsep: Json | None = None) -> Json:
        """A synchronous plugin request: the answer comes in the HTTP response."""
        message: Json = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        reply = await self._post(f"{self.url}/{handle_id}", message)
        data: Json = reply.get("plugindata", {}).get("data", {})
        return data

    async def message(self, handle_id: int, body: Json, jsep: Json | None = None) -> PluginEvent:
        """An asynchronous plugin request: acknowledged now, answered by an event on the long poll."""
        assert self._http is not None
        transaction = next(self._transactions)
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future
        message: Json = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            message["jsep"] = jsep
        try:
            async with self._http.post(f"{self.url}/{handle_id}", json=message,
                                       timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as response:
                ack: Json = await response.json(content_type=None)
            if plugin_error(ack):
                raise JanusError(f"{body.get('request')}: {plugin_error(ack)}")
            event = await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except TimeoutError as exc:
            raise JanusError(f"{body.get('request')}: no answer in {REQUEST_TIMEOUT:.0f} s") from exc
        finally:
            self._pending.pop(transaction, None)
        error = plugin_error(event)
        if error:
            raise JanusError(f"{body.get('request')}: {error}")
        return PluginEvent(event.get("plugindata", {}).get("data", {}), event.get("jsep"))

    async def _poll(self) -> None:
        assert self._http is not None
        while True:
            try:
                async with self._http.get(self.url, params={"maxev": str(MAX_EVENTS_PER_POLL)},
                                          timeout=aiohttp.ClientTimeout(total=60)) as response:
                    events = await response.json(content_type=None)
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("janus long poll: %s", exc)
                await asyncio.sleep(0.5)
                continue
            for event in events if isinstance(events, list) else [events]:
                self._dispatch(event)

    def _dispatch(self, event: Json) -> None:
        future = self._pending.get(str(event.get("transaction")))
        if event.get("janus") == "keepalive":
            return
        if future is not None and not future.done() and event.get("janus") in ("event", "error"):
            future.set_result(event)
        else:
            self.unsolicited.append(event)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_INTERVAL)
            try:
                await self._post(self.url, {"janus": "keepalive"})
            except (TimeoutError, aiohttp.ClientError, JanusError) as exc:
                log.warning("janus keepalive: %s", exc)

    def count(self, kind: str, sender: int | None = None) -> int:
        """How many unsolicited events of a kind (e.g. "webrtcup") arrived (from one handle)."""
        return sum(1 for event in self.unsolicited
                   if event.get("janus") == kind and sender in (None, event.get("sender")))

    async def wait_event(self, kind: str, sender: int, timeout: float = REQUEST_TIMEOUT) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.count(kind, sender):
            if asyncio.get_running_loop().time() > deadline:
                raise JanusError(f"no {kind} from handle {sender} in {timeout:.0f} s")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            if self.session_id is not None:
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, JanusError):
                    await self._post(self.url, {"janus": "destroy"})
            await self._http.close()


@dataclass
class JanusHandle:
    session: JanusSession
    handle_id: int

    async def request(self, body: Json, jsep: Json | None = None) -> Json:
        return await self.session.request(self.handle_id, body, jsep)

    async def message(self, body: Json, jsep: Json | None = None) -> PluginEvent:
        return await self.session.message(self.handle_id, body, jsep)

    async def wait_event(self, kind: str, timeout: float = REQUEST_TIMEOUT) -> None:
        await self.session.wait_event(kind, self.handle_id, timeout)


async def create_room(handle: JanusHandle, room: int, publishers: int = 1) -> None:
    data = await handle.request({"request": "create", "room": room, "publishers": publishers,
                                 "videocodec": "vp8", "audiocodec": "opus", "permanent": False})
    if data.get("videoroom") != "created":
        raise JanusError(f"create room: unexpected answer {data}")


async def publish(handle: JanusHandle, room: int, offer_sdp: str) -> tuple[int, str]:
    """Joins `room` as its publisher with an offer; returns the feed id and Janus's answer. The feed
    exists for subscribers once the publisher's connection is up (`wait_event("webrtcup")`)."""
    event = await handle.message({"request": "joinandconfigure", "room": room, "ptype": "publisher",
                                  "display": "publisher", "audio": True, "video": True},
                                 {"type": "offer", "sdp": offer_sdp})
    if event.data.get("videoroom") != "joined" or event.jsep is None:
        raise JanusError(f"publish: unexpected answer {event.data}")
    return int(event.data["id"]), str(event.jsep["sdp"])


async def subscribe(handle: JanusHandle, room: int, feed: int, answer: Callable[[str], Awaitable[str]]) -> None:
    """Joins `room` as a subscriber of `feed`, answers Janus's offer with `answer` and starts the flow."""
    event = await handle.message({"request": "join", "room": room, "ptype": "subscriber",
                                  "streams": [{"feed": feed}]})
    if event.data.get("videoroom") != "attached" or event.jsep is None:
        raise JanusError(f"subscribe: unexpected answer {event.data}")
    answer_sdp = await answer(str(event.jsep["sdp"]))
    started = await handle.message({"request": "start"}, {"type": "answer", "sdp": answer_sdp})
    if started.data.get("started") != "ok":
        raise JanusError(f"start: unexpected answer {started.data}")
