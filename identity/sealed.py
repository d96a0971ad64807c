"""Secrets kept in the store sealed, never in plaintext: an organisation's LDAP bind password and OIDC client
secret (identity/org_directories.py), a bot's signing secret (identity/bots.py) and a slash command's
(integrations/commands.py).

AES-256-GCM under a key derived with HKDF-SHA256 from the server's token secret (identity/secrets_store.py), so
every process of a deployment (sharing that secret) can open what another sealed, while a copy of the database
alone reveals nothing. Each value is sealed for a `context` (e.g. "org:acme:ldap") bound in as associated data:
a sealed value copied into another organisation's row does not open there.

Format: "v1." + base64url(12-byte nonce + ciphertext + tag).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sqlalchemy import Column, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import InvalidConfig

PREFIX = "v1."
_INFO = b"convene sealed store secrets v1"


def is_sealed(value: str) -> bool:
    """Whether a stored value is sealed. Signing secrets stored before they were sealed are url-safe base64 (no
    '.'), so they never look sealed; such rows are sealed when a server starts (`seal_stored`)."""
    return value.startswith(PREFIX)


class SecretSealer:
    def __init__(self, server_secret: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(server_secret)
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretSealer()"

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open_stored(self, stored: str, context: str) -> str:
        """A stored signing secret: opened, or as it is when it was stored before secrets were sealed (a process of
        the previous version may still write one during an upgrade)."""
        return self.open(stored, context) if is_sealed(stored) else stored

    def open(self, sealed: str, context: str) -> str:
        """The plaintext; InvalidConfig when the value was sealed under another secret or for another context
        (the token secret changed, or a row was copied): the operator sets the secret again."""
        try:
            if not sealed.startswith(PREFIX):
                raise ValueError("unknown format")
            raw = base64.urlsafe_b64decode(sealed[len(PREFIX):])
            return self._aead.decrypt(raw[:12], raw[12:], context.encode("utf-8")).decode("utf-8")
        except (ValueError, InvalidTag):
            raise InvalidConfig(f"a stored secret ({context}) cannot be opened with this server's token secret; "
                                "set it again") from None


async def seal_plaintext_rows(conn: AsyncConnection, table: Table, key: Column[str], column: Column[str],
                              sealer: SecretSealer, context: Callable[[str], str]) -> int:
    """Seals the values of `column` stored in plaintext (before they were sealed), each for `context(key)`; how
    many. A row is changed only if it still holds that plaintext: another process may have sealed it meanwhile."""
    rows = (await conn.execute(select(key, column))).all()
    legacy = [(str(r[0]), str(r[1])) for r in rows if not is_sealed(str(r[1]))]
    for name, plain in legacy:
        await conn.execute(table.update().where(key == name, column == plain)
                           .values({column.name: sealer.seal(plain, context(name))}))
    return len(legacy)
