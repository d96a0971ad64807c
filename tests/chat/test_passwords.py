"""Local passwords (identity/passwords.py): `convene users add LOGIN --password-stdin` and `users set-password`
store an argon2id hash on SQLite and a real PostgreSQL; a wrong password, an unknown login and a disabled
account get the same invalid_credentials; the password is read from stdin, never argv."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.errors import InvalidCredentials
from identity.passwords import AccountStore
from store.database import Database
from store.schema import accounts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    url = request.getfixturevalue("postgres").create_database() if request.param == "postgres" else None
    return ["--data-dir", str(tmp_path / "data"), *(["--database-url", url] if url else [])]


def users(where: list[str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signaling.cli", "users", *args, *where], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60)


def _db(where: list[str]) -> Database:
    url = where[where.index("--database-url") + 1] if "--database-url" in where else None
    return Database.for_config(url, Path(where[1]))


async def test_password_from_stdin_signs_in_and_nothing_else_does(where: list[str]) -> None:
    added = await asyncio.to_thread(users, where, "add", "alice", "--name", "Alice", "--password-stdin",
                                    stdin="correct horse\n")
    assert added.returncode == 0, added.stderr
    assert "added alice (member) with a password" in added.stdout
    db = _db(where)
    await db.open()
    try:
        store = AccountStore(db)
        assert (await store.verify("alice", "correct horse")).login == "alice"
        async with db.read() as conn:
            stored = (await conn.execute(accounts.select())).first()
        assert stored is not None and stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert "correct horse" not in stored.password_hash
        for login, password in [("alice", "wrong horse"), ("nobody", "correct horse"), ("alice", "")]:
            with pytest.raises(InvalidCredentials) as refused:
                await store.verify(login, password)
            assert refused.value.code == "invalid_credentials" and refused.value.status == 401
            assert refused.value.message == "wrong login or password"

        # set-password replaces the old password; the user must exist; a short password changes nothing.
        assert (await asyncio.to_thread(users, where, "set-password", "alice", stdin="battery staple\n")).returncode == 0
        assert (await store.verify("alice", "battery staple")).login == "alice"
        with pytest.raises(InvalidCredentials):
            await store.verify("alice", "correct horse")
        short = await asyncio.to_thread(users, where, "set-password", "alice", stdin="short\n")
        assert short.returncode == 2 and "invalid_field" in short.stderr
        assert (await store.verify("alice", "battery staple")).login == "alice"
        missing = await asyncio.to_thread(users, where, "set-password", "ghost", stdin="long enough pw\n")
        assert missing.returncode == 2 and "no user 'ghost'" in missing.stderr
        assert await store.get("ghost") is None

        # Disabling bumps the epoch and refuses sign-in with the same answer as a wrong password.
        disabled = await store.disable("alice")
        assert disabled.token_epoch == 1 and not disabled.active
        with pytest.raises(InvalidCredentials):
            await store.verify("alice", "battery staple")
    finally:
        await db.close()


async def test_unknown_login_costs_as_much_as_a_wrong_password(tmp_path: Path) -> None:
    db = Database.for_config(None, tmp_path)
    await db.open()
    try:
        store = AccountStore(db)
        await store.set_password("bob", "a fine password")

        async def cost(login: str) -> float:
            start = time.perf_counter()
            for _ in range(5):
                with pytest.raises(InvalidCredentials):
                    await store.verify(login, "not the password")
            return time.perf_counter() - start

        await cost("bob")  # warm up
        wrong, unknown = await cost("bob"), await cost("nobody")
        # Both run one argon2 check (~25 ms each); without the dummy hash an unknown login answers in ~1 ms.
        assert unknown > 0.5 * wrong and wrong > 0.5 * unknown, (wrong, unknown)
        assert unknown > 5 * 0.010
    finally:
        await db.close()
