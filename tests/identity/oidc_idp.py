"""A real OpenID Connect provider for tests: panva's oidc-provider (OpenID certified) on Node, on loopback.

scripts/bootstrap.sh --test installs the pinned package (tests/identity/oidc_provider/package-lock.json) with
`npm ci` into a cache dir keyed by the lock file's hash (here only as a fallback when it did not run); each
test starts its own provider process with its own config (clients, accounts, signing key) and stops it
afterwards. `sign_in_at_provider` walks a browser's way through the
provider's login and consent pages with a real HTTP client and returns the address of our callback.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import free_port

HERE = Path(__file__).resolve().parent / "oidc_provider"
CACHE = Path(os.environ.get("CONVENE_TEST_CACHE", Path.home() / ".cache" / "convene-tests"))
CLIENT_ID, CLIENT_SECRET = "convene", "convene-test-secret-0123456789"
OTHER_CLIENT_ID, OTHER_CLIENT_SECRET = "other-app", "other-app-secret-0123456789"
# Accounts by subject: the login page takes the subject as the "login" (any password).
ACCOUNTS: dict[str, dict[str, Any]] = {
    "sub-alice-0001": {"preferred_username": "alice", "name": "Alice Wong", "email": "alice@example.com",
                       "email_verified": True, "department": "研发部/前端组", "title": "Engineer"},
    "sub-bob-0002": {"preferred_username": "bob", "name": "Bob Li", "email": "bob@example.com",
                     "department": "Sales", "title": "Account manager"},
    "sub-newalice-0003": {"preferred_username": "alice", "name": "Another Alice", "email": "a2@example.com"},
    "sub-badname-0004": {"preferred_username": "no spaces allowed", "name": "Bad Name"},
    "sub-robot-0005": {"preferred_username": "robot", "name": "Not a bot"},
    "sub-admin-0006": {"preferred_username": "admin", "name": "Not the owner"},
    "sub-carol-0007": {"preferred_username": "carol", "name": "Carol Chen"},
    "sub-cmd-0008": {"preferred_username": "cmd_deploy", "name": "Not the deploy command's bot"},
}


def provider_dir() -> Path:
    """The provider script with its node_modules, installed once per lock file by scripts/bootstrap.sh --test
    (npm ci into the same cache dir); here only when the bootstrap did not run (a developer's machine)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise RuntimeError("the OIDC tests need node and npm (scripts/bootstrap.sh --test installs them)")
    lock = (HERE / "package-lock.json").read_bytes()
    target = CACHE / f"oidc-provider-{hashlib.sha256(lock).hexdigest()[:16]}"
    if not (target / "node_modules" / "oidc-provider" / "package.json").exists():
        _install(npm, target)
    # The script may change without the lock: replaced whole, so a concurrent test never reads half of it.
    staged = target / f"provider.mjs.tmp{os.getpid()}"
    shutil.copy(HERE / "provider.mjs", staged)
    os.replace(staged, target / "provider.mjs")
    return target


def _install(npm: str, target: Path) -> None:
    """npm ci into a staging dir, renamed into place; if another process got there first its install is kept
    and ours discarded (a live target is never removed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".tmp", dir=target.parent))
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copy(HERE / name, staging / name)
        subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=staging, check=True, timeout=300)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "node_modules" / "oidc-provider" / "package.json").exists():
                raise RuntimeError(f"{target} exists but holds no oidc-provider; remove it and rerun") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def signing_key() -> dict[str, Any]:
    """A fresh RSA private key as a JWK (two providers given the same one sign alike)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    jwk.update(kid=secrets.token_hex(8), alg="RS256", use="sig")
    return jwk


@dataclass
class Provider:
    issuer: str
    process: asyncio.subprocess.Process


def client_metadata(client_id: str, secret: str, redirect_uris: list[str]) -> dict[str, Any]:
    return {"client_id": client_id, "client_secret": secret, "redirect_uris": redirect_uris,
            "grant_types": ["authorization_code"], "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic"}


@asynccontextmanager
async def oidc_provider(tmp: Path, redirect_uris: list[str], key: dict[str, Any] | None = None
                        ) -> AsyncIterator[Provider]:
    """A running provider with the clients `convene` and `other-app`, both redirecting to `redirect_uris`."""
    directory = await asyncio.to_thread(provider_dir)
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = {"issuer": issuer, "port": port, "accounts": ACCOUNTS, "signing_key": key or signing_key(),
              "cookie_key": secrets.token_hex(16),
              "clients": [client_metadata(CLIENT_ID, CLIENT_SECRET, redirect_uris),
                          client_metadata(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, redirect_uris)]}
    config_file = tmp / f"oidc-provider-{port}.json"
    config_file.write_text(json.dumps(config))
    process = await asyncio.create_subprocess_exec(
        "node", "provider.mjs", str(config_file), cwd=directory, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={**os.environ, "NODE_ENV": "development"})
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        while line and b"listening" not in line:  # oidc-provider prints warnings about its dev defaults first
            line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        if not line:
            raise RuntimeError("the OIDC provider exited before it listened")
        drain = asyncio.create_task(process.stdout.read())  # keep its pipe from filling up
        yield Provider(issuer=issuer, process=process)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        if "drain" in locals():
            await drain


_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S | re.I)
_ABORT = re.compile(r'<a href="([^"]+/abort)"')
_HIDDEN = re.compile(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', re.I)


async def sign_in_at_provider(http: aiohttp.ClientSession, authorize_url: str, subject: str,
                              callback_prefix: str, cancel: bool = False) -> str:
    """Follows the provider's redirects, fills its login form with `subject` and accepts its consent form (or,
    with `cancel`, follows its Cancel link), until it sends the browser to `callback_prefix`; returns that
    address (not requested)."""
    url = authorize_url
    for _ in range(12):
        if url.startswith(callback_prefix):
            return url
        async with http.get(url, allow_redirects=False) as resp:
            if resp.status in (302, 303):
                url = urllib.parse.urljoin(url, resp.headers["Location"])
                continue
            page = await resp.text()
            assert resp.status == 200, f"provider answered {resp.status}: {page[:300]}"
        abort = _ABORT.search(page)
        if cancel and abort:
            url = urllib.parse.urljoin(url, abort.group(1))
            continue
        url = await _submit_form(http, url, page, subject)
    raise AssertionError("the provider never sent the browser back")


async def _submit_form(http: aiohttp.ClientSession, url: str, page: str, subject: str) -> str:
    match = _FORM.search(page)
    assert match, f"no form on the provider's page: {page[:300]}"
    action, body = urllib.parse.urljoin(url, match.group(1)), match.group(2)
    fields = dict(_HIDDEN.findall(body))
    if 'name="login"' in body:
        fields.update(login=subject, password="any password")
    async with http.post(action, data=fields, allow_redirects=False) as resp:
        assert resp.status in (302, 303), f"provider form answered {resp.status}: {(await resp.text())[:300]}"
        return urllib.parse.urljoin(action, resp.headers["Location"])
