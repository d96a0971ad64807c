"""Audit log: an append-only, hash-chained record of who did what (issue #11)."""
