"""The rollups' INSERT … ON CONFLICT: the store's own (store/upsert.py), named here for stats' modules."""

from __future__ import annotations

from store.upsert import insert_ignoring, insert_replacing

__all__ = ["insert_ignoring", "insert_replacing"]
