"""Chat notices about a scheduled meeting: a direct message from the organiser to each invitee, through the chat
service (the same path as a message they typed: the direct channel is made if needed, readers are told live).

A notice that cannot be sent (the organiser may not post, the store refused) is logged and left out of the answer's
`notified` list; the meeting stays scheduled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from chat.model import User
from chat.service import ChatService, PostRequest
from common.errors import ConveneError
from identity.schedule import ScheduledMeeting

log = logging.getLogger("convene.signaling.scheduled_notices")

CONCURRENT_SENDS = 16


def when_text(plan: ScheduledMeeting) -> str:
    """`Wed 2 Dec 2026, 09:00-09:30 (Europe/Berlin)`: in the organiser's zone, or UTC."""
    zone = ZoneInfo(plan.timezone) if plan.timezone else UTC
    start = datetime.fromtimestamp(plan.starts_at, zone)
    end = datetime.fromtimestamp(plan.ends_at, zone)
    day = f"{start:%a} {start.day} {start:%b %Y}"
    return f"{day}, {start:%H:%M}-{end:%H:%M} ({plan.timezone or 'UTC'})"


def invitation(plan: ScheduledMeeting, organizer: User, join_url: str) -> str:
    return (f"📅 {organizer.name or organizer.login} invited you to \"{plan.title}\": {when_text(plan)}. "
            f"Join from your home page or at {join_url}")


def changed(plan: ScheduledMeeting, organizer: User, join_url: str) -> str:
    return (f"📅 {organizer.name or organizer.login} changed \"{plan.title}\": now {when_text(plan)}. "
            f"Join from your home page or at {join_url}")


def cancelled(plan: ScheduledMeeting, organizer: User) -> str:
    return f"📅 {organizer.name or organizer.login} cancelled \"{plan.title}\" ({when_text(plan)})."


async def _send(service: ChatService, organizer: User, login: str, text: str, gate: asyncio.Semaphore) -> bool:
    async with gate:
        try:
            channel, _ = await service.direct_channel(organizer.login, login, organizer.org)
            await service.post(organizer, PostRequest(to=channel.id, content=text))
        except ConveneError as exc:
            log.warning("scheduled meeting notice to %s not sent: %s", login, exc.code)
            return False
        return True


async def notify(service: ChatService, organizer: User, logins: Iterable[str], text: str) -> list[str]:
    """Sends `text` from `organizer` to each of `logins` in their direct chat; the logins it reached. The sends
    overlap (up to CONCURRENT_SENDS), so the store's group-commit writer takes many in one transaction."""
    others = [login for login in logins if login != organizer.login]
    gate = asyncio.Semaphore(CONCURRENT_SENDS)
    sent = await asyncio.gather(*(_send(service, organizer, login, text, gate) for login in others))
    return [login for login, ok in zip(others, sent) if ok]
