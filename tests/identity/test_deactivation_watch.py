"""One deactivation watch per process (issue #14): it reads the accounts table only while someone has sockets here,
and its one-round-trip read (store/poll_read.py) answers what a read through SQLAlchemy answers, on SQLite and
PostgreSQL. That a deactivation in another process closes sockets here within a second is proved by
tests/chat/test_deactivate.py and tests/identity/test_ldap.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from identity.deactivation_watch import DEACTIVATION_WATCH, POLL_SECONDS
from identity.passwords import _DEACTIVATED_SINCE, AccountStore
from store.database import Database
from tests.conftest import RunningServer


async def test_an_idle_server_reads_nothing_and_reads_while_someone_is_in_a_meeting(server: RunningServer) -> None:
    watch = server.app[DEACTIVATION_WATCH]
    assert len(watch.listeners) == 2  # chat and the meeting sockets share the one watch
    await asyncio.sleep(4 * POLL_SECONDS)
    assert watch.reads == 0  # nobody here: nothing to close, nothing read
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.url + "/v1/rooms/standup/ws")
        await ws.send_json({"type": "join", "token": await server.token("standup", "alice")})
        assert (await ws.receive_json(timeout=5))["type"] == "joined"
        await asyncio.sleep(3 * POLL_SECONDS)
        assert watch.reads >= 2
        await ws.close()
    await asyncio.sleep(2 * POLL_SECONDS)  # the session ends with its socket
    after = watch.reads
    await asyncio.sleep(3 * POLL_SECONDS)
    assert watch.reads == after


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_one_round_trip_read_answers_as_a_read_does(tmp_path: Path, backend: str,
                                                            request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres").create_database() if backend == "postgres" else None
    db = Database.for_config(url, tmp_path)
    await db.open()
    try:
        accounts = AccountStore(db)
        before = time.time() - 1
        for login in ("ann", "bob", "cyd"):
            await accounts.ensure(login)
        await accounts.disable("ann")
        await accounts.disable("cyd")
        async with db.read() as conn:
            expected = sorted((await conn.scalars(_DEACTIVATED_SINCE, {"since": before})).all())
        assert expected == ["ann", "cyd"]
        assert sorted(await accounts.deactivated_since(before)) == expected
        assert await accounts.deactivated_since(time.time() + 1) == []
    finally:
        await db.close()
