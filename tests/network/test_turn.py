"""A client whose UDP is blocked (issue #12, proof 3) connects through a Debian coturn that the test starts
(use-auth-secret: the credentials `joined.ice_servers` hands it are checked by coturn itself), over TCP and
over TLS on 443; without TURN it cannot connect. Also measures join time through TURN against direct.

    client ns 10.232.N.2 (iptables: no UDP in or out) ── server ns 10.232.N.1 (convene + coturn)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from signaling.turn import turn_credentials
from tests.network.certs import make_ca
from tests.network.netns import Lab, LabServer, lab_or_skip, peer, serve

pytestmark = pytest.mark.slow

# Joins per path for the join-time figures (the README's come from CONVENE_LAB_JOINS=10).
JOINS = int(os.environ.get("CONVENE_LAB_JOINS", "5"))


def coturn_config(folder: Path, address: str, secret: str) -> Path:
    ca = make_ca(folder / "ca")
    cert, key = ca.issue(folder / "turn-cert", [address])
    config = folder / "turnserver.conf"
    config.write_text("\n".join([
        f"listening-ip={address}", f"relay-ip={address}", "listening-port=3478", "tls-listening-port=443",
        "min-port=49152", "max-port=49999", "use-auth-secret", f"static-auth-secret={secret}",
        "realm=convene.test", f"cert={cert}", f"pkey={key}", "fingerprint", "no-cli", "no-dtls",
        "no-multicast-peers", "simple-log", "log-file=stdout", f"pidfile={folder / 'turnserver.pid'}",
        f"userdb={folder / 'turndb'}", "",
    ]))
    (folder / "ca.pem").write_bytes(ca.cert_path.read_bytes())
    return config


@pytest.fixture
def turn_lab(tmp_path: Path) -> Iterator[tuple[Lab, LabServer, Path]]:
    if shutil.which("turnserver") is None:
        pytest.skip("coturn is missing (scripts/bootstrap.sh --test installs it)")
    with lab_or_skip() as lab:
        lab.add("server", "client")
        net = lab.net(0)
        server_ip = f"{net}.1"
        lab.link("server", server_ip, "client", f"{net}.2")
        secret = secrets.token_hex(16)
        config = coturn_config(tmp_path / "turn", server_ip, secret)
        turn = lab.start("server", ["turnserver", "-c", str(config)], tmp_path / "turn" / "turnserver.log")
        lab.wait_listening("server", 443, process=turn)
        urls = f"turn:{server_ip}:3478?transport=udp,turn:{server_ip}:3478?transport=tcp,turns:{server_ip}:443?transport=tcp"
        server = serve(lab, "server", server_ip, tmp_path / "data", "--turn-url", urls, "--turn-secret", secret)
        yield lab, server, tmp_path / "turn" / "ca.pem"


def block_udp(lab: Lab) -> None:
    for chain in ("OUTPUT", "INPUT"):
        lab.iptables("client", "-A", chain, "-p", "udp", "-j", "DROP")


def p50(results: list[dict[str, Any]]) -> float:
    return round(statistics.median(float(r["join_s"]) for r in results), 3)


def test_udp_blocked_client_connects_through_coturn_over_tcp_and_tls(
        turn_lab: tuple[Lab, LabServer, Path], tmp_path: Path) -> None:
    lab, server, ca = turn_lab
    tls_env = [f"SSL_CERT_FILE={ca}"]  # aioice's TLS checks coturn's certificate against the test's CA
    direct = peer(lab, "client", server, "--turn", "none", "--joins", str(JOINS))
    block_udp(lab)
    [blocked] = peer(lab, "client", server, "--turn", "none", "--timeout", "5")
    assert not blocked["connected"], blocked  # the block works: no path without TURN

    over_tcp = peer(lab, "client", server, "--turn", "tcp", "--joins", str(JOINS))
    over_tls = peer(lab, "client", server, "--turn", "tls", "--joins", str(JOINS), env=tls_env)
    # Every URL of the entry as handed (UDP first, blocked): aiortc alone would try only that one.
    [every] = peer(lab, "client", server, "--turn", "all", env=tls_env)
    for result in [*direct, *over_tcp, *over_tls, every]:
        assert result["connected"], result
        assert result["received"] >= 25, result
    assert all(r["pair"] == ["host", "host"] and r["own_socket"] for r in direct), direct
    for result in [*over_tcp, *over_tls, every]:
        assert result["pair"] == ["relay", "host"], result  # alice -> coturn -> server
        assert result["own_socket"] is False, result  # a relay pair's packets are wrapped by its transport
        assert result["bob_pair"] == ["relay", "host"], result
    figures = {"direct_p50_s": p50(direct), "turn_tcp_p50_s": p50(over_tcp), "turn_tls_p50_s": p50(over_tls),
               "turn_all_urls_s": every["join_s"], "joins": JOINS}
    print("join time", json.dumps(figures))
    (tmp_path.parent / "turn_join_times.json").write_text(json.dumps(figures))


async def test_coturn_takes_our_credentials_until_they_expire(tmp_path: Path) -> None:
    """signaling/turn.py's credentials against coturn's own use-auth-secret check (coturn on 127.0.0.1 here:
    no namespace needed): a fresh one allocates a relay, an expired or forged one gets 401."""
    import asyncio
    import subprocess

    import aioice.stun
    import aioice.turn

    from tests.conftest import free_port

    if shutil.which("turnserver") is None:
        pytest.skip("coturn is missing (scripts/bootstrap.sh --test installs it)")
    secret, port = secrets.token_hex(16), free_port()
    config = tmp_path / "turnserver.conf"
    config.write_text("\n".join([
        "listening-ip=127.0.0.1", "relay-ip=127.0.0.1", f"listening-port={port}", "no-tls", "no-dtls",
        "use-auth-secret", f"static-auth-secret={secret}", "realm=convene.test", "no-cli", "simple-log",
        "log-file=stdout", f"pidfile={tmp_path / 'turn.pid'}", f"userdb={tmp_path / 'turndb'}", "",
    ]))
    turn = subprocess.Popen(["turnserver", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async def allocate(username: str, password: str) -> str:
            transport, _ = await aioice.turn.create_turn_endpoint(
                asyncio.DatagramProtocol, ("127.0.0.1", port), username, password, transport="tcp")
            relayed = transport.get_extra_info("sockname")
            transport.close()
            return str(relayed[0])

        for _ in range(100):  # until coturn listens
            try:
                await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        assert await allocate(*turn_credentials(secret, "alice", 3600)) == "127.0.0.1"
        expired = turn_credentials(secret, "alice", 3600, now=0)
        forged = turn_credentials("not-the-secret", "alice", 3600)
        for username, password in (expired, forged):
            with pytest.raises(aioice.stun.TransactionFailed, match="401"):
                await allocate(username, password)
    finally:
        turn.terminate()
        turn.wait(5)
