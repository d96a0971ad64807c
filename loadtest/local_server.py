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
    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="convene-loadtest-")
        self.data_dir = Path(self._tmp.name) / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.pinning = pinning()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def __enter__(self) -> Self:
        cli = [sys.executable, "-m", "signaling.cli"]
        created = subprocess.run([*cli, "keys", "create", "--name", "loadtest", "--data-dir", str(self.data_dir)],
                                 capture_output=True, text=True, timeout=60, check=True)
        self.api_key = created.stdout.strip().splitlines()[0]
        log = (self.data_dir / "server.log").open("wb")
        self.process = subprocess.Popen(
            [*cli, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        log.close()
        if self.pinning is not None:
            os.sched_setaffinity(self.process.pid, self.pinning.server)
            os.sched_setaffinity(0, self.pinning.generator)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"convene serve did not start (see {self.data_dir / 'server.log'})")

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
