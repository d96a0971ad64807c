"""The two servers of the Janus comparison, each started inside the benchmark's network namespace and
pinned to core 0: Janus (VideoRoom plugin, HTTP transport, a configuration generated per run) and
Convene (`convene serve` on the namespace address).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from loadtest.janus_netns import Netns

JANUS_LIB = next(iter(sorted(Path("/usr/lib").glob("*/janus"))), Path("/usr/lib/x86_64-linux-gnu/janus"))
JANUS_PORT = 8088
CONVENE_PORT = 8080
SERVER_CORE = 0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
REPO = Path(__file__).resolve().parent.parent


class ServerError(RuntimeError):
    """A server did not start."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


class ServerProcess:
    """A server process in the namespace; `stop()` always ends it (SIGINT, then SIGKILL)."""

    def __init__(self, name: str, argv: list[str], address: str, port: int, log_path: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.address, self.port, self.log_path = name, address, port, log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                         env=env, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_listening(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(self.name, f"exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection((self.address, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise ServerError(self.name, f"did not listen on {self.address}:{self.port} in {timeout:.0f} s")

    def affinity(self) -> set[int]:
        """The union of the CPUs every thread of the server may run on."""
        cores: set[int] = set()
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                cores |= os.sched_getaffinity(int(task.name))
            except OSError:
                continue  # the thread ended meanwhile
        return cores

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)


def janus_available() -> str | None:
    """None when Janus and its VideoRoom and HTTP modules are installed, else what is missing."""
    if shutil.which("janus") is None:
        return "the `janus` binary is not installed"
    for module in ("plugins/libjanus_videoroom.so", "transports/libjanus_http.so"):
        if not (JANUS_LIB / module).exists():
            return f"{JANUS_LIB / module} is missing"
    return None


def janus_main_config(folder: Path, interface: str, address: str, event_loops: int | None) -> str:
    loops = f"\tevent_loops = {event_loops}\n" if event_loops else ""
    return (
        "general: {\n"
        f'\tconfigs_folder = "{folder}"\n'
        f'\tplugins_folder = "{folder / "plugins"}"\n'
        f'\ttransports_folder = "{folder / "transports"}"\n'
        f'\tevents_folder = "{folder / "none"}"\n'
        f'\tloggers_folder = "{folder / "none"}"\n'
        "\tdebug_level = 4\n"
        # Janus finds its own address by routing towards a public one; the namespace has no route out.
        f'\tinterface = "{address}"\n'
        "\tsession_timeout = 60\n"
        f"{loops}"
        "}\n"
        "certificates: {\n}\n"
        "media: {\n\tipv6 = false\n\trtp_port_range = \"20000-40000\"\n}\n"
        # ICE only on the namespace's veth (so never loopback): no STUN, no TURN, no other interface.
        f'nat: {{\n\tnice_debug = false\n\tice_enforce_list = "{interface}"\n}}\n'
        "plugins: {\n}\ntransports: {\n}\nloggers: {\n}\nevents: {\n}\n"
    )


def janus_http_config(address: str, port: int) -> str:
    return (
        "general: {\n"
        '\tjson = "plain"\n\tbase_path = "/janus"\n\thttp = true\n'
        f'\tport = {port}\n\tip = "{address}"\n\thttps = false\n'
        "}\n"
        "admin: {\n\tadmin_http = false\n\tadmin_https = false\n}\n"
        "cors: {\n}\n"
    )


def write_janus_config(folder: Path, netns: Netns, event_loops: int | None) -> Path:
    """A configuration folder that loads only the VideoRoom plugin and the HTTP transport."""
    for sub in ("plugins", "transports", "none"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "plugins" / "libjanus_videoroom.so").symlink_to(JANUS_LIB / "plugins" / "libjanus_videoroom.so")
    (folder / "transports" / "libjanus_http.so").symlink_to(JANUS_LIB / "transports" / "libjanus_http.so")
    (folder / "janus.jcfg").write_text(janus_main_config(folder, netns.inner, netns.inner_address, event_loops))
    (folder / "janus.transport.http.jcfg").write_text(janus_http_config(netns.inner_address, JANUS_PORT))
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")
    return folder / "janus.jcfg"


def start_janus(netns: Netns, folder: Path, event_loops: int | None) -> ServerProcess:
    config = write_janus_config(folder, netns, event_loops)
    argv = netns.command(["janus", "--config", str(config), "--configs-folder", str(folder),
                          "--disable-colors"], core=SERVER_CORE)
    return started(ServerProcess("janus", argv, netns.inner_address, JANUS_PORT, folder / "janus.log"))


def start_convene(netns: Netns, data_dir: Path, send_path: str | None = None) -> ServerProcess:
    """`send_path`: one of the fan-out's send paths (aiortc, lean, c: loadtest.send_path_server); None: the default."""
    serve = ["serve", "--host", netns.inner_address, "--port", str(CONVENE_PORT), "--data-dir", str(data_dir),
             "--no-captions"]
    program = ["-m", "loadtest.send_path_server", send_path] if send_path else ["-m", "signaling.cli"]
    argv = netns.command([sys.executable, *program, *serve], core=SERVER_CORE)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return started(ServerProcess("convene", argv, netns.inner_address, CONVENE_PORT, data_dir / "convene.log", env))


def started(server: ServerProcess) -> ServerProcess:
    """Waits until the server listens; a server that never does is stopped, not left behind."""
    try:
        server.wait_listening()
    except BaseException:
        server.stop()
        raise
    return server
