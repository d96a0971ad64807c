"""Background jobs: task reminders (before the due time and when overdue), the retention policy, and
the file sweep (uploads never posted, and the blobs no record points at any more)."""

from __future__ import annotations

import asyncio
import logging
import time

from chat.files import FileVault
from chat.retention import Retention
from chat.service import ChatService
from chat.store import ChatStore

log = logging.getLogger("convene.chat.jobs")


async def run_reminders(service: ChatService, now: float) -> int:
    """Each organisation's tasks, reminded its own `remind_before_seconds` before they are due."""
    sent = 0
    for org_id in await service.store.channel_orgs():
        org = await service.org(org_id)
        for message in await service.store.due_tasks(now + org.remind_before_seconds, org=org_id):
            task = message.task
            if task is None or task.due is None:
                continue
            kind = "overdue" if task.due <= now else "before"
            if kind not in task.reminded and await service.remind(message, kind):
                sent += 1
    return sent


async def reminder_loop(service: ChatService, interval: float) -> None:
    while True:
        try:
            await run_reminders(service, time.time())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task reminders failed")
        await asyncio.sleep(interval)


async def retention_loop(retention: Retention, interval: float, first_delay: float = 300.0) -> None:
    """Deletes what the retention policies let go (chat/retention.py): a few minutes after start (a server that
    restarts often still runs it; start-up stays quick), then every `interval` (a day)."""
    await asyncio.sleep(min(first_delay, interval))
    while True:
        try:
            await retention.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention failed")
        await asyncio.sleep(interval)


async def sweep_files(store: ChatStore, vault: FileVault, now: float, max_age: float) -> int:
    """Deletes uploads never attached to a message within `max_age` seconds, then each blob no
    remaining record points at, and tmp files of uploads that died midway; returns records deleted."""
    deleted = 0
    while True:
        batch = await store.unattached_files(now - max_age, 200)
        gone = [m for m in batch if await store.delete_unattached_file(m.id)]
        deleted += len(gone)
        for meta in gone:
            checked = time.time()  # the blob must not be touched after this (an upload of the same bytes)
            if not await store.sha_in_use(meta.sha256):
                await vault.remove_blob(meta.sha256, checked)
        if len(batch) < 200 or not gone:
            break
    await vault.sweep_tmp(now - max_age)
    return deleted


async def file_sweep_loop(store: ChatStore, vault: FileVault, max_age: float, interval: float) -> None:
    while True:
        try:
            deleted = await sweep_files(store, vault, time.time(), max_age)
            if deleted:
                log.info("file sweep deleted %d uploads never posted", deleted)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("file sweep failed")
        await asyncio.sleep(interval)
