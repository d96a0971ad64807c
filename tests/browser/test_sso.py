"""Single sign-on in a real Chromium against a real OpenID provider (panva's oidc-provider on loopback): /signin
shows "Sign in with SSO" only when the server has a provider, the button goes through the provider's login and
consent pages and lands on the home page signed in; a failed sign-in comes back to /signin with the reason said
in the reader's language. No address carries a token, no page logs an error."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from tests.browser.test_home import JWT
from tests.conftest import RunningServer, free_port, running_server, server_config
from tests.identity.oidc_idp import CLIENT_ID, CLIENT_SECRET, oidc_provider

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def sso_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with oidc_provider(tmp_path, [url + "/v1/auth/oidc/callback"]) as provider:
        config = server_config(tmp_path / "data", port=port, oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID,
                               oidc_client_secret=CLIENT_SECRET, oidc_scopes=("openid", "profile", "email", "org"))
        async with running_server(config) as server:
            yield server


async def test_sign_in_with_sso_lands_on_the_home_page_signed_in(browser: Browser, sso_server: RunningServer) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    urls: list[str] = []
    console: list[tuple[str, str]] = []  # (the page it was on, the line): the provider's pages are not ours
    page.on("request", lambda request: urls.append(request.url))
    page.on("console", lambda msg: console.append((page.url, f"{msg.type}: {msg.text}")))
    page.on("pageerror", lambda err: console.append((page.url, f"pageerror: {err}")))
    try:
        await page.goto(f"{sso_server.url}/signin")
        await page.wait_for_selector("#sso-start", state="visible")
        assert await page.inner_text("#sso-start") == "Sign in with SSO"
        await page.click("#sso-start")
        await page.wait_for_selector('input[name="login"]')  # the provider's own login page
        await page.fill('input[name="login"]', "sub-alice-0001")
        await page.fill('input[name="password"]', "any password")
        await page.click('button[type="submit"]')
        await page.wait_for_selector('button[type="submit"]')  # its consent page
        await page.click('button[type="submit"]')
        await page.wait_for_url(re.compile(re.escape(sso_server.url) + r"/$"))
        me = await page.evaluate("fetch('/v1/me').then(r => r.json())")
        assert me["login"] == "alice" and me["name"] == "Alice Wong" and me["role"] == "member"
        leaked = [u for u in urls if re.search(r"[?#&](token|access_token|id_token)=", u, re.I) or JWT.search(u)]
        assert not leaked, leaked
        problems = [line for where, line in console if where.startswith(sso_server.url)
                    and line.startswith(("error:", "warning:", "pageerror"))]
        assert not problems, console
    finally:
        await context.close()


async def test_a_failed_sign_in_is_explained_and_no_sso_without_a_provider(browser: Browser,
                                                                           server: RunningServer) -> None:
    context = await browser.new_context(locale="zh-CN")
    page = await context.new_page()
    try:
        await page.goto(f"{server.url}/signin?error=oidc_state_mismatch")
        await page.wait_for_function("document.getElementById('form-error').textContent.length > 0")
        assert await page.inner_text("#form-error") == "登录超时，或不是在此浏览器中发起的，请重试。"
        assert page.url == f"{server.url}/signin"  # the code is not left in the address bar
        await page.wait_for_load_state("networkidle")
        assert not await page.is_visible("#sso")  # this server has no provider
    finally:
        await context.close()
