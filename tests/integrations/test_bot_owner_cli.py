"""`convene keys create --role bot --owner LOGIN` makes an owned bot from the command line: its key works until
`convene users disable LOGIN`, then answers 401 bot_disabled on a real server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from identity.bots import BotRegistry
from identity.sealed import SecretSealer, is_sealed
from identity.secrets_store import server_secret
from store.database import Database
from store.schema import bots
from tests.conftest import running_server, server_config
from tests.integrations.hooks_helpers import call

ROOT = Path(__file__).resolve().parent.parent.parent


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signaling.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


async def test_a_bot_key_with_an_owner_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    unknown = await asyncio.to_thread(cli, "keys", "create", "--name", "nightly", "--role", "bot", "--owner", "olga",
                                      "--data-dir", str(data))
    assert unknown.returncode != 0 and "no user 'olga'" in unknown.stderr
    added = await asyncio.to_thread(cli, "users", "add", "olga", "--role", "member", "--data-dir", str(data))
    assert added.returncode == 0, added.stderr
    made = await asyncio.to_thread(cli, "keys", "create", "--name", "nightly", "--role", "bot", "--owner", "olga",
                                   "--data-dir", str(data))
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("cvk_") and "owner olga" in made.stderr and "signing secret" in made.stderr
    refused = await asyncio.to_thread(cli, "keys", "create", "--name", "x", "--role", "member", "--owner", "olga",
                                      "--data-dir", str(data))
    assert refused.returncode == 2 and "--owner is for bot keys" in refused.stderr
    db = Database.for_config(None, data)
    await db.open()
    try:
        registry = BotRegistry(db, SecretSealer(server_secret(data)))
        bot = await registry.get("nightly")
        assert bot is not None and bot.owner == "olga"
        # The signing secret shown once is kept sealed with the data dir's secret, and opens to what was shown.
        signing = await registry.signing_secret("nightly")
        assert signing and f"shown once: {signing})" in made.stderr
        async with db.read() as conn:
            stored = (await conn.execute(select(bots.c.signing_secret))).scalar_one()
        assert is_sealed(stored) and signing not in stored
    finally:
        await db.close()

    async with running_server(server_config(data)) as server:
        status, me = await call(server, "GET", "/v1/me", key=key)
        assert status == 200 and me["user"]["role"] == "bot"
        disabled = await asyncio.to_thread(cli, "users", "disable", "olga", "--data-dir", str(data))
        assert disabled.returncode == 0, disabled.stderr
        await asyncio.sleep(1.1)  # a verified key is trusted for at most a second
        status, got = await call(server, "GET", "/v1/me", key=key)
        assert status == 401 and got["error"]["code"] == "bot_disabled", got
