"""Network labs for the ICE tests (test_nat.py, test_turn.py, test_port_range.py): namespaces joined by
veth pairs, with routes and iptables rules, made by the test and torn down at its end.

Every name carries a prefix unique to the run (`cv` + 6 hex digits), so parallel runs and leftovers never
collide; addresses are 10.232.x.y and exist only inside the lab's namespaces (the host's own namespace
gets no interface, route or rule). Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN), `ip` and `iptables`;
`lab_or_skip()` skips the test with the reason when they are missing.
(The TLS tests have their own, simpler helper: tests/network/namespaces.py.)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else "python3"
COMMAND_TIMEOUT = 15.0


class LabError(RuntimeError):
    """A lab command failed."""


def missing_for_lab(tools: Sequence[str] = ("ip", "iptables")) -> str | None:
    """Why a lab cannot be built here (None: it can)."""
    if os.geteuid() != 0:
        return "network namespace tests need root (CAP_NET_ADMIN); run scripts/test.sh as root, as CI does"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"`{tool}` is missing (scripts/bootstrap.sh --test installs it)"
    return None


def _run(args: Sequence[str], check: bool = True, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT)
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


@dataclass
class Lab:
    """Namespaces (by short name: `lab.ns("server")` is the real name) and the processes started in them."""

    prefix: str = field(default_factory=lambda: "cv" + secrets.token_hex(3))
    subnet: int = field(default_factory=lambda: 16 + secrets.randbelow(200))  # 10.232.<subnet + i>.0/24
    namespaces: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _links: int = 0

    def ns(self, short: str) -> str:
        return self.namespaces[short]

    def add(self, *shorts: str) -> None:
        for short in shorts:
            name = f"{self.prefix}-{short}"
            _run(["ip", "netns", "add", name])
            self.namespaces[short] = name
            self.exec(short, "ip", "link", "set", "lo", "up")

    def net(self, index: int) -> str:
        """The lab's index-th /24 as `10.232.N`, for building addresses."""
        return f"10.232.{(self.subnet + index) % 256}"

    def link(self, a: str, address_a: str, b: str, address_b: str, prefixlen: int = 24) -> tuple[str, str]:
        """A veth pair between namespaces a and b holding these addresses; returns the interface names."""
        self._links += 1
        if_a, if_b = f"{self.prefix}{self._links}a", f"{self.prefix}{self._links}b"
        _run(["ip", "link", "add", if_a, "netns", self.ns(a), "type", "veth", "peer", "name", if_b,
              "netns", self.ns(b)])
        for short, name, address in ((a, if_a, address_a), (b, if_b, address_b)):
            self.exec(short, "ip", "addr", "add", f"{address}/{prefixlen}", "dev", name)
            self.exec(short, "ip", "link", "set", name, "up")
        return if_a, if_b

    def exec(self, short: str, *command: str, check: bool = True,
             timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "netns", "exec", self.ns(short), *command], check=check, timeout=timeout)

    def route(self, short: str, *route: str) -> None:
        self.exec(short, "ip", "route", "add", *route)

    def forward(self, short: str) -> None:
        """Makes the namespace a router (the sysctl is per namespace)."""
        self.exec(short, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def iptables(self, short: str, *rule: str) -> None:
        self.exec(short, "iptables", "-w", "5", *rule)

    def start(self, short: str, command: Sequence[str], log: Path, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        """A long-running process in the namespace, output to `log`; stopped at close()."""
        with open(log, "wb") as out:
            process = subprocess.Popen(["ip", "netns", "exec", self.ns(short), *command], stdout=out,
                                       stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process in self.processes:
            self.processes.remove(process)

    def wait_listening(self, short: str, port: int, proto: str = "t", timeout: float = 30.0,
                       process: subprocess.Popen[bytes] | None = None) -> None:
        """Until something in the namespace listens on `port` (TCP: proto "t", UDP: "u")."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise LabError(f"process exited with {process.returncode} before listening on {port}")
            if self.exec(short, "ss", f"-Hln{proto}", f"sport = :{port}").stdout.strip():
                return
            time.sleep(0.1)
        raise LabError(f"nothing listens on port {port} in {self.ns(short)} after {timeout} s")

    def close(self) -> None:
        for process in list(self.processes):
            self.stop(process)
        for name in self.namespaces.values():
            # Deleting a namespace deletes its veth ends (and so their peers) and its iptables rules.
            _run(["ip", "netns", "del", name], check=False)
        self.namespaces.clear()


@contextmanager
def lab_or_skip(tools: Sequence[str] = ("ip", "iptables")) -> Iterator[Lab]:
    reason = missing_for_lab(tools)
    if reason is not None:
        pytest.skip(reason)
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


@dataclass
class LabServer:
    process: subprocess.Popen[bytes]
    url: str
    api_key: str
    log: Path


def api_key(data_dir: Path) -> str:
    """An admin API key in `data_dir`, made before the server starts (it reads keys from there)."""
    done = _run([PYTHON, "-m", "signaling.cli", "keys", "create", "--name", "lab", "--data-dir", str(data_dir)],
                timeout=60)
    return done.stdout.strip().splitlines()[0]


def serve(lab: Lab, short: str, host: str, data_dir: Path, *flags: str, port: int = 8080,
          url_host: str | None = None) -> LabServer:
    """`convene serve` in namespace `short` on host:port (captions off), ready to take joins."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key = api_key(data_dir)
    log = data_dir.parent / f"server-{lab.prefix}-{short}-{len(lab.processes)}.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = lab.start(short, [PYTHON, "-m", "signaling.cli", "serve", "--host", host, "--port", str(port),
                                "--data-dir", str(data_dir), "--no-captions", *flags], log, env=env)
    try:
        lab.wait_listening(short, port, timeout=60, process=process)
    except LabError as exc:
        raise LabError(f"{exc}\n{log.read_text(errors='replace')[-3000:]}") from None
    return LabServer(process, f"http://{url_host or host}:{port}", key, log)


def peer(lab: Lab, short: str, server: LabServer, *args: str, timeout: float = 180.0,
         env: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Runs tests/network/peer.py in namespace `short` (with `env`, NAME=value, set); one result per join."""
    done = lab.exec(short, "env", *env, PYTHON, "-m", "tests.network.peer", "--url", server.url, "--api-key",
                    server.api_key, *args, check=False, timeout=timeout)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not results:
        raise LabError(f"peer exited {done.returncode}: {done.stderr[-3000:]}")
    return results
