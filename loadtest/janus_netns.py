"""A private network namespace joined to this host by one veth pair, for servers under benchmark.

Janus never gathers ICE candidates on the loopback interface, so the servers run inside a namespace
with a private address on a veth, and the load on the host reaches them through the host-side end.
Nothing leaves this machine: the pair carries a private /24 and the namespace has no other link.
Everything here needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and the `ip` tool from iproute2.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass

COMMAND_TIMEOUT = 10.0


class NetnsError(RuntimeError):
    """The namespace could not be made (no root, no `ip`, a command failed)."""


def ip(*args: str) -> str:
    try:
        done = subprocess.run(["ip", *args], check=False, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"ip {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def used_ipv4_networks() -> list[ipaddress.IPv4Network]:
    networks = []
    for line in ip("-4", "-o", "addr", "show").splitlines():
        fields = line.split()
        if "inet" in fields:
            networks.append(ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).network)
    return networks


def free_subnet(first: int = 99) -> ipaddress.IPv4Network:
    """The first 10.N.M.0/24 (from 10.99.0.0) that no interface on the host uses."""
    used = used_ipv4_networks()
    for second in range(first, 256):
        for third in range(256):
            candidate = ipaddress.IPv4Network(f"10.{second}.{third}.0/24")
            if not any(candidate.overlaps(net) for net in used):
                return candidate
    raise NetnsError("no free 10.x.y.0/24 subnet")


@dataclass
class Netns:
    """One namespace `name` with `inner` (the veth end inside, holding `inner_address`) and `outer`
    (the host end, holding `outer_address`)."""

    name: str
    outer: str
    inner: str
    outer_address: str
    inner_address: str
    prefix: int = 24

    @classmethod
    def for_this_process(cls) -> Netns:
        tag = os.getpid()
        subnet = free_subnet()
        hosts = list(subnet.hosts())
        return cls(f"convene-janus-{tag}", f"cjh{tag}", f"cjn{tag}", str(hosts[0]), str(hosts[1]),
                   subnet.prefixlen)

    def create(self) -> None:
        if shutil.which("ip") is None:
            raise NetnsError("`ip` not found (apt-get install iproute2)")
        if os.geteuid() != 0:
            raise NetnsError("a network namespace needs root")
        ip("netns", "add", self.name)
        ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
        ip("link", "set", self.inner, "netns", self.name)
        ip("addr", "add", f"{self.outer_address}/{self.prefix}", "dev", self.outer)
        ip("link", "set", self.outer, "up")
        ip("-n", self.name, "addr", "add", f"{self.inner_address}/{self.prefix}", "dev", self.inner)
        ip("-n", self.name, "link", "set", self.inner, "up")
        ip("-n", self.name, "link", "set", "lo", "up")

    def delete(self) -> list[str]:
        """Removes the pair and the namespace; returns what could not be removed (best effort)."""
        problems = []
        for args in (("link", "del", self.outer), ("netns", "del", self.name)):
            try:
                ip(*args)
            except NetnsError as exc:
                if "Cannot find device" not in str(exc) and "No such file" not in str(exc):
                    problems.append(str(exc))
        return problems

    def command(self, argv: list[str], core: int | None = None) -> list[str]:
        """`argv` run inside the namespace, pinned (with every thread it will start) to `core`."""
        pinned = ["taskset", "-c", str(core)] if core is not None and (os.cpu_count() or 1) > core else []
        return ["ip", "netns", "exec", self.name, *pinned, *argv]
