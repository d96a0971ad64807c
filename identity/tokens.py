"""Access tokens: HS256 JWTs naming one identity, with grants and an expiry.

A token has one scope. A *meeting token* names a room and one meeting of it (a room may hold many meetings over
time; each start gets a new unguessable id) and reaches only that meeting: its signaling, its chat channel and,
with the moderator grant, its transcript and notes. A *user token* (room `USER_SCOPE`, no meeting) is a chat
user's credential.

A *record token* (claim `use: "record"`) names a room and one meeting too, but reaches only that meeting's record
(transcript, notes, attendance, the meeting page), live or ended, for weeks; never its signaling or chat. It is
minted for moderators when their meeting ends (and for attendees where the organisation allows). `verify` refuses
it and `verify_record` refuses every other token: one kind never stands in for the other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jwt

from common.errors import ExpiredToken, InvalidToken, OutOfScope
from identity.orgs import DEFAULT_ORG, org_of

ALGORITHM = "HS256"
ISSUER = "convene"
# The "room" of a user token: no real room has this name (room names start with a letter or digit).
USER_SCOPE = "@chat"
# The `use` claim of a record token; meeting and user tokens carry no `use` claim.
RECORD_USE = "record"
RECORD_TTL_SECONDS = 30 * 86400


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
    epoch: int = 0  # a user token's account token epoch at minting (identity/passwords.py); 0 when absent
    session: str | None = None  # a sign-in session's id (sign-out ends it); None for other tokens
    org: str = DEFAULT_ORG  # the organisation it was minted for: it reaches nothing at another's Host

    @property
    def is_user_token(self) -> bool:
        return self.room == USER_SCOPE


@dataclass(frozen=True)
class RecordToken:
    """Reads one meeting's record: `moderator` may also edit and post its notes."""

    identity: str
    name: str
    room: str
    meeting: str
    moderator: bool
    expires_at: float
    issued_at: float = 0.0
    org: str = DEFAULT_ORG


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
        epoch: int = 0,
        session: str | None = None,
        org: str = DEFAULT_ORG,
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
        if session is not None:
            claims["sid"] = session
        _claim_org(claims, org, room)
        if epoch:
            claims["ep"] = epoch  # deactivating the account bumps its epoch: this token then fails
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def mint_record(self, room: str, meeting: str, identity: str, name: str = "", moderator: bool = False,
                    ttl_seconds: int = RECORD_TTL_SECONDS, now: float | None = None,
                    org: str = DEFAULT_ORG) -> str:
        """A record token for one meeting (see the module's docstring)."""
        if room == USER_SCOPE or not meeting:
            raise ValueError("a record token names a room and its meeting")
        issued = time.time() if now is None else now
        claims: dict[str, object] = {
            "iss": ISSUER, "use": RECORD_USE, "sub": identity, "name": name or identity, "room": room,
            "mtg": meeting, "moderator": moderator, "iat": issued, "nbf": int(issued) - 5,
            "exp": int(issued) + ttl_seconds,
        }
        _claim_org(claims, org, room)
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def _decode(self, token: str) -> dict[str, object]:
        try:
            claims: dict[str, object] = jwt.decode(
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
        use = claims.get("use")
        if use is not None and use != RECORD_USE:
            raise InvalidToken("access token of an unknown use")
        return claims

    def is_record(self, token: str) -> bool:
        """Whether `token` is a valid record token (signature checked); it raises as `verify` does otherwise."""
        return self._decode(token).get("use") == RECORD_USE

    def verify_record(self, token: str) -> RecordToken:
        claims = self._decode(token)
        if claims.get("use") != RECORD_USE:
            raise OutOfScope("this is not a record token")
        identity, room, meeting = claims.get("sub"), claims.get("room"), claims.get("mtg")
        if not all(isinstance(v, str) and v for v in (identity, room, meeting)) or room == USER_SCOPE:
            raise InvalidToken("record token lacks identity, room or meeting")
        assert isinstance(identity, str) and isinstance(room, str) and isinstance(meeting, str)
        return RecordToken(identity=identity, name=str(claims.get("name") or identity), room=room, meeting=meeting,
                           moderator=claims.get("moderator") is True, expires_at=float(str(claims["exp"])),
                           issued_at=float(str(claims.get("iat", 0))), org=_org(claims))

    def verify(self, token: str) -> AccessToken:
        """A meeting or user token; a record token is refused (`out_of_scope`): it reaches no meeting."""
        claims = self._decode(token)
        if claims.get("use") == RECORD_USE:
            raise OutOfScope("a record token reaches only its meeting's record (transcript, notes)")
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
            expires_at=float(str(claims["exp"])),
            meeting=meeting if isinstance(meeting, str) else None,
            issued_at=float(str(claims.get("iat", 0))),
            session=sid if isinstance(sid := claims.get("sid"), str) and sid else None,
            epoch=epoch if isinstance(epoch := claims.get("ep", 0), int) and not isinstance(epoch, bool) else -1,
            org=_org(claims),
        )


def _claim_org(claims: dict[str, object], org: str, room: str) -> None:
    """The `org` claim of a token for `room`: the organisation named, else the room's own (a room of an organisation
    is `org~room`); none for the default organisation, as tokens minted before organisations have none."""
    org = org if org != DEFAULT_ORG else org_of(room)
    if org != DEFAULT_ORG:
        claims["org"] = org


def _org(claims: dict[str, object]) -> str:
    # A token without an `org` claim (minted before organisations, or `default`'s own) is the default one's.
    org = claims.get("org", DEFAULT_ORG)
    if not isinstance(org, str) or not org:
        raise InvalidToken("access token of no organisation")
    return org
