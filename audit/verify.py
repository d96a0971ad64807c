"""`convene audit verify`: walks the whole chain of a store (hashing off the event loop)."""

from __future__ import annotations

import asyncio

from audit.chain import ChainVerifier, Verdict
from audit.log import AuditLog


async def verify_log(log: AuditLog) -> Verdict:
    counter = await log.counter()  # first: every row up to it has committed (same transaction as its bump)
    verifier = ChainVerifier()
    async for rows in log.rows():
        if not await asyncio.to_thread(verifier.feed, rows):
            break
    return verifier.result(counter)
