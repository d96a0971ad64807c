"""Server metrics (`GET /v1/metrics`, admin API key): process CPU and memory, rooms and media counters.

Load testers read this to report the server side next to what their bots saw.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

from aiohttp import web

from common.wire import query_flag
from signaling.appkeys import ROOMS
from identity.auth import require_server_admin_key

STARTED = "metrics_started"


def process_stats() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss_kib = 0
    try:
        with open(f"/proc/{os.getpid()}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss_kib = int(line.split()[1])
    except OSError:
        rss_kib = usage.ru_maxrss
    return {
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "rss_bytes": rss_kib * 1024,
        "wall_time": time.time(),
        "cores": os.cpu_count() or 1,
    }


def media_stats(app: web.Application) -> dict[str, Any]:
    rooms = app[ROOMS].all()
    participants = sum(len(r.visible) for r in rooms)
    publications = [pub for r in rooms for pub in r.publications()]
    for publication in publications:
        publication.fold_routed()  # what compiled receive routes counted since they were last asked
    # One pass over the subscriptions: a hundred-person meeting has ~20,000 (two tracks each, 99 listeners).
    subscriptions = forwarded = retransmitted = refused = 0
    for publication in publications:
        for s in publication.subscriptions:
            subscriptions += 1
            forwarded += s.packets
            retransmitted += s.retransmitted
            refused += s.resends_refused
    return {
        "rooms": len(rooms),
        "participants": participants,
        "publications": len(publications),
        "subscriptions": subscriptions,
        "packets_in": sum(p.packets for p in publications),
        "packets_forwarded": forwarded,
        "retransmissions": retransmitted,
        "retransmissions_refused": refused,  # over the budget
        "keyframe_requests": sum(p.keyframe_requests for p in publications),
    }


async def metrics(request: web.Request) -> web.Response:
    """`?media=false` leaves the media counters out: they walk every subscription (~20,000 in a
    hundred-person meeting, ~1 % of a core when asked each second), and a load test polling the server's CPU
    each second would otherwise measure its own probe."""
    await require_server_admin_key(request)  # server-wide: the default organisation's admins
    body: dict[str, Any] = {"process": process_stats()}
    if query_flag(request, "media", True):
        body["media"] = media_stats(request.app)
    return web.json_response(body)


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/metrics", metrics)
