"""The admin pages (/admin) in a real Chromium, signed in by password: users (search, role change, deactivate),
the department tree, the permission table (taking start_meeting from members hides "Start a meeting" on their
home page and the server refuses them), the directory's status; a member sees no admin data."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Browser, Page

from chat.web import CHAT_API
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

PASSWORD = "correct horse battery"
PEOPLE = (("olga", "owner", "", "Olga"), ("ann", "member", "研发部/前端组", "Ann Lee"),
          ("ben", "member", "研发部/后端组", "Ben Wu"), ("carl", "member", "sales", "Carl"))


async def signed_in_page(browser: Browser, server: RunningServer, login: str) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{server.url}/signin")
    await page.fill("#login", login)
    await page.fill("#password", PASSWORD)
    await page.click("#signin-submit")
    await page.wait_for_selector('body[data-ready="home"]')
    return page


async def member_may_start(server: RunningServer, login: str, room: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(server.url + "/v1/auth/login", json={"login": login, "password": PASSWORD}) as r:
            csrf = (await r.json())["csrf"]
        async with http.post(f"{server.url}/v1/rooms/{room}/join-as-member", headers={"X-CSRF-Token": csrf}) as r:
            body = await r.json()
            return r.status, body.get("error", {}).get("code", "")


async def test_admin_pages(browser: Browser, server: RunningServer) -> None:
    api = server.app[CHAT_API]
    assert api.accounts is not None
    for login, role, department, name in PEOPLE:
        await api.service.add_user(None, login, role, department, name)
        await api.accounts.set_password(login, PASSWORD)

    olga = await signed_in_page(browser, server, "olga")
    try:
        assert await olga.is_visible("#home-admin")
        await olga.click("#home-admin")
        await olga.wait_for_selector('body[data-ready="admin"]')

        # Users: every one listed; the search narrows; a role change and a deactivation reach the server.
        assert await olga.locator("#user-rows tr").count() == len(PEOPLE)
        await olga.fill("#user-search", "后端")
        assert await olga.locator("#user-rows tr").all_inner_texts() == [
            await olga.locator('#user-rows tr[data-login="ben"]').inner_text()]
        await olga.select_option('tr[data-login="ben"] select.admin__role', "admin")
        for _ in range(40):  # the PATCH is on its way; the store says when it landed
            ben = await api.store.get_user("ben")
            if ben is not None and ben.role == "admin":
                break
            await olga.wait_for_timeout(100)
        assert ben is not None and ben.role == "admin"
        await olga.fill("#user-search", "")
        olga.once("dialog", lambda dialog: dialog.accept())
        await olga.click('tr[data-login="carl"] .admin__deactivate')
        await olga.wait_for_selector('tr[data-login="carl"].admin__inactive')
        carl = await api.accounts.get("carl")
        assert carl is not None and not carl.active
        assert await olga.is_disabled('tr[data-login="olga"] select.admin__role')  # not one's own role

        # Departments: the tree from the users' paths.
        await olga.click('[data-tab="departments"]')
        await olga.wait_for_selector('#department-tree li[data-path="研发部/前端组"]')
        top = olga.locator('#department-tree > li[data-path="研发部"]')
        assert "2" in await top.locator(":scope > .admin__count").inner_text()

        # Permissions: members lose start_meeting; their home page hides the button and the server refuses.
        assert (await member_may_start(server, "ann", "before-change"))[0] == 201
        await olga.click('[data-tab="permissions"]')
        box = olga.locator('tr[data-permission="start_meeting"] input[data-role="member"]')
        await box.wait_for()
        assert await box.is_checked()
        await box.uncheck()
        await olga.click("#permissions-save")
        await olga.wait_for_selector("#permissions-saved:not(:empty)")
        await olga.reload()
        await olga.wait_for_selector('body[data-ready="admin"]')
        assert not await olga.locator('tr[data-permission="start_meeting"] input[data-role="member"]').is_checked()
        assert await member_may_start(server, "ann", "after-change") == (403, "not_permitted")
        ann = await signed_in_page(browser, server, "ann")
        try:
            assert await ann.is_hidden("#start-meeting") and await ann.is_visible("#start-not-permitted")
            assert await ann.is_hidden("#home-admin")
            await ann.goto(f"{server.url}/admin")
            await ann.wait_for_selector("#admin-gate:not(:empty)")
            assert await ann.is_hidden("#admin-body")
        finally:
            await ann.context.close()

        # Directory: no --ldap-url here, and the status says so.
        await olga.click('[data-tab="directory"]')
        await olga.wait_for_selector("#directory-status dt")
        assert await olga.locator("#directory-status dd").first.inner_text() == "no"
        assert await olga.is_hidden("#directory-sync")
    finally:
        await olga.context.close()
