"""Signed calls to an integration's URL (slash commands, button clicks), bounded in time and size.

One aiohttp session per server. Each call: the body signed with the integration's secret (integrations/signing.py),
no redirects followed, names resolved through the address guard (private addresses only when the operator allows
them), the answer read up to MAX_ANSWER_BYTES within `timeout` seconds (3 s: Slack's budget for a command).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp

from common.errors import ConveneError
from common.http_body import BodyTooLarge, read_capped
from integrations.address_guard import AddressRefused, GuardedResolver, check_url
from integrations.signing import sign

log = logging.getLogger(__name__)

ANSWER_SECONDS = 3.0
MAX_ANSWER_BYTES = 64 * 1024


class IntegrationTimeout(ConveneError):
    """The integration did not answer in time."""

    code, status = "integration_timeout", 504


class IntegrationFailed(ConveneError):
    """The integration could not be reached, or answered with an error status or an unreadable answer."""

    code, status = "integration_failed", 502


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str


class Outbound:
    def __init__(self, allow_private: bool, timeout: float = ANSWER_SECONDS) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    def check_url(self, url: object, field: str = "url") -> str:
        return check_url(url, self.allow_private, field)

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.allow_private), limit=100)
        self._http = aiohttp.ClientSession(connector=connector, headers={"User-Agent": "Convene-Integrations/1"})

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def post(self, url: str, secret: str, body: bytes, content_type: str) -> Answer:
        """POSTs `body` signed with `secret`; the answer, or IntegrationTimeout / IntegrationFailed."""
        if self._http is None:
            raise IntegrationFailed("integrations are not running")
        self.check_url(url)  # a literal private address is refused again at send time
        headers = {"Content-Type": content_type, **sign(secret, body)}
        try:
            async with asyncio.timeout(self.timeout):
                async with self._http.post(url, data=body, headers=headers, allow_redirects=False) as response:
                    data = await read_capped(response, MAX_ANSWER_BYTES)
                    answer = Answer(response.status, data, response.headers.get("Content-Type", ""))
        except BodyTooLarge as exc:
            raise IntegrationFailed(f"the integration's answer is over {MAX_ANSWER_BYTES} bytes") from exc
        except TimeoutError as exc:
            raise IntegrationTimeout(f"the integration did not answer within {self.timeout:g} s") from exc
        except (aiohttp.ClientError, AddressRefused, OSError) as exc:
            log.info("integration call failed: %s", exc.__class__.__name__)  # never the URL: it may hold a token
            raise IntegrationFailed(f"the integration could not be reached ({exc.__class__.__name__})") from exc
        if not 200 <= answer.status < 300:
            raise IntegrationFailed(f"the integration answered HTTP {answer.status}", status=answer.status)
        return answer
