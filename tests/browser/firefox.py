"""Debian's firefox-esr, driven over WebDriver BiDi with nothing but aiohttp.

Why not Selenium/geckodriver or puppeteer: Firefox serves WebDriver BiDi itself
(`--remote-debugging-port`), so a small client on the test's own event loop needs no driver binary
(none ships in a registry reachable here), no Node and no second process tree to keep in step.

Why Xvfb and not `--headless`: Firefox's fake devices (`media.navigator.streams.fake`) cover the
camera and microphone only; `getDisplayMedia` always captures a real screen, and a headless Firefox
has none (it answers NotFoundError). Under Xvfb it shares the virtual screen ("Primary Monitor").
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp

FIREFOX = os.environ.get("CONVENE_TEST_FIREFOX", "/usr/bin/firefox-esr")
XVFB = "/usr/bin/Xvfb"

# Fake camera and microphone without a prompt; loopback ICE candidates without mDNS names; every
# request that is not for 127.0.0.1 goes to a proxy that does not exist, so the browser never calls
# home (update checks, telemetry, safe browsing) and a test's traffic stays on this machine.
PREFS: dict[str, Any] = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.getusermedia.screensharing.enabled": True,
    "media.autoplay.default": 0,
    # No sound card or sound server here: without a mock audio backend an AudioContext never leaves
    # "suspended" (the level meter would read nothing), whatever the autoplay policy says.
    "media.cubeb.force_mock_context": True,
    "media.autoplay.blocking_policy": 0,
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "network.proxy.type": 1,
    "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": 9,
    "network.proxy.ssl": "127.0.0.1",
    "network.proxy.ssl_port": 9,
    "network.proxy.no_proxies_on": "127.0.0.1,localhost",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "app.update.disabledForTesting": True,
    "browser.shell.checkDefaultBrowser": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "extensions.update.enabled": False,
    "remote.prefs.recommended": True,
}


def available() -> bool:
    return Path(FIREFOX).exists() and Path(XVFB).exists()


class BidiError(AssertionError):
    pass


class FirefoxPage:
    """One BiDi session with one browsing context: the calls a test needs, nothing more."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())
        self.context = ""
        self.console: list[str] = []

    async def _read(self) -> None:
        async for frame in self._ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            future = self._waiting.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(message)
            elif message.get("method") == "log.entryAdded":
                entry = message["params"]
                self.console.append(f"{entry.get('level')}: {entry.get('text')}")
        for future in self._waiting.values():
            future.set_exception(BidiError("the BiDi connection closed"))

    async def command(self, method: str, params: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = future
        await self._ws.send_json({"id": command_id, "method": method, "params": params})
        answer = await asyncio.wait_for(future, timeout)
        if answer.get("type") == "error":
            raise BidiError(f"{method}: {answer.get('error')}: {answer.get('message')}")
        result: dict[str, Any] = answer["result"]
        return result

    async def start(self) -> None:
        await self.command("session.new", {"capabilities": {}})
        await self.command("session.subscribe", {"events": ["log.entryAdded"]})
        tree = await self.command("browsingContext.getTree", {})
        self.context = tree["contexts"][0]["context"]

    async def goto(self, url: str) -> None:
        await self.command("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    async def evaluate(self, expression: str, user_gesture: bool = False) -> Any:
        """The JSON value of an expression (awaited if it is a promise). `user_gesture` gives the
        page a transient user activation, as a click would (getDisplayMedia needs one)."""
        wrapped = f"(async () => JSON.stringify(await ({expression}) ?? null))()"
        result = await self.command("script.evaluate", {
            "expression": wrapped, "target": {"context": self.context},
            "awaitPromise": True, "userActivation": user_gesture,
        })
        if result.get("type") == "exception":
            raise BidiError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return json.loads(result["result"]["value"])

    async def click(self, selector: str) -> None:
        """A click with user activation (the page cannot tell it from a person's)."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).click()", user_gesture=True)

    async def fill(self, selector: str, value: str) -> None:
        await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.value = {json.dumps(value)};"
            " e.dispatchEvent(new Event('input', {bubbles: true})); })()")

    async def close(self) -> None:
        with suppress(Exception):
            await self.command("session.end", {}, timeout=5)
        await self._ws.close()
        self._reader.cancel()


@asynccontextmanager
async def xvfb() -> AsyncIterator[str]:
    """A private X display (the server picks a free number and tells it on a pipe)."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([XVFB, "-displayfd", str(write_fd), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        number = await asyncio.wait_for(asyncio.to_thread(_read_line, read_fd), 15)
        yield f":{number}"
    finally:
        os.close(read_fd)
        proc.terminate()
        await asyncio.to_thread(proc.wait)


def _read_line(fd: int) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


@asynccontextmanager
async def firefox(extra_prefs: dict[str, Any] | None = None) -> AsyncIterator[FirefoxPage]:
    """firefox-esr in its own profile and its own X display, one page, over BiDi."""
    profile = Path(tempfile.mkdtemp(prefix="convene-firefox-"))
    prefs = {**PREFS, **(extra_prefs or {})}
    (profile / "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items()))
    async with xvfb() as display:
        proc = await asyncio.create_subprocess_exec(
            FIREFOX, "--no-remote", "--profile", str(profile), "--remote-debugging-port=0",
            env={**os.environ, "DISPLAY": display, "MOZ_CRASHREPORTER_DISABLE": "1"},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            url = await asyncio.wait_for(_bidi_url(proc), 30)
            async with aiohttp.ClientSession() as http, http.ws_connect(url + "/session", max_msg_size=0) as ws:
                page = FirefoxPage(ws)
                await page.start()
                try:
                    yield page
                finally:
                    await page.close()
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            shutil.rmtree(profile, ignore_errors=True)


async def _bidi_url(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    while line := (await proc.stderr.readline()).decode(errors="replace"):
        if "WebDriver BiDi listening on " in line:
            # Keep draining stderr, or Firefox blocks once the pipe is full.
            asyncio.get_running_loop().create_task(_drain(proc.stderr))
            return line.split("listening on ", 1)[1].strip()
    raise BidiError("firefox-esr exited before it served WebDriver BiDi")


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
