"""The secrets of hooks, and how little of them is kept.

An incoming hook's URL ends in a random secret; the store keeps its SHA-256 only, so whoever reads the database
cannot post. A Git receiver or an outgoing hook shares a secret with the other side, which the server must know
to check or make signatures: it is derived, HMAC-SHA256(server secret, "hook:" + id + ":" + salt), and only the
salt is stored. Deleting the hook (or the server secret changing) ends it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_url_secret() -> str:
    return secrets.token_urlsafe(24)


def url_secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def url_secret_matches(secret: str, stored_hash: str | None) -> bool:
    return stored_hash is not None and hmac.compare_digest(url_secret_hash(secret), stored_hash)


def new_salt() -> str:
    return secrets.token_hex(16)


def shared_secret(server_secret: bytes, hook_id: str, salt: str) -> str:
    return hmac.new(server_secret, f"hook:{hook_id}:{salt}".encode(), hashlib.sha256).hexdigest()
