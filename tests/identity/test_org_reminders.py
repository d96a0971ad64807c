"""Task reminders per organisation (#10): each organisation's tasks are reminded its own `remind_before_seconds`
before they are due (PATCH /v1/org at its Host), not the default organisation's."""

from __future__ import annotations

import time

from chat.jobs import run_reminders
from chat.web import CHAT_API
from tests.identity.test_organisations import Client, Org, world  # noqa: F401 - the fixture

BEFORE = {"acme": 600, "globex": 7200}  # the default organisation's stays 3600


async def reminders_in(client: Client, org: Org) -> list[str]:
    history = await client.call("GET", f"/v1/channels/{org.channel}/messages", org.host, org.token, 200)
    return [m["content"] for m in history["messages"] if m["author"] == "convene"]


async def test_each_organisation_reminds_its_own_time_before(world: tuple[Client, dict[str, Org]]) -> None:
    client, orgs = world
    due = time.time() + 1800  # inside globex's two hours, outside acme's ten minutes
    for name, org in orgs.items():
        settings = await client.call("PATCH", "/v1/org", org.host, org.token, 200,
                                     json={"remind_before_seconds": BEFORE[name]})
        assert settings["remind_before_seconds"] == BEFORE[name]
        await client.call("POST", "/v1/messages", org.host, org.token, 201, json={
            "to": "general", "type": "task", "task": {"title": f"{name} report", "assignee": f"{name}-bob", "due": due}})
    service = client.server.app[CHAT_API].service
    # Now: only globex's task is within its organisation's reminder time.
    assert await run_reminders(service, time.time()) == 1
    assert await reminders_in(client, orgs["acme"]) == []
    globex = await reminders_in(client, orgs["globex"])
    assert len(globex) == 1 and "globex report" in globex[0] and "due at" in globex[0]
    # Nine minutes before it is due, acme's comes (once); globex's is not repeated.
    assert await run_reminders(service, due - 540) == 1
    assert await run_reminders(service, due - 540) == 0
    acme = await reminders_in(client, orgs["acme"])
    assert len(acme) == 1 and "acme report" in acme[0] and "due at" in acme[0]
    assert len(await reminders_in(client, orgs["globex"])) == 1
    # Overdue: both, each in its own organisation's channel.
    assert await run_reminders(service, due + 1) == 2
    for org in orgs.values():
        assert "overdue" in (await reminders_in(client, org))[-1]
