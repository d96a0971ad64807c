"""`--spawn-server`: run `convene serve` in a subprocess on a free loopback port with a fresh data dir
and an admin API key, the server pinned to core 0 and this process (and the workers it starts) to the
other cores, so the figures are the server's and not the generator's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from loadtest.proc import free_port


@dataclass(frozen=True)
class Pinning:
    server: set[int]
    generator: set[int]


def pinning() -> Pinning | None:
    """Server on the first core, generator on the rest; None on a single core."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None
    if len(cores) < 2:
        return None
    return Pinning({cores[0]}, set(cores[1:]))


class LocalServer:
    """`pin=False` leaves every process where it is (tests: the test process must keep its cores).
    `kill()` and `start()` take the server down and up again on the same port and data dir."""

    def __init__(self, pin: bool = True, extra_args: tuple[str, ...] = ()) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="convene-loadtest-")
        self.data_dir = Path(self._tmp.name) / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.pinning = pinning() if pin else None
        self.extra_args = extra_args
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def __enter__(self) -> Self:
        cli = [sys.executable, "-m", "signaling.cli"]
        created = subprocess.run([*cli, "keys", "create", "--name", "loadtest", "--data-dir", str(self.data_dir)],
                                 capture_output=True, text=True, timeout=60, check=True)
        self.api_key = created.stdout.strip().splitlines()[0]
        try:
            self.start()
        except RuntimeError:
            self.__exit__(None, None, None)
            raise
        if self.pinning is not None:
            os.sched_setaffinity(0, self.pinning.generator)
        return self

    def start(self) -> float:
        """Starts `convene serve` (again) on this port and data dir; returns seconds until it listened."""
        started = time.monotonic()
        self.starts += 1
        name = "server.log" if self.starts == 1 else f"server-{self.starts}.log"
        log = (self.data_dir / name).open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "signaling.cli", "serve", "--port", str(self.port), "--data-dir",
             str(self.data_dir), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        log.close()
        if self.pinning is not None:
            os.sched_setaffinity(self.process.pid, self.pinning.server)
        deadline = started + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return time.monotonic() - started
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.02)
        raise RuntimeError(f"convene serve did not start (see {self.data_dir / name})")

    def kill(self) -> None:
        """SIGKILL: the server says goodbye to nobody (a crash, a power cut)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def terminate(self) -> None:
        """SIGTERM: the server tells its clients to reconnect and stops."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._tmp.cleanup()
