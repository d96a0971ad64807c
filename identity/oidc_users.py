"""The user row of someone the OpenID provider vouches for (table `chat_users`), made or refreshed at sign-in.

- New: a member, `source` "oidc", with the provider's name, email, department path and title.
- Known: the provider's non-empty claims refresh name, email, department and title, and the role stays as
  stored (a credential never sets it), except that a guest row of that login becomes a member: the
  organisation's provider says this is one of its people. (A first sign-in reaches a row SSO did not make only
  with --oidc-link-existing: signaling/oidc_routes.py refuses it otherwise.)
- A user the directory sync keeps (`source` "ldap") is left as the directory says: it is the authority.

One write transaction reads and writes the row, so two first sign-ins at once make one user. The row is made
in the organisation whose Host the sign-in came to; a login another organisation holds is refused
(`oidc_account_exists`), never moved.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from audit import AuditEvent, Recorder
from common import names
from common.errors import OidcAccountExists
from identity.oidc import OidcIdentity
from identity.orgs import DEFAULT_ORG
from store.database import Database
from store.schema import chat_users

SOURCE = "oidc"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def one_line(text: str, limit: int) -> str:
    """A claim as one line of at most `limit` characters: notes and transcripts show names."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


def department_path(text: str) -> str:
    """`研发部 / 前端组` -> `研发部/前端组`: the path's parts, trimmed, empty ones dropped."""
    return names.department_path(text, lambda part: one_line(part, 64))[:256]


def _profile(identity: OidcIdentity) -> dict[str, str]:
    wanted = {"name": one_line(identity.name, 128), "email": one_line(identity.email, 254),
              "department": department_path(identity.department), "title": one_line(identity.title, 128)}
    return {k: v for k, v in wanted.items() if v}  # a claim the provider did not give keeps what we have


class OidcUsers:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.audit = Recorder.on(db)

    async def admit(self, login: str, identity: OidcIdentity, org: str = DEFAULT_ORG) -> bool:
        """Makes or refreshes `login`'s row from the identity; True when it was made. Both are audited
        (user.create, user.update, user.role), the person signing in as the actor."""
        profile = _profile(identity)

        async def op(conn: AsyncConnection) -> tuple[dict[str, Any] | None, dict[str, Any]]:
            row = (await conn.execute(select(chat_users).where(chat_users.c.login == login))).first()
            now = time.time()
            if row is None:
                made = {"role": "member", "source": SOURCE, "name": "", "department": "", "email": "", "title": "",
                        **profile}
                await conn.execute(chat_users.insert().values(login=login, created_at=now, updated_at=now, org_id=org,
                                                              **made))
                return None, made
            if row.org_id != org:
                raise OidcAccountExists(f"the account {login!r} belongs to another organisation")
            changes: dict[str, Any] = {} if row.source == "ldap" else {
                k: v for k, v in profile.items() if getattr(row, k) != v}
            if row.role == "guest":
                changes["role"] = "member"
            if changes:
                await conn.execute(update(chat_users).where(chat_users.c.login == login)
                                   .values(updated_at=now, **changes))
            return {k: getattr(row, k) for k in changes}, changes
        before, after = await self.db.write(op)
        if before is None:
            await self.audit.record(AuditEvent("user.create", "user", login, after=after, actor=login, org_id=org))
        elif after:
            event = "user.role" if "role" in after else "user.update"
            await self.audit.record(AuditEvent(event, "user", login, before=before, after=after, actor=login,
                                               org_id=org))
        return before is None
