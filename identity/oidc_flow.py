"""One OpenID Connect sign-in in progress: its state, nonce and PKCE verifier, kept in the browser.

Between the redirect to the provider and the callback, the server must remember three secrets: `state` (the
callback belongs to a sign-in this browser started: no login CSRF), `nonce` (the ID token was minted for this
sign-in: no replay) and the PKCE `verifier` (only who started the sign-in can redeem the code). They travel in
a short-lived HttpOnly cookie sealed with AES-GCM under a key derived from the server secret: another process
of the same deployment can open it, the browser's scripts cannot read it, and nobody can forge or alter it.
Nothing is stored on the server and nothing of it is logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.errors import OidcStateMismatch
from identity.orgs import DEFAULT_ORG

FLOW_COOKIE = "convene_oidc"
FLOW_PATH = "/v1/auth/oidc"  # the cookie goes only to the start and callback routes
FLOW_SECONDS = 600  # a person has ten minutes at the provider's login page
_AAD = b"convene-oidc-flow-v1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class PendingFlow:
    state: str
    nonce: str
    verifier: str  # PKCE code_verifier: 43 characters of base64url (RFC 7636 wants 43-128)
    expires_at: float
    org: str = DEFAULT_ORG  # the organisation whose Host started it: only that one's callback may finish it

    @classmethod
    def start(cls, now: float | None = None, org: str = DEFAULT_ORG) -> PendingFlow:
        return cls(state=secrets.token_urlsafe(24), nonce=secrets.token_urlsafe(24),
                   verifier=secrets.token_urlsafe(32), expires_at=(now or time.time()) + FLOW_SECONDS, org=org)

    @property
    def challenge(self) -> str:
        """The S256 code_challenge sent to the provider."""
        return b64url(hashlib.sha256(self.verifier.encode("ascii")).digest())

    def __repr__(self) -> str:  # the secrets stay out of any log line that prints the value
        return f"PendingFlow(expires_at={self.expires_at})"


class FlowSealer:
    """Seals a PendingFlow into a cookie value and opens it again (OidcStateMismatch when it is not ours)."""

    def __init__(self, server_secret: bytes) -> None:
        self._aead = AESGCM(hmac.new(server_secret, b"oidc-flow-cookie", hashlib.sha256).digest())

    def seal(self, flow: PendingFlow) -> str:
        nonce = os.urandom(12)
        payload = json.dumps({"s": flow.state, "n": flow.nonce, "v": flow.verifier, "e": flow.expires_at,
                              "o": flow.org})
        return b64url(nonce + self._aead.encrypt(nonce, payload.encode(), _AAD))

    def open(self, cookie: str | None, now: float | None = None) -> PendingFlow:
        if not cookie or len(cookie) > 1024:
            raise OidcStateMismatch("no sign-in in progress in this browser (or it expired): start again")
        try:
            raw = _unb64url(cookie)
            data = json.loads(self._aead.decrypt(raw[:12], raw[12:], _AAD))
            flow = PendingFlow(state=str(data["s"]), nonce=str(data["n"]), verifier=str(data["v"]),
                               expires_at=float(data["e"]), org=str(data.get("o", DEFAULT_ORG)))
        except (ValueError, KeyError, TypeError, InvalidTag):
            raise OidcStateMismatch("the sign-in cookie is not valid: start again") from None
        if flow.expires_at < (now or time.time()):
            raise OidcStateMismatch("the sign-in took too long: start again")
        return flow

    def check_state(self, flow: PendingFlow, presented: str | None) -> None:
        if presented is None or not hmac.compare_digest(flow.state.encode(), presented.encode()):
            raise OidcStateMismatch("the provider's answer does not belong to this browser's sign-in")
