"""Access tokens: HS256 JWTs naming one identity, with grants and an expiry.

A token has one scope. A *meeting token* names a room and one meeting of it (a room may hold many meetings over
time; each start gets a new unguessable id) and reaches only that meeting: its signaling, its chat channel and,
with the moderator grant, its transcript and notes. A *user token* (room `USER_SCOPE`, no meeting) is a chat
user's credential.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jwt

from common.errors import ExpiredToken, InvalidToken

ALGORITHM = "HS256"
ISSUER = "convene"
# The "room" of a user token: no real room has this name (room names start with a letter or digit).
USER_SCOPE = "@chat"


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
    meeting: str | None = None
    issued_at: float = 0.0

    @property
    def is_user_token(self) -> bool:
        return self.room == USER_SCOPE


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
        meeting: str | None = None,
    ) -> str:
        if (room == USER_SCOPE) != (meeting is None):
            raise ValueError("a meeting token names its meeting; a user token names none")
        issued = time.time() if now is None else now
        claims: dict[str, object] = {
            "iss": ISSUER,
            "sub": identity,
            "name": name or identity,
            "room": room,
            "grants": (grants or Grants()).to_claim(),
            # iat keeps its fraction: a removal holds tokens issued up to that instant, not a re-invite after it.
            "iat": issued,
            "nbf": int(issued) - 5,
            "exp": int(issued) + ttl_seconds,
        }
        if meeting is not None:
            claims["mtg"] = meeting
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
        meeting = claims.get("mtg")
        if room != USER_SCOPE and (not isinstance(meeting, str) or not meeting):
            raise InvalidToken("access token lacks its meeting")
        return AccessToken(
            identity=identity,
            room=room,
            name=str(claims.get("name") or identity),
            grants=Grants.from_claim(claims.get("grants")),
            expires_at=float(claims["exp"]),
            meeting=meeting if isinstance(meeting, str) else None,
            issued_at=float(claims.get("iat", 0)),
        )
