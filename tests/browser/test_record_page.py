"""The organizer's meeting page (issue #13), end to end in Chromium: a meeting with spoken English (espeak-ng as
the fake microphone, real captions) is ended by its organizer, who opens the meeting page from the end screen,
reads the transcript, downloads the VTT (the download is checked: cues, speaker names), adds an action item and
posts it to the meeting's chat. No token ever appears in an address."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from chat.web import CHAT
from tests.browser.conftest import CHROMIUM, chromium_args, wait_for
from tests.conftest import running_server, server_config
from tests.transcribe.speech import make_speech_wav, tts_available
from transcribe.wer import word_error_rate

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

SPOKEN = "Good morning everyone. Today we review the project plan and the budget for next quarter."
CUE = re.compile(r"^(\d{2}:\d{2}:\d{2}\.\d{3}) --> (\d{2}:\d{2}:\d{2}\.\d{3})$")


async def test_the_organizer_ends_the_meeting_and_downloads_its_vtt_from_the_meeting_page(tmp_path: Path) -> None:
    if not tts_available("espeak"):
        pytest.skip("espeak-ng is needed for test speech")
    from playwright.async_api import async_playwright

    wav = make_speech_wav(SPOKEN, "espeak", tmp_path / "alice.wav", lead_silence=1.0, tail_silence=2.0, rate=48000)
    async with running_server(server_config(tmp_path / "data", captions_default=True)) as server, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=chromium_args() + [f"--use-file-for-fake-audio-capture={wav.path}"])
        try:
            context = await browser.new_context(permissions=["camera", "microphone"], accept_downloads=True)
            page = await context.new_page()
            console: list[str] = []
            page.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
            # On the meeting page: any console error (a CSP refusal, a failed request) counts.
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}")
                    if msg.type == "error" and "/m/" in page.url else None)
            addresses: list[str] = []
            page.on("framenavigated", lambda frame: addresses.append(frame.url))
            page.on("dialog", lambda dialog: dialog.accept())  # "End the meeting for everyone?"

            # Alice opens a new room from the start page: she is its organizer (moderator).
            await page.goto(f"{server.url}/?room=record-room")
            await page.fill("#name", "Alice")
            await page.click("#open")
            await page.wait_for_url(re.compile(r"/r/[^/?#]+$"))
            await page.click("#join:not([disabled])")
            await wait_for(lambda: page.evaluate("window.convene.state().joined"), what="Alice to join")
            assert await page.evaluate("window.convene.state().self.moderator")
            alice_id = (await page.evaluate("window.convene.state()"))["self"]["id"]

            async def heard() -> str:
                # The speaker reads her own captions (the server sends each caption to the whole room).
                captions = await page.evaluate("window.convene.captions()")
                text = " ".join(c["text"] for c in captions if c["participant_id"] == alice_id and c["final"])
                return text if _best_wer(text) <= 0.35 else ""

            said = await wait_for(heard, timeout=90, interval=1.0, what="Alice's own words as captions")
            print(f"Alice read her own captions: {said!r}")

            # She ends the meeting for everyone; the end screen links the meeting page.
            await page.click("#end-room")
            await page.wait_for_selector("#ended:not([hidden])")
            link = page.locator("#open-record")
            await link.wait_for(state="visible")
            assert re.fullmatch(r"/m/m_[A-Za-z0-9_-]{22}", await link.get_attribute("href") or "")
            await link.click()
            await page.wait_for_url(re.compile(r"/m/m_[A-Za-z0-9_-]{22}$"))
            meeting_id = page.url.rsplit("/", 1)[1]
            await page.wait_for_selector("body[data-ready=true]", timeout=20000)

            # The page: the meeting, its attendance, the transcript with speaker and time, searchable.
            assert "record-room" in await page.inner_text("#meeting-title")
            assert "Alice" in await page.inner_text("#attendance")
            mine = await page.inner_text("#my-meetings")  # "my meetings": the ones this browser holds a pass for
            assert "record-room" in mine and "Alice" in mine, mine
            segments = page.locator("#transcript .segment")
            assert await segments.count() >= 1
            assert await segments.first.locator(".segment__speaker").inner_text() == "Alice"
            assert re.fullmatch(r"\d{2}:\d{2}:\d{2}", await segments.first.locator(".segment__time").inner_text())
            await page.fill("#transcript-search", "zzzz-nothing-said")
            assert await page.locator("#transcript .segment:visible").count() == 0
            await page.fill("#transcript-search", "")
            assert await page.locator("#transcript .segment:visible").count() == await segments.count()

            # The VTT download: fetched with the record token in a header, saved from a blob.
            async with page.expect_download() as info:
                await page.click('#downloads [data-format="vtt"]')
            download = await info.value
            assert download.suggested_filename.startswith("record-room-") and download.suggested_filename.endswith(".vtt")
            vtt = Path(await download.path()).read_text(encoding="utf-8")
            print(vtt)
            _check_vtt(vtt)

            # The organizer adds an action item and posts the action items to the meeting's chat.
            await page.click("text=Add action item")
            row = page.locator("#edit-items .item-row").last
            await row.locator(".item__task").fill("Send the quarter budget to finance")
            await row.locator(".item__owner").fill("Alice")
            await row.locator(".item__due").fill("2030-01-10")
            await page.click("#notes-publish")
            await wait_for(lambda: _posted(page), what="the notes posted")
            tasks = await _tasks(server.app, meeting_id)
            assert ("Send the quarter budget to finance", 2030) in [(t, y) for t, y in tasks], tasks

            # No credential in any address sent to the server (the invite's own #fragment is by design), none at all
            # in the meeting page's, and no script or console error there.
            assert not [a for a in addresses if "eyJ" in a.split("#")[0] or "token=" in a.split("#")[0]], addresses
            assert [a for a in addresses if "/m/" in a] == [f"{server.url}/m/{meeting_id}"], addresses
            assert not console, console
        finally:
            await browser.close()


def _check_vtt(vtt: str) -> None:
    lines = vtt.splitlines()
    assert lines[0] == "WEBVTT"
    cues = [(i, CUE.match(line)) for i, line in enumerate(lines) if CUE.match(line)]
    assert cues, vtt
    starts = []
    for i, match in cues:
        assert match is not None
        start, end = match.group(1), match.group(2)
        assert start < end, (start, end)
        starts.append(start)
        voice = lines[i + 1]
        assert voice.startswith("<v Alice>") and voice.endswith("</v>"), voice  # every cue names its speaker
    assert starts == sorted(starts)
    text = " ".join(lines[i + 1][len("<v Alice>"):-len("</v>")] for i, _ in cues)
    assert _best_wer(text) <= 0.35, text


async def _posted(page: Any) -> bool:
    text = await page.inner_text("#notes-state")
    return "posted to the meeting chat" in text


async def _tasks(app: Any, meeting_id: str) -> list[tuple[str, int]]:
    chat = app[CHAT]
    channel = await chat.resolve(meeting_id)
    messages = await chat.store.history(channel.id, None, None, 100, None)
    import datetime
    return [(m.task.title, datetime.datetime.fromtimestamp(m.task.due or 0, datetime.timezone.utc).year)
            for m in messages if m.task is not None]


def _best_wer(text: str) -> float:
    """The word error rate of the best single pass of the looping sentence within `text`."""
    words = text.split()
    n = len(SPOKEN.split())
    if len(words) <= n:
        return word_error_rate(SPOKEN, text)
    return min(word_error_rate(SPOKEN, " ".join(words[i:i + n])) for i in range(len(words) - n + 1))
