"""Signed calls to an integration's URL (slash commands, button clicks, outgoing webhooks), bounded in time and size.

The one way this package sends HTTP, with an aiohttp session per Outbound (the interactions have one, the
outgoing webhooks another, each with its own User-Agent and connection limit). Each call: the body signed with the
integration's secret (integrations/signing.py), no redirects followed, the URL checked again and names resolved
through the address guard (private addresses only when the operator allows them). `post` reads the answer up to
MAX_ANSWER_BYTES within `timeout` seconds (3 s: Slack's budget for a command) and raises typed errors; `posting`
hands the open response to a caller that judges it itself (outgoing webhooks retry some failures and keep the
outcome as text).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
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
    def __init__(self, allow_private: bool, timeout: float = ANSWER_SECONDS,
                 user_agent: str = "Convene-Integrations/1", connections: int = 100) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.user_agent = user_agent
        self.connections = connections
        self._http: aiohttp.ClientSession | None = None

    @property
    def running(self) -> bool:
        return self._http is not None

    def check_url(self, url: object, field: str = "url") -> str:
        return check_url(url, self.allow_private, field)

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.allow_private), limit=self.connections)
        self._http = aiohttp.ClientSession(connector=connector, headers={"User-Agent": self.user_agent})

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @contextlib.asynccontextmanager
    async def posting(self, url: str, secret: str, body: bytes, content_type: str,
                      timeout: float) -> AsyncIterator[aiohttp.ClientResponse]:
        """POSTs `body` signed with `secret`, at most `timeout` seconds in all; the response, open for reading.
        aiohttp's errors, AddressRefused and TimeoutError are the caller's to judge."""
        if self._http is None:
            raise IntegrationFailed("integrations are not running")
        self.check_url(url)  # a literal private address is refused again at send time
        headers = {"Content-Type": content_type, **sign(secret, body)}
        async with self._http.post(url, data=body, headers=headers, allow_redirects=False,
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            yield response

    async def post(self, url: str, secret: str, body: bytes, content_type: str) -> Answer:
        """POSTs `body` signed with `secret`; the answer, or IntegrationTimeout / IntegrationFailed."""
        try:
            async with asyncio.timeout(self.timeout):
                async with self.posting(url, secret, body, content_type, self.timeout) as response:
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
