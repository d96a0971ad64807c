"""An approval in a real headless Chromium: a bot posts a request with Approve and Reject buttons, the approver
clicks Approve in her browser, the integration (a real loopback receiver) answers with an update, and the message
changes on the other person's screen too; a slash command's ephemeral answer shows on one screen only. Nothing the
browsers receive (REST bodies, socket frames) holds the integration URL, the context or a button's value."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from chat.web import CHAT_API
from integrations.signing import verify_headers
from tests.conftest import RunningServer, running_server, server_config
from tests.integrations.hooks_helpers import Receiver, call

playwright_api = pytest.importorskip("playwright.async_api")

CONTEXT_SECRET = "ctx-approval-secret"
VALUE_SECRET = "value-po-4711"


@pytest_asyncio.fixture(loop_scope="session")
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """The real server on the session loop, allowed to call integrations on loopback."""
    async with running_server(server_config(tmp_path / "data", hooks_allow_private=True)) as running:
        yield running


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_an_approval_clicked_in_the_browser_updates_everyones_screen(server: RunningServer,
                                                                            browser: Any) -> None:
    expect = playwright_api.expect
    api = server.app[CHAT_API]
    for login, role in (("ann", "admin"), ("bob", "member")):
        await api.service.add_user(None, login, role)
    ann_user = await api.store.get_user("ann")
    assert ann_user is not None
    channel, _ = await api.service.create_channel(ann_user, "purchasing", "team", ["bob"])

    async def integration(request: web.Request, body: bytes) -> web.StreamResponse:
        if request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return web.json_response({"text": "Budget left: 3 200 EUR"})  # the slash command: ephemeral
        click = json.loads(body)
        verb = "Approved" if click["action_id"] == "approve" else "Rejected"
        return web.json_response({"replace_original": True, "text": f"PO 4711: {verb} by {click['user']['id']}"})

    async with Receiver(integration) as receiver:
        status, bot = await call(server, "POST", "/v1/bots", {"login": "purchasebot", "name": "Purchasing"})
        assert status == 201, bot
        status, _ = await call(server, "POST", f"/v1/channels/{channel.id}/members", {"add": ["purchasebot"]})
        assert status == 200
        status, command = await call(server, "POST", "/v1/commands", {"trigger": "budget", "url": receiver.url})
        assert status == 201

        seen: dict[str, list[str]] = {"ann": [], "bob": []}

        async def open_page(login: str) -> Any:
            ctx = await browser.new_context()
            page = await ctx.new_page()
            page.on("websocket", lambda ws: ws.on("framereceived", lambda f: seen[login].append(str(f))))

            async def keep(response: Any) -> None:
                if "/v1/" in response.url:
                    try:
                        seen[login].append(await response.text())
                    except Exception:  # noqa: BLE001 - a body the page never read (a redirect) is not kept
                        pass
            page.on("response", keep)
            await page.goto(f"{server.url}/chat#token={api.auth.mint_user_token(login, 3600)}")
            await page.wait_for_selector("body[data-ready=true]")
            await page.click("li[data-name='purchasing'] a")
            await page.wait_for_selector(".cv-chat[data-ready=true]")
            return page

        ann, bob = await open_page("ann"), await open_page("bob")
        status, posted = await call(server, "POST", "/v1/interactive/messages", {
            "to": "purchasing", "content": "PO 4711: 12 laptops, 14 400 EUR. Approve?", "url": receiver.url,
            "context": {"po": 4711, "note": CONTEXT_SECRET},
            "actions": [{"action_id": "approve", "text": "Approve", "value": VALUE_SECRET, "style": "primary"},
                        {"action_id": "reject", "text": "Reject", "value": VALUE_SECRET, "style": "danger"}]},
            key=bot["key"])
        assert status == 201, posted
        request = ann.locator(".cv-msg", has_text="PO 4711: 12 laptops")
        await expect(request.locator(".cv-button--primary", has_text="Approve")).to_be_visible()
        await expect(request.locator(".cv-button--danger", has_text="Reject")).to_be_visible()
        await expect(bob.locator(".cv-msg", has_text="PO 4711: 12 laptops").locator(".cv-button")).to_have_count(2)

        await request.locator(".cv-button", has_text="Approve").click()
        for page in (bob, ann):  # everyone: the message updated in place, its buttons gone
            updated = page.locator(".cv-msg", has_text="PO 4711: Approved by ann")
            await expect(updated).to_have_count(1)
            await expect(updated.locator(".cv-button")).to_have_count(0)
            await expect(page.locator(".cv-msg", has_text="12 laptops")).to_have_count(0)
        click = json.loads(receiver.seen[-1].body)
        verify_headers(bot["signing_secret"], receiver.seen[-1].headers, receiver.seen[-1].body)
        assert click["user"]["id"] == "ann" and click["value"] == VALUE_SECRET
        assert click["context"] == {"po": 4711, "note": CONTEXT_SECRET}

        # A slash command typed in the browser: the answer shows on ann's screen alone, and is not a message.
        await ann.fill(".cv-composer textarea", "/budget it")
        await ann.press(".cv-composer textarea", "Enter")
        await expect(ann.locator(".cv-ephemeral", has_text="Budget left")).to_have_count(1)
        await expect(ann.locator(".cv-ephemeral .cv-only-you")).to_have_count(1)
        await bob.wait_for_timeout(500)
        await expect(bob.locator(".cv-msg", has_text="Budget left")).to_have_count(0)
        await expect(bob.locator(".cv-msg", has_text="/budget")).to_have_count(0)
        assert command["secret"]

        for login, payloads in seen.items():
            text = "\n".join(payloads)
            assert "Approved by ann" in text, f"{login}'s browser saw no update"
            for secret in (CONTEXT_SECRET, VALUE_SECRET, receiver.url, receiver.url.split("/hook")[0]):
                assert secret not in text, f"{secret!r} reached {login}'s browser"
        for page in (ann, bob):
            await page.context.close()
