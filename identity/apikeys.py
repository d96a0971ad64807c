"""API keys for the REST API: `cvk_<id>_<secret>`, stored as SHA-256 hashes in the data dir.

A key acts as a named (bot) user with a role; the chat sidecar maps it to a user of that name.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from common.errors import InvalidField, Unauthorized
from common.private_files import private_sqlite

ROLES = ("admin", "member", "bot")
PREFIX = "cvk_"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    role: str
    created_at: float


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyStore:
    def __init__(self, data_dir: Path) -> None:
        self._path = private_sqlite(data_dir / "keys.db")
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, name TEXT NOT NULL,"
                " role TEXT NOT NULL, secret_hash TEXT NOT NULL, created_at REAL NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=10)

    def create(self, name: str, role: str = "admin") -> tuple[ApiKey, str]:
        """Returns the key and its full secret string, which is shown once and never stored."""
        if role not in ROLES:
            raise InvalidField(f"role must be one of {', '.join(ROLES)}", field="role")
        if not name or len(name) > 64:
            raise InvalidField("name must be 1-64 characters", field="name")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(24)
        key = ApiKey(key_id=key_id, name=name, role=role, created_at=time.time())
        with self._connect() as db:
            db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?)",
                (key.key_id, key.name, key.role, _hash(secret), key.created_at),
            )
        return key, f"{PREFIX}{key_id}_{secret}"

    def verify(self, presented: str) -> ApiKey:
        if not presented.startswith(PREFIX) or presented.count("_") < 2:
            raise Unauthorized("not an API key")
        key_id, _, secret = presented[len(PREFIX):].partition("_")
        with self._connect() as db:
            row = db.execute(
                "SELECT name, role, secret_hash, created_at FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        if row is None or not hmac.compare_digest(row[2], _hash(secret)):
            raise Unauthorized("unknown API key")
        return ApiKey(key_id=key_id, name=row[0], role=row[1], created_at=row[3])

    def list(self) -> list[ApiKey]:
        with self._connect() as db:
            rows = db.execute("SELECT key_id, name, role, created_at FROM api_keys").fetchall()
        return [ApiKey(key_id=r[0], name=r[1], role=r[2], created_at=r[3]) for r in rows]
