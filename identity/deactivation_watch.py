"""One watch per process for accounts deactivated by ANOTHER process, handed to whoever has sockets to close.

A deactivation made here (the admin's POST, this process's directory sync) closes the person's sockets at once
through chat's own listeners. One made elsewhere (`convene users disable`, `convene ldap sync`, a second server
on the same database) is only in the accounts table: this watch reads it every `poll_seconds` (0.5 s, so the
sockets close within a second) and hands each login to every listener (chat: its sockets and the person's
bots'; the front door: meeting sockets, also in media workers, which have no chat).

It reads only while some listener is busy (has sockets or sessions to close): an idle process reads nothing.
While nobody listens, `since` still moves on (with the same overlap as after a read): a socket opened later
was authenticated against the account as it was then, and one opened just before a busy tick is covered by the
overlap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from identity.passwords import AccountStore

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # plus a read's time: a deactivation elsewhere closes sockets here within a second
# Each read looks back this far before the last one: a row committed with a slightly earlier clock (another
# process or machine, a commit that took a while) is still seen. A login may so be handed over twice: closing
# is idempotent.
OVERLAP_SECONDS = 2.0


@dataclass(frozen=True)
class Listener:
    busy: Callable[[], bool]  # has something to close now (cheap: asked every tick)
    close: Callable[[str], Awaitable[object]]  # closes what belongs to this login


class DeactivationWatch:
    def __init__(self, accounts: AccountStore, poll_seconds: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.accounts = accounts
        self.poll_seconds = poll_seconds
        self.clock = clock  # wall clock: the rows' updated_at comes from other processes' clocks
        self.listeners: list[Listener] = []
        self.reads = 0  # reads made so far (tests: an idle process makes none)

    def listen(self, busy: Callable[[], bool], close: Callable[[str], Awaitable[object]]) -> None:
        self.listeners.append(Listener(busy, close))

    async def run(self) -> None:
        since = self.clock() - 5
        while True:
            await asyncio.sleep(self.poll_seconds)
            since = await self.tick(since)

    async def tick(self, since: float) -> float:
        """Hands over what was deactivated after `since` if anyone listens; returns the next tick's `since`."""
        checked = self.clock()
        busy = [listener for listener in self.listeners if listener.busy()]
        if not busy:
            return checked - OVERLAP_SECONDS  # nothing to close here: no read
        try:
            logins = await self.accounts.deactivated_since(since)
        except Exception:  # noqa: BLE001 - a store hiccup must not end the loop; the next tick retries
            log.exception("deactivation poll failed")
            return since
        self.reads += 1
        for login in logins:
            for listener in busy:
                try:
                    await listener.close(login)
                except Exception:  # noqa: BLE001 - one listener's failure must not keep the others from closing
                    log.exception("closing the sockets of deactivated %s failed", login)
        return checked - OVERLAP_SECONDS

    async def lifetime(self, _app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self.run(), name="deactivation-watch")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


DEACTIVATION_WATCH = web.AppKey("deactivation_watch", DeactivationWatch)


def deactivation_watch(app: web.Application, accounts: Callable[[], AccountStore]) -> DeactivationWatch:
    """The application's one watch: made, and its task tied to the app's life, by the first part that asks
    (`accounts` gives the store it reads, called only then). Ask after the part that opens the store has put its
    cleanup context in (the watch reads only later anyway)."""
    if DEACTIVATION_WATCH not in app:
        app[DEACTIVATION_WATCH] = watch = DeactivationWatch(accounts())
        app.cleanup_ctx.append(watch.lifetime)
    return app[DEACTIVATION_WATCH]
