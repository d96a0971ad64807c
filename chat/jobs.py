"""Background jobs: task reminders (before the due time and when overdue) and the retention policy."""

from __future__ import annotations

import asyncio
import logging
import time

from chat.service import ChatService

log = logging.getLogger("convene.chat.jobs")


async def run_reminders(service: ChatService, now: float) -> int:
    org = await service.org()
    sent = 0
    for message in await service.store.due_tasks(now + org.remind_before_seconds):
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


async def retention_loop(service: ChatService, interval: float) -> None:
    while True:
        try:
            purged = await service.apply_retention(time.time())
            if purged:
                log.info("retention recalled %d old messages", purged)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention failed")
        await asyncio.sleep(interval)
