"""The durable store: one SQL database for everything that must survive a restart.

Embedded SQLite (aiosqlite, WAL) by default, PostgreSQL (asyncpg) with `--database-url`; one code path
on SQLAlchemy Core (async). `schema.py` holds the tables (one MetaData, grouped per concern), Alembic
migrations in `migrations/` create and change them, `database.py` opens the engine, runs the migrations
and serialises writes. Fleeting state (the event bus, presence, replay buffers) is not here: it lives
in memory or Redis.

Layering: store imports only `common`; chat, identity and transcribe import store.
"""
