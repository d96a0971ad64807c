"""The organisations the store holds, listed as every per-organisation job (retention, analytics) walks them."""

from __future__ import annotations

from sqlalchemy import select

from store.database import Database
from store.schema import DEFAULT_ORG, organisations


async def org_ids(db: Database) -> list[str]:
    """The built-in organisation first (it has no row), then every one `convene orgs add` made, sorted."""
    async with db.read() as conn:
        named = {str(r[0]) for r in await conn.execute(select(organisations.c.org_id))}
    return [DEFAULT_ORG, *sorted(named - {DEFAULT_ORG})]
