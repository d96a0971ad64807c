"""Live captions from a real browser's microphone: Chromium plays an espeak-ng recording as its fake
microphone into the meeting; a second browser participant sees the caption text under the speaker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.browser.conftest import CHROMIUM, BrowserParticipant, chromium_args, wait_for
from tests.browser.test_meeting import self_id
from tests.transcribe.speech import make_speech_wav, tts_available
from transcribe.wer import word_error_rate

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

SPOKEN = "Good morning everyone. Today we review the project plan and the budget for next quarter."


async def test_a_browser_speaks_and_another_reads_the_captions(join: Any, server: Any, tmp_path: Path) -> None:
    if not tts_available("espeak"):
        pytest.skip("espeak-ng is needed for test speech")
    from playwright.async_api import async_playwright

    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{server.url}/v1/rooms", json={"name": "speech-room", "captions": True, "guests": True},
                            headers={"Authorization": f"Bearer {server.api_key}"})
        assert r.status == 201
    wav = make_speech_wav(SPOKEN, "espeak", tmp_path / "alice.wav", lead_silence=1.0, tail_silence=2.0, rate=48000)
    bob = await join("speech-room", "Bob")
    # Alice needs her own browser: the fake microphone file is a browser-wide flag. It loops, so
    # whenever her microphone opens, the sentence comes round again.
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=chromium_args() + [f"--use-file-for-fake-audio-capture={wav.path}"])
        try:
            context = await browser.new_context(permissions=["camera", "microphone"])
            page = await context.new_page()
            await page.goto(f"{server.url}/?room=speech-room")
            await page.fill("#name", "Alice")
            await page.click("#open")
            await page.wait_for_url(re.compile(r"/r/[^/?#]+$"))
            await page.click("#join:not([disabled])")
            alice = BrowserParticipant("Alice", context, page)
            await wait_for(lambda: page.evaluate("window.convene.state().joined"), what="Alice to join")
            alice_id = await self_id(alice)

            async def heard() -> str:
                captions = await bob.page.evaluate("window.convene.captions()")
                text = " ".join(c["text"] for c in captions if c["participant_id"] == alice_id and c["final"])
                # The sentence loops: judge the best single pass of it.
                return text if _best_wer(text) <= 0.25 else ""

            text = await wait_for(heard, timeout=60, interval=1.0, what="Alice's words as captions at Bob")
            print(f"Bob read: {text!r}")
            tile = bob.page.locator(f'.tile[data-participant-id="{alice_id}"][data-kind="main"] .tile__caption')
            assert await tile.count() == 1
        finally:
            await browser.close()


def _best_wer(text: str) -> float:
    """The word error rate of the best single pass of the looping sentence within `text`."""
    words = text.split()
    n = len(SPOKEN.split())
    if len(words) <= n:
        return word_error_rate(SPOKEN, text)
    return min(word_error_rate(SPOKEN, " ".join(words[i:i + n])) for i in range(len(words) - n + 1))
