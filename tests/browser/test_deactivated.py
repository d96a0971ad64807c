"""A participant whose account is deactivated mid-meeting (#10) sees it in Chromium, at once, and stays out: the
server sends `account_disabled` before closing with 4410, so the page ends the call instead of taking its failing
peer connections for a network problem and reconnecting."""

from __future__ import annotations

import asyncio

import pytest

from chat.web import CHAT_API
from signaling.ws import SESSIONS
from tests.browser.conftest import wait_for
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_a_deactivated_participant_is_told_and_does_not_reconnect(join, server: RunningServer) -> None:
    alice = await join("deactivated-room", "Alice")
    identity = next(s.token.identity for s in server.app[SESSIONS].values()
                    if s.token is not None and s.room_name == "deactivated-room")
    await server.app[CHAT_API].end_access(identity)  # the admin's and the directory sync's path
    await alice.page.wait_for_selector("#ended:not([hidden])", timeout=5000)
    assert await alice.page.text_content("#ended-title") == "Your account was deactivated"
    assert await alice.page.is_hidden("#rejoin")
    await asyncio.sleep(2)  # long enough for a reconnect attempt, were one made
    state = await alice.state()
    assert not state["joined"] and not state["reconnecting"], state
    await wait_for(lambda: _room_empty(server), what="the server to drop Alice")


async def _room_empty(server: RunningServer) -> bool:
    return not any(s.room_name == "deactivated-room" for s in server.app[SESSIONS].values())
