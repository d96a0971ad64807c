"""Prometheus metrics: `GET /metrics` in the text exposition format (prometheus-client), for a default-organisation
admin API key or the scrape token of `--metrics-token-file` (which reaches nothing else).

Each app has its own CollectorRegistry (app[PROMETHEUS]), so two servers in one process never share a series.
Names carry the `convene_` prefix and base units; counters end in `_total`. Labels never carry a user, a room,
a channel or a token: HTTP requests are labelled by route template (`/v1/rooms/{room}`), status class and method.

What costs nothing per packet or per message is read when Prometheus scrapes: rooms, participants, sockets, and
the SFU's own forwarding counters (the same ones `GET /v1/metrics` sums). The forwarded packet and byte counters
are kept monotonic across subscriptions and participants that come and go by adding each live object's growth
since the previous scrape; what a subscription forwarded after the last scrape before it closed is not counted.
What happens at a known moment is observed then: request durations (a middleware), database time (a hook in
store.Database, two clock reads), caption lag (a hook in the caption engine, once per inference) and chat
messages (the chat bus: with --redis every process sees every message, so sum one process or take max()).
"""

from __future__ import annotations

import hmac
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from chat.web import CHAT_API
from common.errors import InvalidConfig
from identity.appkeys import DATABASE
from identity.auth import credential_of, require_server_admin_key
from signaling.appkeys import CONFIG, ROOMS
from signaling.ws import SESSIONS
from transcribe.web import TRANSCRIBE

log = logging.getLogger(__name__)

PATH = "/metrics"
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_LAG_BUCKETS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0)


class LiveTotal:
    """A monotonic total over objects that come and go, each with a growing counter of its own."""

    def __init__(self) -> None:
        self.total = 0
        self._seen: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()

    def update(self, values: Iterable[tuple[object, int]]) -> int:
        for obj, value in values:
            before = self._seen.get(obj, 0)
            if value > before:
                self.total += value - before
            self._seen[obj] = value
        return self.total


class LiveCollector(Collector):
    """Gauges and the SFU's counters, read from the app's state at each scrape."""

    def __init__(self, app: web.Application) -> None:
        self._app = weakref.ref(app)
        self._packets = LiveTotal()
        self._bytes = LiveTotal()

    def collect(self) -> Iterator[Metric]:
        app = self._app()
        if app is None:
            return
        rooms = app[ROOMS].all()
        yield GaugeMetricFamily("convene_rooms", "Rooms open on this process", value=len(rooms))
        yield GaugeMetricFamily("convene_participants", "Participants in rooms on this process (visible ones)",
                                value=sum(len(r.visible) for r in rooms))
        sockets = GaugeMetricFamily("convene_websocket_connections", "Open WebSocket connections", labels=["kind"])
        sockets.add_metric(["signaling"], len(app[SESSIONS]))
        sockets.add_metric(["chat"], len(app[CHAT_API].hub.sockets()) if CHAT_API in app else 0)
        yield sockets
        subscriptions = [s for r in rooms for pub in r.publications() for s in pub.subscriptions]
        packets = self._packets.update((s, s.packets) for s in subscriptions)
        senders = {id(sender): sender for s in subscriptions
                   if (sender := getattr(s.down, "sender", None)) is not None}
        sent = self._bytes.update((sender, int(getattr(sender, "bytes_sent", 0))) for sender in senders.values())
        yield CounterMetricFamily("convene_forwarded_packets", "RTP packets the SFU forwarded to subscribers",
                                  value=packets)
        yield CounterMetricFamily("convene_forwarded_bytes", "Bytes of RTP the SFU sent to subscribers",
                                  value=sent)


