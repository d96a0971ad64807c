"""ICE settings (#12) without a network lab: which host candidates a server's connections gather and name
(loopback, --rtc-ips, --rtc-port-range, --announce-ip), the TURN credentials `joined` hands out, the flags'
checks, and what spawned workers get. The lab tests in tests/network/ prove the same on real networks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.config import Config, parse_port_range
from sfu.aiortc_seams import ice_gathering
from loadtest.peers import PacketPublisherPeer
from sfu.webrtc import configure_ice
from signaling.cli import main as cli_main
from signaling.client import SignalingClient
from signaling.turn import configure_server_ice
from signaling.workers_cli import worker_command, worker_env
from tests.conftest import running_server, server_config

CANDIDATE = re.compile(r"a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host")


@pytest.fixture(autouse=True)
def default_gathering() -> Iterator[None]:
    # Gathering settings are process-wide: give the next test what every in-process server on 127.0.0.1 sets.
    yield
    configure_ice(include_loopback=True)


async def host_candidates() -> list[tuple[str, int]]:
    """The host candidates a new connection of this process gathers (in its offer, as in any answer)."""
    peer = PacketPublisherPeer()
    peer.add_track("audio", "audio/opus")
    try:
        return [(ip, int(port)) for ip, port in CANDIDATE.findall(await peer.create_offer())]
    finally:
        await peer.close()


async def test_loopback_gathers_only_when_serving_on_loopback(tmp_path: Path) -> None:
    configure_server_ice(Config(host="127.0.0.1", data_dir=tmp_path))
    assert "127.0.0.1" in [ip for ip, _ in await host_candidates()]
    configure_server_ice(Config(host="0.0.0.0", data_dir=tmp_path))
    assert "127.0.0.1" not in [ip for ip, _ in await host_candidates()]  # it always did before #12


async def test_rtc_ips_pick_the_addresses_and_the_port_range_the_ports(tmp_path: Path) -> None:
    configure_server_ice(Config(host="0.0.0.0", data_dir=tmp_path, rtc_ips=("127.0.0.0/8",),
                                rtc_port_range=(47000, 47009)))
    candidates = await host_candidates()
    assert [ip for ip, _ in candidates] == ["127.0.0.1"]
    assert all(47000 <= port <= 47009 for _, port in candidates), candidates


async def test_a_full_port_range_gathers_nothing_rather_than_a_port_outside_it(tmp_path: Path) -> None:
    configure_server_ice(Config(data_dir=tmp_path, rtc_ips=("127.0.0.1/32",), rtc_port_range=(47010, 47010)))
    first = PacketPublisherPeer()
    first.add_track("audio", "audio/opus")
    try:
        assert [port for _, port in CANDIDATE.findall(await first.create_offer())] == ["47010"]
        assert await host_candidates() == []  # the one port is taken
    finally:
        await first.close()


async def test_announce_ip_names_host_candidates_and_loopback_keeps_its_own(tmp_path: Path) -> None:
    configure_server_ice(Config(host="127.0.0.1", data_dir=tmp_path, announce_ip="203.0.113.7"))
    addresses = {ip for ip, _ in await host_candidates()}
    assert "127.0.0.1" in addresses and "203.0.113.7" in addresses
    assert addresses <= {"127.0.0.1", "203.0.113.7"} | {ip for ip in addresses if ":" in ip}


async def test_joined_hands_each_client_its_own_turn_credentials(tmp_path: Path) -> None:
    config = server_config(tmp_path / "data", turn_urls=("turn:turn.example:3478?transport=udp",
                                                         "turns:turn.example:443?transport=tcp"),
                           turn_secret="s3cret", stun_url="stun:turn.example:3478")
    async with running_server(config) as server:
        client = SignalingClient(server.url, "r", await server.token("r", "alice"))
        joined = await client.connect()
        await client.close()
    stun, turn = joined["ice_servers"]
    assert stun == {"urls": ["stun:turn.example:3478"]}
    assert turn["urls"] == list(config.turn_urls)
    expiry, identity = turn["username"].split(":", 1)
    assert identity == "alice" and abs(int(expiry) - (time.time() + config.turn_credential_ttl_seconds)) < 60
    # coturn's use-auth-secret: base64(HMAC-SHA1(secret, username)); test_turn.py has coturn itself check it.
    digest = hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()


@pytest.mark.parametrize("flags, message", [
    (["--announce-ip", "not-an-ip"], "announce-ip"),
    (["--announce-ip", "0.0.0.0"], "announce-ip"),
    (["--rtc-ips", "10.0.0.0/33"], "rtc-ips"),
    (["--turn-url", "turn:turn.example:3478?transport=udp"], "turn-secret"),
    (["--turn-url", "http://turn.example", "--turn-secret", "s"], "turn-url"),
    (["--turn-url", "turns:turn.example:443?transport=udp", "--turn-secret", "s"], "turn-url"),
    (["--turn-secret", "s"], "turn-url"),
    (["--stun-url", "stun:"], "stun-url"),
])
def test_bad_ice_flags_stop_the_server_with_a_message(flags: list[str], message: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    before = ice_gathering()
    assert cli_main(["serve", "--data-dir", str(tmp_path), "--port", "1", *flags]) == 2
    assert message in capsys.readouterr().err
    assert ice_gathering() == before  # nothing installed


def test_a_bad_port_range_is_refused_by_the_parser(tmp_path: Path) -> None:
    for text in ("6000-5000", "0-10", "50000", "a-b", "1-70000"):
        with pytest.raises(ValueError):
            parse_port_range(text)
    done = subprocess.run([".venv/bin/python", "-m", "signaling.cli", "serve", "--data-dir", str(tmp_path),
                           "--rtc-port-range", "6000-5000"], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2 and "rtc-port-range" in done.stderr


def test_workers_get_the_ice_flags_and_the_turn_secret_only_in_their_environment(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path, workers=2, announce_ip="203.0.113.7", rtc_ips=("10.0.0.0/8",),
                    rtc_port_range=(50000, 50100), turn_urls=("turn:t.example:3478?transport=udp",),
                    turn_secret="s3cret", stun_url="stun:t.example:3478")
    command = worker_command(config, 1)
    joined = " ".join(command)
    for expected in ("--announce-ip 203.0.113.7", "--rtc-ips 10.0.0.0/8", "--rtc-port-range 50000-50100",
                     "--turn-url turn:t.example:3478?transport=udp", "--stun-url stun:t.example:3478"):
        assert expected in joined
    assert "s3cret" not in joined and "s3cret" not in repr(config)
    assert worker_env(config)["CONVENE_TURN_SECRET"] == "s3cret"
