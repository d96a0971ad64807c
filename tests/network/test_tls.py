"""HTTPS: a certificate of one's own, or a self-signed one made once and kept (same fingerprint after a restart)."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509

from common.config import Config, config_from_env
from common.errors import InvalidConfig
from signaling import tls
from signaling.access_log import RedactingAccessLogger
from signaling.app import create_app
from signaling.cli import main as cli_main
from signaling.workers_cli import worker_command
from tests.conftest import free_port, server_config
from tests.network.certs import make_ca

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def https_server(config: Config) -> AsyncIterator[tuple[Config, tls.ServerCertificate]]:
    """The real app served as `convene serve` serves it with TLS: prepare(), then the SSL context on the site."""
    prepared = tls.prepare(config)
    assert prepared is not None
    config, context, cert = prepared
    runner = web.AppRunner(create_app(config), shutdown_timeout=2, access_log_class=RedactingAccessLogger)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port, ssl_context=context).start()
    try:
        yield config, cert
    finally:
        await runner.cleanup()


def client_context(ca_file: Path) -> ssl.SSLContext:
    """A client that trusts only `ca_file` and checks the host name (here: the IP address) as browsers do."""
    return ssl.create_default_context(cafile=str(ca_file))


def test_a_self_signed_certificate_is_made_once_and_kept(tmp_path: Path) -> None:
    names = tls.served_names("127.0.0.1", None)
    first = tls.ensure_self_signed(tmp_path, names)
    again = tls.ensure_self_signed(tmp_path, names)
    assert first.made and not again.made
    assert again.sha256 == first.sha256 and re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", first.sha256)
    for path in (first.cert_path, first.key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(first.cert_path.parent.stat().st_mode) == 0o700
    assert {"127.0.0.1", "::1", "localhost"} <= set(first.names)


def test_a_new_address_remakes_the_certificate_with_the_same_key_and_keeps_the_old_names(tmp_path: Path) -> None:
    first = tls.ensure_self_signed(tmp_path, tls.served_names("127.0.0.1", None))
    second = tls.ensure_self_signed(tmp_path, tls.served_names("127.0.0.1", "https://meet.example.com"))
    assert second.made and second.sha256 != first.sha256
    assert second.spki_sha256 == first.spki_sha256  # a pinned key stays valid
    assert "meet.example.com" in second.names and "127.0.0.1" in second.names


def test_a_certificate_about_to_expire_is_renewed(tmp_path: Path) -> None:
    names = tls.served_names("127.0.0.1", None)
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=tls.VALID_DAYS - 10)
    old = tls.ensure_self_signed(tmp_path, names, now=long_ago)
    renewed = tls.ensure_self_signed(tmp_path, names)
    assert renewed.made and renewed.sha256 != old.sha256 and renewed.spki_sha256 == old.spki_sha256
    cert = x509.load_pem_x509_certificate(renewed.cert_path.read_bytes())
    assert cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc) > datetime.timedelta(days=300)


def test_serving_on_every_address_names_the_local_addresses() -> None:
    names = tls.served_names("0.0.0.0", None)
    assert {str(ip) for ip in names.ips} >= {"127.0.0.1", "::1"}
    if tls._is_dns_name(socket.gethostname()):  # a host name with, say, an underscore is left out
        assert socket.gethostname().lower() in names.dns
    # Every global address `ip` lists here (an independent view of the interfaces).
    listed = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout)
    wanted = {a["local"] for link in listed for a in link.get("addr_info", []) if a.get("scope") == "global"}
    assert wanted <= {str(ip) for ip in names.ips}, (wanted, names.ips)


async def test_own_certificate_serves_https_that_a_client_trusting_the_ca_accepts(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    cert_path, key_path = ca.issue(tmp_path / "server", ["127.0.0.1"])
    config = server_config(tmp_path / "data", tls_cert=cert_path, tls_key=key_path)
    assert config.url.startswith("https://127.0.0.1:")
    async with https_server(config) as (config, cert):
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{config.url}/healthz", ssl=client_context(ca.cert_path)) as r:
                assert r.status == 200 and await r.json() == {"status": "ok"}
            # Guest links and placement name https/wss URLs.
            async with http.post(f"{config.url}/v1/rooms/tls-room/join", json={"name": "Ann"},
                                 ssl=client_context(ca.cert_path)) as r:
                assert r.status == 201, await r.text()
                assert (await r.json())["url"].startswith(config.url + "/r/tls-room")
            with pytest.raises(aiohttp.ClientError):  # plain http to the TLS port is not served
                await http.get(f"http://127.0.0.1:{config.port}/healthz")
        # The certificate served is the one whose fingerprint `convene serve` prints.
        _, writer = await asyncio.open_connection("127.0.0.1", config.port, ssl=client_context(ca.cert_path))
        peer = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
    assert tls.fingerprint(x509.load_der_x509_certificate(peer)) == cert.sha256


async def test_a_client_that_does_not_trust_the_certificate_is_refused(tmp_path: Path) -> None:
    ca, other = make_ca(tmp_path / "ca"), make_ca(tmp_path / "other")
    cert_path, key_path = ca.issue(tmp_path / "server", ["127.0.0.1"])
    async with https_server(server_config(tmp_path / "data", tls_cert=cert_path, tls_key=key_path)) as (config, _):
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await http.get(f"{config.url}/healthz", ssl=client_context(other.cert_path))


def test_bad_tls_settings_stop_the_server_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = make_ca(tmp_path / "ca")
    cert_path, key_path = ca.issue(tmp_path / "server", ["127.0.0.1"])
    _, other_key = ca.issue(tmp_path / "other", ["127.0.0.1"])
    data = str(tmp_path / "data")
    cases = {
        "go together": ["--tls-cert", str(cert_path)],
        "exclude each other": ["--tls", "self-signed", "--tls-cert", str(cert_path), "--tls-key", str(key_path)],
        "does not exist": ["--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(key_path)],
        "cannot load": ["--tls-cert", str(cert_path), "--tls-key", str(other_key)],  # key of another cert
        "not an address or CIDR": ["--trusted-proxies", "10.0.0.0/8,proxy.example"],
    }
    for expected, flags in cases.items():
        assert cli_main(["serve", "--port", str(free_port()), "--data-dir", data, *flags]) == 2, flags
        err = capsys.readouterr().err
        assert expected in err, (flags, err)
    with pytest.raises(InvalidConfig):
        tls.prepare(Config(data_dir=tmp_path / "data", tls_cert=cert_path, tls_key=ca.cert_path))


def test_tls_comes_from_the_environment_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVENE_TLS_CERT", "/etc/convene/cert.pem")
    monkeypatch.setenv("CONVENE_TLS_KEY", "/etc/convene/key.pem")
    monkeypatch.setenv("CONVENE_TRUSTED_PROXIES", "127.0.0.1/32, 10.0.0.0/8")
    config = config_from_env(data_dir=tmp_path)
    assert config.tls_cert == Path("/etc/convene/cert.pem") and config.tls_key == Path("/etc/convene/key.pem")
    assert config.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8")
    assert config.url.startswith("https://") and Config().url.startswith("http://")


def test_spawned_workers_serve_the_same_certificate(tmp_path: Path) -> None:
    prepared = tls.prepare(Config(data_dir=tmp_path, tls_self_signed=True, workers=2,
                                  trusted_proxies=("127.0.0.1/32",)))
    assert prepared is not None
    command = worker_command(prepared[0], 1)
    assert command[command.index("--tls-cert") + 1] == str(tmp_path / "tls" / "self-signed.crt")
    assert command[command.index("--tls-key") + 1] == str(tmp_path / "tls" / "self-signed.key")
    assert command[command.index("--trusted-proxies") + 1] == "127.0.0.1/32"
    assert "https://" in command[command.index("--allowed-origins") + 1]
    # The worker inherits CONVENE_TLS=self-signed in its environment and gets the files: it serves them.
    worker = tls.prepare(Config(data_dir=tmp_path, tls_self_signed=True, tls_cert=prepared[0].tls_cert,
                                tls_key=prepared[0].tls_key))
    assert worker is not None and worker[2].sha256 == prepared[2].sha256


async def _serve_once(data_dir: Path, port: int) -> tuple[str, str]:
    """Runs `convene serve --tls self-signed` until it prints its fingerprint and answers https; returns both."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling.cli", "serve", "--port", str(port), "--data-dir", str(data_dir),
        "--tls", "self-signed", "--no-captions", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    try:
        lines = []
        while not any("self-signed (" in line for line in lines):
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, "convene serve exited: " + "".join(lines)
            lines.append(line)
        printed = "".join(lines)
        fp = re.search(r"fingerprint: ([0-9A-F:]+)", printed)
        assert fp and f"Open https://127.0.0.1:{port}/" in printed, printed
        # A browser that was told to trust this certificate (here: a client trusting it as its own CA).
        context = client_context(data_dir / "tls" / "self-signed.crt")
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # it prints before it listens
                try:
                    async with http.get(f"https://127.0.0.1:{port}/readyz", ssl=context) as r:
                        assert r.status == 200, await r.text()
                        break
                except aiohttp.ClientConnectorError as exc:
                    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
                        raise
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("convene serve did not answer https")
        return fp.group(1), printed
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)


@pytest.mark.slow
async def test_convene_serve_tls_self_signed_prints_the_same_fingerprint_after_a_restart(tmp_path: Path) -> None:
    port = free_port()
    first, printed = await _serve_once(tmp_path / "data", port)
    assert "made now" in printed
    second, printed = await _serve_once(tmp_path / "data", port)
    assert second == first and "kept" in printed
