"""Access tokens: minting, verification, forgery, expiry."""

from __future__ import annotations

import time

import jwt
import pytest

from common.errors import ExpiredToken, InvalidToken
from identity.tokens import Grants, TokenIssuer


def test_round_trip_carries_identity_room_grants() -> None:
    issuer = TokenIssuer(b"k" * 32)
    token = issuer.mint("standup", "alice", name="Alice A.", grants=Grants(moderator=True, screen_share=False),
                         meeting="m_1")
    parsed = issuer.verify(token)
    assert (parsed.identity, parsed.room, parsed.name) == ("alice", "standup", "Alice A.")
    assert parsed.grants.moderator and not parsed.grants.screen_share and parsed.grants.publish
    assert parsed.expires_at > time.time()


def test_forged_signature_is_rejected() -> None:
    token = TokenIssuer(b"attacker-key-xxxxxxxxxxxxxxxxxxxx").mint("standup", "mallory", meeting="m_x")
    with pytest.raises(InvalidToken):
        TokenIssuer(b"k" * 32).verify(token)


def test_alg_none_is_rejected() -> None:
    forged = jwt.encode({"sub": "mallory", "room": "standup", "iss": "convene", "exp": time.time() + 60},
                        key=None, algorithm="none")
    with pytest.raises(InvalidToken):
        TokenIssuer(b"k" * 32).verify(forged)


def test_expired_token_is_rejected_with_its_own_code() -> None:
    issuer = TokenIssuer(b"k" * 32)
    token = issuer.mint("standup", "alice", ttl_seconds=10, now=time.time() - 100, meeting="m_1")
    with pytest.raises(ExpiredToken) as info:
        issuer.verify(token)
    assert info.value.code == "token_expired"


def test_garbage_is_rejected() -> None:
    with pytest.raises(InvalidToken):
        TokenIssuer(b"k" * 32).verify("not-a-jwt")
