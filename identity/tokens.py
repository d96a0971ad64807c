"""Access tokens: HS256 JWTs naming one identity in one room, with grants and an expiry."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jwt

from common.errors import ExpiredToken, InvalidToken

ALGORITHM = "HS256"
ISSUER = "convene"


@dataclass(frozen=True)
class Grants:
    publish: bool = True
    subscribe: bool = True
    screen_share: bool = True
    moderator: bool = False

    def to_claim(self) -> dict[str, bool]:
        return {
            "publish": self.publish,
            "subscribe": self.subscribe,
            "screen_share": self.screen_share,
            "moderator": self.moderator,
        }

    @classmethod
    def from_claim(cls, claim: object) -> "Grants":
        if not isinstance(claim, dict):
            raise InvalidToken("grants claim missing")
        return cls(
            publish=bool(claim.get("publish", False)),
            subscribe=bool(claim.get("subscribe", False)),
            screen_share=bool(claim.get("screen_share", False)),
            moderator=bool(claim.get("moderator", False)),
        )


@dataclass(frozen=True)
class AccessToken:
    identity: str
    room: str
    name: str = ""
    grants: Grants = field(default_factory=Grants)
    expires_at: float = 0.0


class TokenIssuer:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def mint(
        self,
        room: str,
        identity: str,
        name: str = "",
        grants: Grants | None = None,
        ttl_seconds: int = 6 * 3600,
        now: float | None = None,
    ) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": ISSUER,
            "sub": identity,
            "name": name or identity,
            "room": room,
            "grants": (grants or Grants()).to_claim(),
            "iat": issued,
            "nbf": issued - 5,
            "exp": issued + ttl_seconds,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> AccessToken:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "room", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise ExpiredToken("access token expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"access token rejected: {exc}") from exc
        identity, room = claims.get("sub"), claims.get("room")
        if not isinstance(identity, str) or not identity or not isinstance(room, str) or not room:
            raise InvalidToken("access token lacks identity or room")
        return AccessToken(
            identity=identity,
            room=room,
            name=str(claims.get("name") or identity),
            grants=Grants.from_claim(claims.get("grants")),
            expires_at=float(claims["exp"]),
        )
