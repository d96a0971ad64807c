"""Migration 0017 (per-organisation SSO bindings) downgraded, on SQLite and a real PostgreSQL: when two
organisations bound the same provider subject (or login), which the old keys cannot hold, the default
organisation's binding is kept and the other dropped, and the downgrade succeeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text

from store.engine import create_engine, database_url
from store.migrate import alembic_config, upgrade

ISSUER = "https://idp.example"


@pytest.fixture(params=["sqlite", "postgres"])
def configured_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres").create_database() if request.param == "postgres" else None


def _downgrade(connection: Any) -> None:
    command.downgrade(alembic_config(connection), "0016_organisations")


async def test_downgrade_keeps_the_default_organisations_binding(tmp_path: Path, configured_url: str | None
                                                                  ) -> None:
    engine = create_engine(database_url(configured_url, tmp_path))
    try:
        await upgrade(engine, "0017_org_directories")
        rows = [("default", "sub-1", "alice", 2.0), ("acme", "sub-1", "alice", 1.0),  # same subject and login
                ("acme", "sub-2", "bob", 1.0), ("globex", "sub-2", "bob2", 2.0),  # same subject: acme's is older
                ("acme", "sub-3", "carol", 1.0)]  # no clash: kept
        async with engine.begin() as conn:
            for org, subject, login, at in rows:
                await conn.execute(text("INSERT INTO oidc_identities (issuer, subject, org_id, login, created_at, "
                                        "last_sign_in) VALUES (:i, :s, :o, :l, :t, :t)"),
                                   {"i": ISSUER, "s": subject, "o": org, "l": login, "t": at})
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade)
        async with engine.connect() as conn:
            left = (await conn.execute(text("SELECT org_id, subject, login FROM oidc_identities"))).all()
            assert await conn.run_sync(lambda c: c.execute(text("SELECT version_num FROM alembic_version"))
                                       .scalar()) == "0016_organisations"
        assert sorted(map(tuple, left)) == [("acme", "sub-2", "bob"), ("acme", "sub-3", "carol"),
                                            ("default", "sub-1", "alice")]
    finally:
        await engine.dispose()