class ConveneMetrics:
    """The app's registry and the metrics observed as things happen."""

    def __init__(self, scrape_token: str | None = None) -> None:
        self.scrape_token = scrape_token
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http = Histogram("convene_http_request_duration_seconds", "HTTP request durations by route template",
                              ["method", "route", "status_class"], buckets=_HTTP_BUCKETS, registry=r)
        self.database = Histogram("convene_database_operation_duration_seconds",
                                  "Time of store reads (connection held) and writes (queued until committed)",
                                  ["operation"], buckets=_DB_BUCKETS, registry=r)
        self.caption_lag = Histogram("convene_caption_lag_seconds",
                                     "Audio received but not yet recognised, after each inference",
                                     buckets=_LAG_BUCKETS, registry=r)
        self.messages = Counter("convene_chat_messages", "Chat messages posted, by channel kind",
                                ["channel_kind"], registry=r)
        ProcessCollector(namespace="convene", registry=r)
        # Messages seen on the bus since the last scrape, by channel id; their kinds are looked up at the scrape.
        self.pending_messages: dict[str, int] = {}
        self._kinds: dict[str, str] = {}

    def on_chat_event(self, event: dict[str, Any], _text: str) -> None:
        if event.get("type") == "message" and isinstance(event.get("channel"), str) and len(self.pending_messages) < 100_000:
            channel = event["channel"]
            self.pending_messages[channel] = self.pending_messages.get(channel, 0) + 1

    async def count_messages(self, kind_of: Callable[[str], Awaitable[str]]) -> None:
        pending, self.pending_messages = self.pending_messages, {}
        for channel, n in pending.items():
            kind = self._kinds.get(channel)
            if kind is None:
                kind = await kind_of(channel)
                if len(self._kinds) > 50_000:
                    self._kinds.clear()
                self._kinds[channel] = kind
            self.messages.labels(kind).inc(n)


PROMETHEUS = web.AppKey("prometheus", ConveneMetrics)


def _route(request: web.Request) -> str:
    """The route template (never the concrete path, which names rooms, users and ids)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _timing_middleware(metrics: ConveneMetrics) -> Any:
    @web.middleware
    async def timing(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                     ) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)  # a socket's lifetime is not a request's duration
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            method = request.method if request.method in _METHODS else "other"
            metrics.http.labels(method, _route(request), f"{status // 100}xx").observe(time.perf_counter() - started)
    return timing


async def _channel_kind(app: web.Application, channel_id: str) -> str:
    channel = await app[CHAT_API].store.get_channel(channel_id)
    return channel.kind if channel is not None else "unknown"


MIN_SCRAPE_TOKEN = 32


def read_scrape_token(path: Path | None) -> str | None:
    """The token in `path` (surrounding blanks dropped), or None without a file; too short or unreadable: refused."""
    if path is None:
        return None
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise InvalidConfig(f"cannot read the metrics token file: {exc.strerror}", field="metrics_token_file") from exc
    if len(token) < MIN_SCRAPE_TOKEN or any(c.isspace() for c in token):
        raise InvalidConfig(f"the metrics token must be at least {MIN_SCRAPE_TOKEN} characters without blanks",
                            field="metrics_token_file")
    return token


def _is_scrape_token(request: web.Request, token: str | None) -> bool:
    value = credential_of(request)
    # Compared in constant time: the token is a password Prometheus holds.
    return token is not None and value is not None and hmac.compare_digest(value.encode(), token.encode())


async def scrape(request: web.Request) -> web.Response:
    app = request.app
    metrics = app[PROMETHEUS]
    if not _is_scrape_token(request, metrics.scrape_token):
        await require_server_admin_key(request)  # server-wide: the default organisation's admins
    if CHAT_API in app:
        await metrics.count_messages(lambda channel: _channel_kind(app, channel))
    return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup(app: web.Application) -> None:
    """Call after chat and transcribe are set up (it hooks into their bus and engine)."""
    metrics = ConveneMetrics(read_scrape_token(app[CONFIG].metrics_token_file))
    app[PROMETHEUS] = metrics
    metrics.registry.register(LiveCollector(app))
    app.middlewares.insert(0, _timing_middleware(metrics))  # outermost: errors are answered inside it
    reads, writes = metrics.database.labels("read"), metrics.database.labels("write")
    app[DATABASE].timer = lambda operation, seconds: (reads if operation == "read" else writes).observe(seconds)
    if CHAT_API in app:
        app[CHAT_API].bus.subscribe(metrics.on_chat_event)
    if TRANSCRIBE in app:
        app[TRANSCRIBE].engine.metrics.lag_observers.append(metrics.caption_lag.observe)
    app.router.add_get(PATH, scrape)
