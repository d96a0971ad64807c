"""The chat renderer in a real Chromium: message text becomes tokens, then DOM nodes (never HTML), so
a mention inside a link stays part of one link, a mention outside links is still a mention, and markup
in a message is shown as text."""

from __future__ import annotations

from typing import Any

import pytest

from chat.web import CHAT_API
from tests.conftest import RunningServer



MESSAGE = ('see https://x.example/@bob/page, ask @bob. <img src=x onerror="window.pwned=1"> '
           "**hi @ann** `@code https://not.a.link` mail bob@example.com")




@pytest.mark.browser
async def test_message_text_renders_as_tokens(server: RunningServer, browser: Any) -> None:
    api = server.app[CHAT_API]
    for login in ("ann", "bob"):
        await api.service.add_user(None, login, "member")
    ann = await api.store.get_user("ann")
    assert ann is not None
    await api.service.create_channel(ann, "proj", "team", ["bob"])
    from chat.service import PostRequest
    await api.service.post(ann, PostRequest(to="proj", content=MESSAGE))

    page = await (await browser.new_context()).new_page()
    await page.goto(f"{server.url}/chat#token={api.auth.mint_user_token('bob', 3600)}")
    await page.wait_for_selector("body[data-ready=true]")
    await page.click("li[data-name='proj'] a")
    await page.wait_for_selector(".cv-chat[data-ready=true]")
    text = page.locator(".cv-msg .cv-text").first
    dom = await text.evaluate("""(el) => ({
        links: [...el.querySelectorAll('a')].map((a) => [a.getAttribute('href'), a.textContent, a.rel]),
        mentions: [...el.querySelectorAll('.cv-mention')].map((m) => [m.textContent, m.dataset.login,
                                                                     !!m.closest('a')]),
        code: [...el.querySelectorAll('code')].map((c) => c.textContent),
        strong: [...el.querySelectorAll('strong')].map((s) => s.textContent),
        imgs: el.querySelectorAll('img').length,
        text: el.textContent,
        pwned: window.pwned === 1,
    })""")
    assert dom["links"] == [["https://x.example/@bob/page", "https://x.example/@bob/page", "noopener noreferrer"]]
    assert dom["mentions"] == [["@bob", "bob", False], ["@ann", "ann", False]]
    assert dom["code"] == ["@code https://not.a.link"] and dom["strong"] == ["hi @ann"]
    assert dom["imgs"] == 0 and not dom["pwned"]
    assert dom["text"] == MESSAGE.replace("**", "").replace("`", "")  # every character shown, as text

    # The tokenizer itself, on the edges: trailing punctuation, parentheses, e-mail, CJK logins, lines.
    tokens = await page.evaluate("""async () => {
        const { tokenize } = await import('/static/chat/render.js');
        const kinds = (s) => tokenize(s).map((t) => [t.type, t.text ?? (t.children || []).map((c) => c.text).join('')]);
        return {
            paren: kinds('(https://x.example/a_(b)) end.'),
            email: kinds('bob@example.com and @@ann'),
            cjk: kinds('line1\\n@李雷 ok'),
            star: kinds('a*b* c *d*'),
        };
    }""")
    assert tokens["paren"] == [["text", "("], ["link", "https://x.example/a_(b)"], ["text", ") end."]]
    assert tokens["email"] == [["text", "bob@example.com and @@ann"]]
    assert tokens["cjk"] == [["text", "line1"], ["br", ""], ["mention", "@李雷"], ["text", " ok"]]
    assert tokens["star"] == [["text", "a*b* c "], ["em", "d"]]
