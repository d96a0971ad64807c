"""Short-lived signed download links: `/v1/files/{id}?expires=<unix>&sig=<hex>`.

A browser cannot add an Authorization header to a plain link or `<a download>`; instead of a token in
the URL (kept in access logs and history for its whole 30-day life) the client asks for a link that
opens one file for a few minutes. Whoever asks must be allowed to read the file at that moment.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import urllib.parse

from common.errors import InvalidLink, LinkExpired

LINK_SECONDS = 300
# Its own key, derived from the server secret: a link signature is never usable as anything else.
_KEY_LABEL = b"convene/chat/file-link/v1"


class FileLinks:
    def __init__(self, secret: bytes, ttl_seconds: int = LINK_SECONDS) -> None:
        self._key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()
        self.ttl_seconds = ttl_seconds

    def _sig(self, file_id: str, expires: int) -> str:
        return hmac.new(self._key, f"{file_id}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, file_id: str, now: float | None = None) -> tuple[str, int]:
        """The relative link for `file_id` and when it stops working (unix seconds)."""
        expires = int(now if now is not None else time.time()) + self.ttl_seconds
        path = f"/v1/files/{urllib.parse.quote(file_id, safe='')}"
        return f"{path}?expires={expires}&sig={self._sig(file_id, expires)}", expires

    def verify(self, file_id: str, expires_text: str, sig: str, now: float | None = None) -> None:
        """Raises InvalidLink for a link we did not sign for this file, LinkExpired for an old one."""
        if not re.fullmatch(r"[0-9]{1,12}", expires_text):
            raise InvalidLink("expires must be unix seconds")
        if not re.fullmatch(r"[0-9a-fA-F]{64}", sig):
            raise InvalidLink("sig must be 64 hex digits")
        expires = int(expires_text)
        if not hmac.compare_digest(self._sig(file_id, expires), sig.lower()):
            raise InvalidLink("this link was not issued for this file")
        if expires < (now if now is not None else time.time()):
            raise LinkExpired("this download link has expired; open the file again")
