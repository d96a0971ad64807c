"""The chat's attach button (issue #13): our own paperclip icon, not an emoji that shows as a missing-glyph box
where the machine has no emoji font (a headless Chromium on a server has none)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_the_attach_button_shows_our_icon_and_has_a_name(join: Any) -> None:
    alice = await join("attach-room", "Alice")
    page = alice.page
    await wait_for(lambda: page.is_visible("#open-chat"), what="the chat button")
    await page.click("#open-chat")
    attach = page.locator(".cv-attach")
    await attach.wait_for(state="visible")
    assert await attach.evaluate("label => label.textContent.trim()") == ""  # no glyph text at all
    icon = attach.locator("svg.icon path")
    assert await icon.count() == 1 and (await icon.get_attribute("d") or "").startswith("M16.5 6v11.5")
    box = await attach.locator("svg").bounding_box()
    assert box is not None and 12 <= box["width"] <= 32 and 12 <= box["height"] <= 32  # drawn, icon-sized
    assert await attach.get_attribute("aria-label") or await attach.get_attribute("title")
    # It still opens the file picker.
    async with page.expect_file_chooser() as chooser:
        await attach.click()
    assert (await chooser.value).is_multiple()
