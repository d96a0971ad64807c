"""--rtc-port-range (issue #12, proof 4): while participants are connected, every UDP socket the server
holds (`ss -uln` in its namespace) is on a port inside the range, so a firewall opening just that range
is enough."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.network.netns import PYTHON, lab_or_skip, serve

pytestmark = pytest.mark.slow

FIRST, LAST = 41000, 41009


def udp_ports(output: str) -> list[int]:
    """Local ports of `ss -Huln` lines (`UNCONN 0 0 10.232.1.1:41003 0.0.0.0:*`)."""
    return [int(line.split()[3].rsplit(":", 1)[1]) for line in output.splitlines() if line.strip()]


def test_ice_binds_only_ports_in_the_range(tmp_path: Path) -> None:
    with lab_or_skip(tools=("ip", "ss")) as lab:
        lab.add("server", "client")
        net = lab.net(0)
        lab.link("server", f"{net}.1", "client", f"{net}.2")
        server = serve(lab, "server", f"{net}.1", tmp_path / "data", "--rtc-port-range", f"{FIRST}-{LAST}")
        before = udp_ports(lab.exec("server", "ss", "-Huln").stdout)
        log = tmp_path / "peer.log"
        lab.start("client", [PYTHON, "-m", "tests.network.peer", "--url", server.url, "--api-key", server.api_key,
                             "--turn", "none", "--hold", "20"], log)
        deadline = time.monotonic() + 30
        while '"holding"' not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        result = next(json.loads(line) for line in log.read_text().splitlines() if '"holding"' in line)
        assert result["connected"] and result["received"] >= 25, result
        during = udp_ports(lab.exec("server", "ss", "-Huln").stdout)
        assert before == []  # nothing bound before anyone joined
        # alice's publisher and bob's subscriber connections: one host socket each, both in the range.
        assert len(during) >= 2, during
        assert all(FIRST <= port <= LAST for port in during), during
