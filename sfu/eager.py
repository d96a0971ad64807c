"""Running a coroutine eagerly: now, up to its first suspension, instead of in a new task at the loop's next turn.

aiortc's RTCP handlers are coroutines that finish without ever suspending. A task per RTCP packet (its creation,
a turn of the event loop, a task step) cost about as much as the handling itself on the forwarding server (#14).
Python 3.12's eager task factory does this for every task; this does it for the calls that choose it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def start_eagerly(coroutine: Coroutine[Any, Any, None]) -> None:
    """Runs `coroutine` until it finishes or first suspends; what remains after a suspension runs in a task.
    An exception raised before the first suspension propagates to the caller, as a plain call's would."""
    try:
        awaited = coroutine.send(None)
    except StopIteration:
        return
    asyncio.ensure_future(_resume(coroutine, awaited))


async def _resume(coroutine: Coroutine[Any, Any, None], awaited: Any) -> None:
    """Drives a suspended coroutine as a task would: waits for what it awaits, then resumes it. The coroutine reads
    the awaited future's outcome itself when resumed (Future.__await__); only this task's own cancellation is
    thrown into it."""
    while True:
        try:
            if awaited is None:  # a bare yield (asyncio.sleep(0)): one turn of the loop
                await asyncio.sleep(0)
            else:
                awaited._asyncio_future_blocking = False  # taken over, as a task takes what its coroutine yields
                await awaited
        except asyncio.CancelledError as exc:
            try:
                awaited = coroutine.throw(exc)
            except StopIteration:
                return
            continue
        except BaseException:  # noqa: BLE001 - the coroutine's own await raises it when resumed
            pass
        try:
            awaited = coroutine.send(None)
        except StopIteration:
            return
