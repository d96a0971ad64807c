"""Proof 1 of issue #12: a browser reaching the server at a non-loopback address over https gets camera and
microphone, and media flows both ways.

The test makes two network namespaces joined by a veth pair (10.231.N.1 and .2, inside them only), a CA of its
own and a certificate for the server's address signed by it. `convene serve --tls-cert/--tls-key` runs in one
namespace on its veth address; a headless Chromium in the other trusts the CA (an NSS database under its HOME,
made with certutil; without certutil, `--ignore-certificate-errors-spki-list` naming the server's key only), opens
https://10.231.N.1:8443/, and two people join. Nothing leaves the machine: both namespaces are deleted at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM
from tests.network.certs import ScratchCA, make_ca, spki_of
from tests.network.namespaces import NetnsPair, netns_pair, unavailable_reason

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
PORT = 8443  # a namespace of our own: every port is free


@pytest.fixture
def pair() -> Iterator[NetnsPair]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs Chromium at {CHROMIUM}")
    with netns_pair() as made:
        yield made


def trust_in_nss(home: Path, ca: ScratchCA) -> bool:
    """Chromium on Linux trusts what the NSS database under $HOME/.pki/nssdb trusts: add the CA there."""
    if shutil.which("certutil") is None:
        return False
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "convene-test-ca", "-i",
                    str(ca.cert_path)], check=True, capture_output=True)
    return True


@contextmanager
def server_in(pair: NetnsPair, tmp_path: Path, cert: Path, key: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", pair.server, sys.executable, "-m", "signaling.cli", "serve",
         "--host", pair.server_ip, "--port", str(PORT), "--data-dir", str(tmp_path / "data"),
         "--tls-cert", str(cert), "--tls-key", str(key), "--no-captions"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"Convene is running" not in (tmp_path / "server.log").read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_chromium_at_a_non_loopback_https_address_is_a_secure_context_and_media_flows_both_ways(
        pair: NetnsPair, tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    cert, key = ca.issue(tmp_path / "server", [pair.server_ip])
    home = tmp_path / "home"
    home.mkdir()
    # The SPKI list matches keys of the chain the server presents (the leaf here), not the CA behind it.
    trust_args = [] if trust_in_nss(home, ca) else ["--spki", spki_of(cert)]
    with server_in(pair, tmp_path, cert, key):
        url = f"https://{pair.server_ip}:{PORT}"
        done = subprocess.run(
            ["ip", "netns", "exec", pair.client, sys.executable, "-m", "tests.network.secure_context_browser",
             "--url", url, "--room", "secure", "--home", str(home), *trust_args],
            cwd=ROOT, capture_output=True, text=True, timeout=150, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        server_log = (tmp_path / "server.log").read_text(errors="replace")
    assert done.returncode == 0, f"browser:\n{done.stdout}\n{done.stderr[-5000:]}\nserver:\n{server_log[-5000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=1))
    for person in ("alice", "bob"):
        facts = report[person]
        assert facts["status"] == 200
        assert facts["issuer"] == "Convene test CA", facts  # the certificate Chromium accepted is the test CA's
        assert facts["secure_context"] is True and facts["has_media_devices"] is True, facts
        assert facts["published"] == ["camera", "microphone"], facts
    for direction in ("bob_from_alice", "alice_from_bob"):
        media = report[direction]
        assert media["frames_per_s"] > 0 and media["frame_width"] > 0, media
        assert media["audio_samples_per_s"] > 0 and media["audio_energy"] > 0, media
    # The server saw the browser at its veth address: the traffic went through the namespaces' link.
    assert pair.client_ip in server_log
