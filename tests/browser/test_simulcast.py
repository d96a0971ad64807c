"""Simulcast in real browsers: Alice's camera goes out in three layers; Bob's small tile gets the low
layer and, once his window (and so the tile) is large, the high one (frame width in getStats)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import BrowserParticipant, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def camera_width(viewer: BrowserParticipant, sender_id: str) -> int:
    stats = await viewer.stats()
    for track in stats["tracks"]:
        if track["participant_id"] == sender_id and track["source"] == "camera":
            return int(track["frameWidth"] or 0)
    return 0


async def test_small_tile_gets_low_layer_large_tile_gets_high(join: Any) -> None:
    alice = await join("simulcast-room", "Alice")
    bob = await join("simulcast-room", "Bob", viewport={"width": 480, "height": 360})
    alice_id = str((await alice.state())["self"]["id"])
    # A small window: Bob's tiles are ~200 px wide, the low layer (1/4 size) is enough.
    low = await wait_for(lambda: _width_at_most(bob, alice_id, 320), timeout=30, what="the low layer at Bob")
    print(f"small tile: Alice's camera arrives {low} px wide")
    # A large window: the tile is ~900 px wide; the high layer comes, after a keyframe.
    await bob.page.set_viewport_size({"width": 1920, "height": 1080})
    high = await wait_for(lambda: _width_at_least(bob, alice_id, 800), timeout=30, what="the high layer at Bob")
    print(f"large tile: Alice's camera arrives {high} px wide")
    assert high > 2 * low


async def _width_at_most(viewer: BrowserParticipant, sender_id: str, limit: int) -> int:
    width = await camera_width(viewer, sender_id)
    return width if 0 < width <= limit else 0


async def _width_at_least(viewer: BrowserParticipant, sender_id: str, limit: int) -> int:
    width = await camera_width(viewer, sender_id)
    return width if width >= limit else 0
