"""Two people in one headless Chromium, run inside the client namespace by tests/network/test_secure_context.py:
`ip netns exec NS python -m tests.network.secure_context_browser --url https://10.231.x.1:8443 --room R --home DIR`.

Chromium trusts the test's CA through the NSS database in DIR/.pki/nssdb (where Chromium on Linux looks, under
$HOME), or, when --spki is given, through `--ignore-certificate-errors-spki-list` naming only that key. Each
person opens the landing page, joins, and the script reports (one JSON line) whether the page was a secure
context, who issued the certificate Chromium accepted, whether getUserMedia gave a camera and a microphone, and
what each received from the other over 1 s (frames decoded, audio samples) once media flows both ways.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Page, async_playwright

from tests.browser.conftest import CHROMIUM, chromium_args


async def join(browser: Any, url: str, room: str, name: str) -> tuple[Page, dict[str, Any]]:
    context = await browser.new_context(viewport={"width": 960, "height": 540}, permissions=["camera", "microphone"])
    page = await context.new_page()
    response = await page.goto(f"{url}/?room={room}")
    assert response is not None
    security = await response.security_details() or {}
    facts: dict[str, Any] = {"status": response.status, "issuer": security.get("issuer"),
                             "protocol": security.get("protocol"),
                             "secure_context": await page.evaluate("window.isSecureContext"),
                             "has_media_devices": await page.evaluate("!!(navigator.mediaDevices && "
                                                                      "navigator.mediaDevices.getUserMedia)")}
    await page.fill("#name", name)
    await page.click("#open")
    await page.wait_for_url(re.compile(r"/r/[^/?#]+$"))
    await page.click("#join:not([disabled])")
    await until(lambda: page.evaluate("window.convene.state().joined"), 20, f"{name} to join")
    # What getUserMedia gave and the page publishes (only a secure context gets a camera and a microphone).
    facts["published"] = await until(lambda: page.evaluate(
        "(() => { const s = window.convene.state(); const p = (s.published ?? []).map(t => t.source).sort();"
        " return p.includes('camera') && p.includes('microphone') ? p : null; })()"), 20, f"{name} to publish")
    return page, facts


async def until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


async def received_from(viewer: Page, sender_id: str) -> dict[str, Any]:
    """What the viewer decoded from the sender over one second: video frames and audio samples must advance."""
    async def sample() -> dict[str, dict[str, Any]]:
        stats = await viewer.evaluate("window.convene.stats()")
        return {t["source"]: t for t in stats["tracks"] if t["participant_id"] == sender_id}

    before = await sample()
    await asyncio.sleep(1.0)
    after = await sample()
    cam_old, cam_new = before.get("camera"), after.get("camera")
    mic_old, mic_new = before.get("microphone"), after.get("microphone")
    if not (cam_old and cam_new and mic_old and mic_new):
        return {}
    frames = (cam_new["framesDecoded"] or 0) - (cam_old["framesDecoded"] or 0)
    samples = (mic_new["totalSamplesReceived"] or 0) - (mic_old["totalSamplesReceived"] or 0)
    if frames <= 0 or samples <= 0:
        return {}
    return {"frames_per_s": frames, "frame_width": cam_new["frameWidth"], "audio_samples_per_s": samples,
            "audio_energy": mic_new["totalAudioEnergy"]}


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--home", required=True, help="HOME for Chromium (its NSS database is under it)")
    parser.add_argument("--spki", default=None, help="trust only this key (base64 SHA-256) instead of NSS")
    args = parser.parse_args()
    # The suite's browsers resolve nothing but 127.0.0.1 (no calls home); this one also reaches the server's
    # address (Chromium applies the rules to IP literals too).
    host = urlsplit(args.url).hostname
    flags = [f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE {host}"
             if f.startswith("--host-resolver-rules=") else f for f in chromium_args()]
    if args.spki:
        flags.append(f"--ignore-certificate-errors-spki-list={args.spki}")
    env = {**os.environ, "HOME": args.home}
    report: dict[str, Any] = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags, env=env)
        try:
            alice, report["alice"] = await join(browser, args.url, args.room, "Alice")
            bob, report["bob"] = await join(browser, args.url, args.room, "Bob")
            ids = {name: await page.evaluate("window.convene.state().self.id")
                   for name, page in (("alice", alice), ("bob", bob))}
            report["bob_from_alice"] = await until(lambda: received_from(bob, ids["alice"]), 30, "Alice's media at Bob")
            report["alice_from_bob"] = await until(lambda: received_from(alice, ids["bob"]), 30, "Bob's media at Alice")
        finally:
            await browser.close()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
