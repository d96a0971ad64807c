"""Device pickers: the pre-join level meter follows the (fake, beeping) microphone; during a call the
camera, microphone and speaker switch without rejoining — the same RTCRtpSender carries the new
camera and the other side keeps receiving."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from tests.browser.conftest import CHROMIUM, BrowserParticipant, chromium_args, wait_for
from tests.browser.test_meeting import media_flowing, received, self_id
from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def three_camera_browser() -> AsyncIterator[Browser]:
    """Chromium whose fake capture offers three cameras (and its usual three microphones and speakers).
    fake_device_1 is a Y16 depth camera that no encoder takes (its sender goes silent): the test switches
    from fake_device_0 (I420) to fake_device_2 (MJPEG)."""
    args = ["--use-fake-device-for-media-stream=device-count=3" if a == "--use-fake-device-for-media-stream" else a
            for a in chromium_args()]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            await browser.close()


async def open_prejoin(browser: Browser, server: RunningServer, room: str, name: str) -> BrowserParticipant:
    context = await browser.new_context(permissions=["camera", "microphone"], viewport={"width": 1280, "height": 720})
    page = await context.new_page()
    person = BrowserParticipant(name, context, page)
    page.on("console", lambda msg: person.console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda err: person.console.append(f"pageerror: {err}"))
    await page.goto(f"{server.url}/?room={room}")
    await page.fill("#name", name)
    await page.click("#open")
    await page.wait_for_url(re.compile(r"/r/[^/?#]+$"))
    await page.wait_for_selector("#join:not([disabled])")
    return person


async def options(page: Page, select: str) -> list[dict[str, str]]:
    return await page.eval_on_selector_all(f"{select} option", "(os) => os.map((o) => ({value: o.value, label: o.textContent}))")


async def levels(page: Page, selector: str, samples: int = 25) -> list[float]:
    out = []
    for _ in range(samples):
        out.append(float(await page.get_attribute(selector, "data-level") or 0))
        await asyncio.sleep(0.1)
    return out


async def test_prejoin_meter_and_switching_devices_in_a_call(three_camera_browser: Browser, server: RunningServer) -> None:
    alice = await open_prejoin(three_camera_browser, server, "devices-room", "Alice")
    bob: BrowserParticipant | None = None
    try:
        page = alice.page
        cameras = await options(page, "#prejoin-camera")
        microphones = await options(page, "#prejoin-microphone")
        assert [c["label"] for c in cameras] == ["fake_device_0", "fake_device_1", "fake_device_2"], cameras
        assert len(microphones) >= 2, microphones
        speakers = await options(page, "#prejoin-speaker")
        assert len(speakers) >= 2, speakers  # Chromium has setSinkId

        # The level meter moves with the fake microphone's beeps (loud, then silent, every second).
        seen = await levels(page, "#prejoin-level")
        assert max(seen) > 0.2 and min(seen) < max(seen) - 0.15, seen
        # Another microphone in pre-join: the meter follows the new track.
        await page.select_option("#prejoin-microphone", microphones[1]["value"])
        seen = await levels(page, "#prejoin-level", 15)
        assert max(seen) > 0.2, seen

        await page.click("#join")
        await wait_for(lambda: page.evaluate("window.convene.state().joined"), what="Alice joined")
        assert (await page.evaluate("window.convene.devices()"))["microphone"] == microphones[1]["value"]
        assert (await page.evaluate("window.convene.devices()"))["cameraLabel"] == "fake_device_0"

        bob = await open_prejoin(three_camera_browser, server, "devices-room", "Bob")
        await bob.page.click("#join")
        await wait_for(lambda: bob.page.evaluate("window.convene.state().joined"), what="Bob joined")
        alice_id = await self_id(alice)
        await wait_for(lambda: media_flowing(bob, alice_id, ("camera", "microphone")), timeout=20,
                       what="Alice's media at Bob")

        # Switch the camera in the call: the same sender, a new track, and Bob keeps decoding.
        await page.click("#open-devices")
        await page.wait_for_selector("#call-camera")
        assert await page.eval_on_selector("#call-camera", "(s) => s.value") == cameras[0]["value"]
        sender = await page.evaluate_handle("window.convene.sender('camera')")
        track_before = await page.evaluate("(s) => s.track.id", sender)
        published_before = (await page.evaluate("window.convene.state()"))["published"]
        before = received(await bob.stats(), alice_id, "camera")
        assert before is not None
        await page.select_option("#call-camera", cameras[2]["value"])
        await wait_for(lambda: _label_is(page, "cameraLabel", "fake_device_2"), what="Alice on the third camera")
        assert await page.evaluate("(s) => s === window.convene.sender('camera')", sender)
        assert await page.evaluate("(s) => s.track.id", sender) != track_before
        assert await page.evaluate("(s) => s.track.label", sender) == "fake_device_2"
        # No renegotiation, no new publication: the server sees the same track id and mid.
        assert (await page.evaluate("window.convene.state()"))["published"] == published_before
        progress = await wait_for(lambda: media_flowing(bob, alice_id, ("camera",)), timeout=20,
                                  what="Alice's third camera at Bob")
        assert progress["camera"]["framesDecoded"] > (before["framesDecoded"] or 0)
        # Alice's own tile shows the new camera.
        assert await page.evaluate(
            "document.querySelector('.tile--local video').srcObject.getVideoTracks()[0].label") == "fake_device_2"

        # The microphone too: same sender, and Bob still hears it.
        mic_sender = await page.evaluate_handle("window.convene.sender('microphone')")
        await page.select_option("#call-microphone", microphones[0]["value"])
        await wait_for(lambda: _label_is(page, "microphone", microphones[0]["value"]), what="Alice on the first microphone")
        assert await page.evaluate("(s) => s === window.convene.sender('microphone')", mic_sender)
        await wait_for(lambda: media_flowing(bob, alice_id, ("microphone",)), timeout=20, what="Alice's new microphone at Bob")

        # A speaker for Bob: every tile's audio element plays there.
        await bob.page.click("#open-devices")
        bob_speaker = (await options(bob.page, "#call-speaker"))[1]["value"]  # device ids differ per browser context
        await bob.page.select_option("#call-speaker", bob_speaker)
        await wait_for(lambda: _sinks_are(bob.page, bob_speaker), what="Bob's sound on the chosen speaker")
        assert (await bob.page.evaluate("window.convene.devices()"))["speaker"] == bob_speaker
        assert (await bob.page.evaluate("window.convene.state()"))["joined"]
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nconsole of Alice:\n" + "\n".join(alice.console)) from None
    finally:
        await alice.close()
        if bob:
            await bob.close()


async def _label_is(page: Page, key: str, expected: str) -> bool:
    devices: dict[str, Any] = await page.evaluate("window.convene.devices()")
    return devices[key] == expected


async def _sinks_are(page: Page, sink: str) -> bool:
    sinks: list[str] = await page.eval_on_selector_all(".tile audio", "(els) => els.map((e) => e.sinkId)")
    return bool(sinks) and all(s == sink for s in sinks)
