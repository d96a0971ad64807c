"""The access log without secrets: `token` and `sig` query values are written as `[redacted]`, and so is the
whole query of the OpenID Connect callback (its authorization code).

Our own clients no longer put credentials in URLs, but an old link (`/r/room?token=…`), a stale client or
a hand-typed request still may; the log must not keep a 30-day token for whoever reads it later. The
Referer is redacted too: it repeats the address of the page that made the request. An incoming webhook's URL
keeps its secret in the path (Slack's convention): that last segment is written as `[redacted]` as well.
The rules are common/redact.py's, which the error log uses too.
"""

from __future__ import annotations

import datetime
import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from common.redact import redact_url

__all__ = ["RedactingAccessLogger", "redact_url"]


class RedactingAccessLogger(AbstractAccessLogger):
    """Combined Log Format, like aiohttp's default, with secret query values redacted."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)  # no line is formatted when it would not be written

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("[%d/%b/%Y:%H:%M:%S +0000]")
        referer = request.headers.get("Referer", "-")
        agent = request.headers.get("User-Agent", "-")
        line = (f'{request.remote or "-"} {now} "{request.method} {redact_url(request.raw_path)} '
                f'HTTP/{request.version.major}.{request.version.minor}" {response.status} '
                f'{response.body_length} "{redact_url(referer)}" "{agent}" {time:.6f}s')
        self.logger.info(line)
