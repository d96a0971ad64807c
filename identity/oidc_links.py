"""Which subject of which OpenID provider signs in as which login (table `oidc_identities`).

A provider's `sub` is stable and never reassigned; its user names are not: when someone leaves, their
`preferred_username` may be given to a newcomer. So the first sign-in binds subject and login, and later a
different subject asserting that login, or the bound subject asserting another one, is refused
(`oidc_subject_mismatch`) rather than handing one person's history to another.

Bindings are per organisation: (org, issuer, subject). Two organisations may use the same provider, and a
subject bound in one says nothing in the other.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import OidcSubjectMismatch
from identity.orgs import DEFAULT_ORG
from store.database import Database
from store.schema import oidc_identities


class OidcLinks:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def is_bound(self, issuer: str, subject: str, login: str, org: str = DEFAULT_ORG) -> bool:
        """Whether this subject already signs in as this login in `org` (not its first sign-in)."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(oidc_identities.c.login).where(
                oidc_identities.c.org_id == org, oidc_identities.c.issuer == issuer,
                oidc_identities.c.subject == subject))).first()
        return row is not None and row.login == login

    async def bind(self, issuer: str, subject: str, login: str, org: str = DEFAULT_ORG) -> bool:
        """Binds (issuer, subject) to login on first sign-in, or checks the existing binding; True when new.
        One write transaction, so two first sign-ins at once cannot both bind."""
        async def op(conn: AsyncConnection) -> Any:
            rows = (await conn.execute(select(oidc_identities).where(
                oidc_identities.c.org_id == org, oidc_identities.c.issuer == issuer,
                or_(oidc_identities.c.subject == subject, oidc_identities.c.login == login)))).all()
            if any(r.subject != subject or r.login != login for r in rows):
                return None
            now = time.time()
            if rows:
                await conn.execute(update(oidc_identities).where(
                    oidc_identities.c.org_id == org, oidc_identities.c.issuer == issuer,
                    oidc_identities.c.subject == subject)
                    .values(last_sign_in=now))
                return False
            await conn.execute(oidc_identities.insert().values(
                org_id=org, issuer=issuer, subject=subject, login=login, created_at=now, last_sign_in=now))
            return True
        created = await self.db.write(op)
        if created is None:
            raise OidcSubjectMismatch(f"the login {login!r} is bound to another account of the identity provider")
        return bool(created)
