"""The scheduler: a task per server process that sends scheduled posts when they are due.

Due times live in the SQL store, so the schedule survives restarts. It sleeps until the earliest post it knows of
falls due (and wakes at once when this process schedules something), then reads the due rows, claims each
(scheduled_store: one process wins) and sends
it as its author through ChatService.post, so the author's permission is checked again at send time: still a
member of the channel (`not_a_member`), still allowed to post (`not_permitted`), account still active
(`user_deactivated`), channel still there (`channel_not_found`). The outcome, sent or failed with the error's
code, is stored per run.

After downtime: a one-shot post that fell due meanwhile is sent once, late; a recurring post sends only its
latest missed occurrence (one post, not a burst of catch-up copies) and goes on from the next one after now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from chat.service import ChatService, PostRequest
from common.errors import ConveneError
from identity.passwords import AccountStore
from integrations.recurrence import Recurrence
from integrations.schedule_errors import AuthorGone, UserDeactivated
from integrations.scheduled_store import FAILED, SENT, Run, ScheduledPost, ScheduledStore

log = logging.getLogger(__name__)
BATCH = 100  # due posts read per tick
# How long it sleeps at most without a known due post. Only posts scheduled (or moved sooner) by ANOTHER process
# need it: that process's scheduler is woken by them as ours is by ours and sends them on time; ours only
# takes over when that one is down, up to this much later. A read here costs two queries, so a long bound keeps
# an idle server idle (issue #14).
POLL_SECONDS = 20.0


def recurrence_of(post: ScheduledPost) -> Recurrence | None:
    if post.rule_kind is None or post.rule is None:
        return None
    return Recurrence(kind=post.rule_kind, rule=post.rule, timezone=post.timezone or "UTC", start=post.start)


def plan(post: ScheduledPost, now: float) -> tuple[float, float | None]:
    """(the occurrence to send now, the next due time or None when the post is done) for a due post."""
    assert post.next_run is not None
    recurrence = recurrence_of(post)
    if recurrence is None:
        return post.next_run, None
    occurrence = recurrence.latest_until(now, post.next_run) or post.next_run
    return occurrence, recurrence.next_after(max(now, occurrence))


class ChatSender:
    """Posts as the author, with every check a post by hand gets (and the account's active flag)."""

    def __init__(self, chat: ChatService, accounts: AccountStore) -> None:
        self.chat = chat
        self.accounts = accounts

    async def send(self, post: ScheduledPost, occurrence: float, now: float) -> Run:
        try:
            account = await self.accounts.get(post.author)
            if account is not None and not account.active:
                raise UserDeactivated(f"{post.author!r} was deactivated")
            user = await self.chat.store.get_user(post.author)
            if user is None:
                raise AuthorGone(f"no user {post.author!r}")
            # The client id makes the post itself idempotent per occurrence, on top of the claim.
            message, _ = await self.chat.post(user, PostRequest(
                to=post.channel_id, content=post.text, client_id=f"sched:{post.id}:{occurrence:.0f}"))
        except ConveneError as err:
            return Run(due_at=occurrence, ran_at=now, outcome=FAILED, error_code=err.code, message_id=None)
        except Exception:  # noqa: BLE001 - stored as a failed run; the schedule goes on
            log.exception("scheduled post %s failed", post.id)
            return Run(due_at=occurrence, ran_at=now, outcome=FAILED, error_code="internal_error", message_id=None)
        return Run(due_at=occurrence, ran_at=now, outcome=SENT, error_code=None, message_id=message.id)


class Scheduler:
    def __init__(self, store: ScheduledStore, sender: ChatSender, poll_seconds: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.sender = sender
        self.poll_seconds = poll_seconds
        self.clock = clock
        self._wake = asyncio.Event()
        self._ticked_at = 0.0  # the clock the last tick read the due posts at
        self.sent = 0  # runs this process made (sent or failed), for tests and logs

    def wake(self) -> None:
        """Something was scheduled here: look again now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            delay = self.poll_seconds
            self._wake.clear()  # before reading: a post scheduled during the tick wakes the next wait at once
            try:
                if await self.tick() >= BATCH:
                    delay = 0.0  # a backlog (after downtime): the next batch at once
                earliest = await self.store.earliest()
                # Sooner when the next post falls due before the next poll. One the tick saw due and still due
                # after it is another process's or cannot be sent: it waits for the poll rather than spinning
                # the loop. One that fell due since the tick read (a wake a hair early) goes at once.
                if earliest is not None and earliest > self._ticked_at:
                    delay = min(delay, max(0.0, earliest - self.clock()))
            except Exception:  # noqa: BLE001 - a store hiccup must not end the loop; the next poll retries
                log.exception("scheduler tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def tick(self) -> int:
        """Sends what is due now (BATCH at most); returns how many due posts it looked at."""
        self._ticked_at = self.clock()
        due = await self.store.due(self._ticked_at, BATCH)
        for post in due:
            try:
                await self.fire(post)
            except Exception:  # noqa: BLE001 - one post that cannot be planned must not hold up the others
                log.exception("scheduled post %s could not be sent", post.id)
        return len(due)

    async def fire(self, post: ScheduledPost) -> int:
        now = self.clock()
        occurrence, next_run = await asyncio.to_thread(plan, post, now)  # iterating a rule is CPU work
        if not await self.store.claim(post, next_run):
            return 0  # another process took it (or it was cancelled meanwhile)
        run = await self.sender.send(post, occurrence, now)
        if not await self.store.record(post.id, run):
            log.warning("scheduled post %s: occurrence %.0f had a run already", post.id, occurrence)
        self.sent += 1
        log.info("scheduled post %s: %s%s", post.id, run.outcome, f" ({run.error_code})" if run.error_code else "")
        return 1
