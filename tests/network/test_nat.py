"""A server behind 1:1 NAT (issue #12, proof 2): clients connect once its host candidates name the public
address (--announce-ip), and stay in "checking" without it.

    client ns 10.232.B.2 ── router ns ── server ns 10.232.A.2 (public: 10.232.C.10, DNAT/SNAT 1:1)

The router forwards only what its NAT translates: the client's flows leave with the client's "public"
address 10.232.C.20 (as a home router's would), flows to 10.232.C.10 reach the server, and nothing reaches
either private network directly, as on the internet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.network.netns import Lab, lab_or_skip, peer, serve

pytestmark = pytest.mark.slow


@pytest.fixture
def nat_lab() -> Iterator[tuple[Lab, dict[str, str]]]:
    with lab_or_skip() as lab:
        lab.add("server", "router", "client")
        a, b, c = lab.net(0), lab.net(1), lab.net(2)
        addresses = {"server": f"{a}.2", "client": f"{b}.2", "public": f"{c}.10", "client_public": f"{c}.20"}
        _, router_server_side = lab.link("server", addresses["server"], "router", f"{a}.1")
        _, router_client_side = lab.link("client", addresses["client"], "router", f"{b}.1")
        lab.route("server", "default", "via", f"{a}.1")
        lab.route("client", "default", "via", f"{b}.1")
        lab.forward("router")
        # 1:1 NAT for the server, an address-translating home router for the client.
        lab.iptables("router", "-t", "nat", "-A", "PREROUTING", "-d", addresses["public"], "-j", "DNAT",
                     "--to-destination", addresses["server"])
        lab.iptables("router", "-t", "nat", "-A", "POSTROUTING", "-s", addresses["server"], "-j", "SNAT",
                     "--to-source", addresses["public"])
        lab.iptables("router", "-t", "nat", "-A", "POSTROUTING", "-s", f"{b}.0/24", "-j", "SNAT",
                     "--to-source", addresses["client_public"])
        # Only translated traffic crosses: no private address is reachable from the other side.
        lab.iptables("router", "-P", "FORWARD", "DROP")
        lab.iptables("router", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
        lab.iptables("router", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT")
        yield lab, addresses


def test_a_server_behind_one_to_one_nat_connects_only_with_announce_ip(
        nat_lab: tuple[Lab, dict[str, str]], tmp_path: Path) -> None:
    lab, addresses = nat_lab
    # Without --announce-ip the answer names 10.232.A.2, which the client cannot reach: stuck checking.
    server = serve(lab, "server", addresses["server"], tmp_path / "plain", url_host=addresses["public"])
    [stuck] = peer(lab, "client", server, "--turn", "none", "--timeout", "6")
    lab.stop(server.process)
    assert not stuck["connected"], stuck
    assert stuck["ice"] == "checking", stuck

    server = serve(lab, "server", addresses["server"], tmp_path / "announced", "--announce-ip", addresses["public"],
                   url_host=addresses["public"])
    results = peer(lab, "client", server, "--turn", "none", "--joins", "3")
    for result in results:
        assert result["connected"], result
        assert result["pair"] == ["host", "host"], result  # straight to the announced address, no relay
        assert result["received"] >= 25, result  # and media flows back through the NAT to the second client
