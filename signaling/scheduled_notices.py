"""Chat notices about a scheduled meeting: a direct message from whoever made the change (the organiser, or an
admin changing or cancelling someone's plan, who is named as such) to each person it concerns, through the chat
service (the same path as a message they typed: the direct channel is made if needed, readers are told live).
A notice is never sent in someone else's name.

A notice that cannot be sent (the sender may not post, the store refused) is logged and left out of the answer's
`notified` list; the meeting stays scheduled.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from chat.model import User
from chat.service import ChatService, PostRequest
from common.errors import ConveneError
from identity.schedule import ScheduledMeeting

log = logging.getLogger("convene.signaling.scheduled_notices")

CONCURRENT_SENDS = 16


@dataclass(frozen=True)
class Notice:
    """One text, to each of `logins` in their direct chat with the sender."""

    logins: tuple[str, ...]
    text: str


def recipients(notices: list[Notice], sender: str) -> int:
    """How many direct messages `send` will try (the sender writes none to themselves)."""
    return sum(1 for notice in notices for login in notice.logins if login != sender)


def when_text(plan: ScheduledMeeting) -> str:
    """`Wed 2 Dec 2026, 09:00-09:30 (Europe/Berlin)`: in the organiser's zone, or UTC."""
    zone = ZoneInfo(plan.timezone) if plan.timezone else UTC
    start = datetime.fromtimestamp(plan.starts_at, zone)
    end = datetime.fromtimestamp(plan.ends_at, zone)
    day = f"{start:%a} {start.day} {start:%b %Y}"
    return f"{day}, {start:%H:%M}-{end:%H:%M} ({plan.timezone or 'UTC'})"


def byline(plan: ScheduledMeeting, sender: User) -> str:
    """The sender's name; an admin acting on someone else's plan says whose it is."""
    name = sender.name or sender.login
    return name if sender.login == plan.organizer else f"{name} (admin, for {plan.organizer}'s meeting)"


def invitation(plan: ScheduledMeeting, sender: User, join_url: str) -> str:
    return (f"📅 {byline(plan, sender)} invited you to \"{plan.title}\": {when_text(plan)}. "
            f"Join from your home page or at {join_url}")


def changed(plan: ScheduledMeeting, sender: User, join_url: str) -> str:
    return (f"📅 {byline(plan, sender)} changed \"{plan.title}\": now {when_text(plan)}. "
            f"Join from your home page or at {join_url}")


def cancelled(plan: ScheduledMeeting, sender: User) -> str:
    return f"📅 {byline(plan, sender)} cancelled \"{plan.title}\" ({when_text(plan)})."


async def _send(service: ChatService, sender: User, login: str, text: str, gate: asyncio.Semaphore) -> bool:
    async with gate:
        try:
            channel, _ = await service.direct_channel(sender.login, login, sender.org)
            await service.post(sender, PostRequest(to=channel.id, content=text))
        except ConveneError as exc:
            log.warning("scheduled meeting notice to %s not sent: %s", login, exc.code)
            return False
        return True


async def send(service: ChatService, sender: User, notices: list[Notice]) -> list[str]:
    """Sends each notice from `sender` to each of its logins in their direct chat; the logins it reached. The
    sends overlap (up to CONCURRENT_SENDS), so the store's group-commit writer takes many in one transaction."""
    pairs = [(login, notice.text) for notice in notices for login in notice.logins if login != sender.login]
    gate = asyncio.Semaphore(CONCURRENT_SENDS)
    sent = await asyncio.gather(*(_send(service, sender, login, text, gate) for login, text in pairs))
    return [login for (login, _), ok in zip(pairs, sent) if ok]
