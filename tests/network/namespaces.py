"""Network namespaces a test makes for itself: two namespaces joined by a veth pair on a private /24.

Only addresses inside these namespaces are used; both ends are deleted when the test ends (a process still
running in one is killed first, by the test that started it). Names are unique per run, so runs never collide.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "network namespace tests need root (ip netns add)"
    if shutil.which("ip") is None:
        return "network namespace tests need iproute2 (`ip`)"
    probe = f"cvprobe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class NetnsPair:
    """`server` and `client` namespaces; `server_ip` and `client_ip` on the veth between them."""

    server: str
    client: str
    server_ip: str
    client_ip: str

    def exec_prefix(self, netns: str) -> list[str]:
        return ["ip", "netns", "exec", netns]


@contextmanager
def netns_pair() -> Iterator[NetnsPair]:
    tag = secrets.token_hex(3)
    subnet = f"10.231.{secrets.randbelow(256)}"
    pair = NetnsPair(server=f"cvs-{tag}", client=f"cvc-{tag}", server_ip=f"{subnet}.1", client_ip=f"{subnet}.2")
    made: list[str] = []
    try:
        for name in (pair.server, pair.client):
            ip("netns", "add", name)
            made.append(name)
        # Both ends are created inside their namespaces: nothing appears in the host's namespace at any time.
        ip("link", "add", f"vs{tag}", "netns", pair.server, "type", "veth", "peer", "name", f"vc{tag}",
           "netns", pair.client)
        for name, veth, address in ((pair.server, f"vs{tag}", pair.server_ip),
                                    (pair.client, f"vc{tag}", pair.client_ip)):
            ip("addr", "add", f"{address}/24", "dev", veth, netns=name)
            ip("link", "set", veth, "up", netns=name)
            ip("link", "set", "lo", "up", netns=name)
        yield pair
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
